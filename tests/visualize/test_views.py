"""Filters, feature maps, ERF, attention rollout, top images and t-SNE against independent computations."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cnnlineage import visualize as V
from cnnlineage.analysis.calculators import receptive_field
from cnnlineage.visualize.erf import effective_side, mass_inside
from cnnlineage.visualize.subject import place_maps


def test_filters_are_the_first_layer_kernels(lenet, tmp_path):
    r = V.filters(lenet, out_dir=tmp_path)
    w = lenet.model.c1.weight.detach()[:, 0]  # (6, 5, 5), grey input
    np.testing.assert_allclose(r.arrays["filters"], (w / w.abs().max()).numpy(), rtol=1e-6)
    assert r.info["layer"] == "c1" and r.paths[0].name == "filters-c1.png"


def test_rgb_filters_and_channel_means():
    s = V.load_subject("resnet20")
    rgb = V.filters(s).arrays["filters"]
    assert rgb.shape == (16, 3, 3, 3) and rgb.min() >= 0 and rgb.max() <= 1  # (K, kh, kw, RGB), each scaled
    deep = V.filters(s, layer="layer2.0.conv1.0").arrays["filters"]
    w = s.model.layer2[0].conv1[0].weight.detach().mean(1)
    np.testing.assert_allclose(deep, (w / w.abs().max()).numpy(), rtol=1e-5)
    with pytest.raises(
        ValueError, match="filters needs a Conv2d layer; layer2.0.conv1 of resnet20 is ConvNormAct"
    ):
        V.filters(s, layer="layer2.0.conv1")


def test_features_are_the_layer_outputs_with_the_analyzer_geometry(lenet, tmp_path):
    (e,) = V.dataset_examples(lenet, indices=[3])
    r = V.features(lenet, [e], layers=["c3", "s4"], out_dir=tmp_path)
    with torch.no_grad():
        m = lenet.model
        x = torch.nn.functional.pad(e.x[None], (2, 2, 2, 2), mode="replicate")
        c3 = m.c3(m.act2(m.s2(m.act1(m.c1(x)))))
    np.testing.assert_allclose(r.arrays["c3"], c3.numpy(), rtol=1e-5, atol=1e-6)
    # LeNet-5 by hand: C1 5x5 -> S2 2x2/2 -> C3 5x5 -> S4 2x2/2: fields 5, 6, 14, 16
    steps = receptive_field([(5, 1), (2, 2), (5, 1), (2, 2)])
    assert [s.r for s in steps] == [5, 6, 14, 16]
    # the 28x28 digit padded by 2: unit 0 of S4 centred at ((0 + 0.5) + 4) + 1 - 2 = 5.5 (c1, s2, c3, s4 by hand)
    assert V.layer_geometry(lenet, "s4").start == 5.5
    assert V.layer_geometry(lenet, "s4").describe() == "16x5x5, receptive field 16 px, stride 4"
    assert {p.name for p in r.paths} == {"features-c3-mnist5k-test3.png", "features-s4-mnist5k-test3.png"}


def test_place_maps_puts_units_at_their_centres():
    g = V.LayerGeometry("x", (1, 1, 3, 3), 5, 4, 2.0, False)  # units centred at pixels 2, 6, 10
    m = torch.arange(9.0).reshape(1, 3, 3)
    up = place_maps(m, g, (12, 12))[0]
    for i, y in enumerate((2, 6, 10)):
        for j, x in enumerate((2, 6, 10)):
            assert up[y, x] == m[0, i, j]
    assert up[4, 2] == pytest.approx((m[0, 0, 0] + m[0, 1, 0]) / 2)  # halfway between two units
    assert up[0, 0] == m[0, 0, 0] and up[11, 11] == m[0, 2, 2]  # held beyond the outermost units


@pytest.mark.parametrize(("model", "layer"), [("resnet20", "layer1"), ("lenet5_modern", "c3")])
def test_no_gradient_falls_outside_the_theoretical_field(model, layer):
    s = V.load_subject(model)
    r = V.erf(s, layer=layer, samples=4)
    rf = r.info["theoretical_rf"]
    field = r.arrays["erf"]
    assert r.info["mass_inside_rf"] == pytest.approx(1.0, abs=1e-6)
    # ... and the square is tight: a square one pixel smaller on each side misses some gradient
    assert mass_inside(field, r.info["centre"], (rf[0] - 2, rf[1] - 2)) < 1 - 1e-6
    assert 1 <= r.info["side_95"] <= max(rf)


def test_effective_side_on_a_hand_made_field():
    field = np.zeros((9, 9))
    field[4, 4] = 90
    field[3:6, 3:6] += 1  # 9 more in the central 3x3, total 99 + ring
    field[0, 0] = 1  # total 100
    assert effective_side(field, (4.0, 4.0), 0.9) == 1
    assert effective_side(field, (4.0, 4.0), 0.99) == 3
    assert effective_side(field, (4.0, 4.0), 1.0) == 9


@pytest.fixture(scope="module")
def vit():
    return V.load_subject("vit_tiny_patch4_32", data="shapes10")


def test_recomputed_attention_reproduces_the_layer_output(vit):
    torch.manual_seed(0)
    x = torch.randn(2, 3, 32, 32)
    weights = V.attention_weights(vit, x)
    assert len(weights) == 6 and next(iter(weights.values())).shape == (2, 3, 65, 65)
    attn = vit.model.encoder.layers.encoder_layer_2.self_attention
    seen = {}
    h = attn.register_forward_hook(lambda _m, i, o: seen.update(x=i[0], out=o))
    with torch.no_grad():
        vit.model(x)
    h.remove()
    b, n, d = seen["x"].shape
    v = torch.nn.functional.linear(seen["x"], attn.in_proj_weight, attn.in_proj_bias)[..., 2 * d :]
    v = v.reshape(b, n, 3, d // 3).transpose(1, 2)  # (B, heads, N, d_h)
    a = weights["encoder.layers.encoder_layer_2.self_attention"]
    out = attn.out_proj((a @ v).transpose(1, 2).reshape(b, n, d))
    torch.testing.assert_close(out, seen["out"], atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(a.sum(-1), torch.ones(2, 3, 65))


def test_rollout_by_hand():
    torch.manual_seed(0)
    layers = [torch.softmax(torch.randn(1, 2, 4, 4), -1) for _ in range(3)]
    want = np.eye(4)
    for a in layers:  # Abnar & Zuidema 2020, Eq. 1 with A = 0.5 W_att + 0.5 I
        m = 0.5 * a[0].mean(0).numpy() + 0.5 * np.eye(4)
        m /= m.sum(1, keepdims=True)
        want = m @ want
    np.testing.assert_allclose(V.rollout(layers)[0].numpy(), want, rtol=1e-5)


def test_attention_figure(vit, tmp_path):
    ex = V.dataset_examples(vit, indices=[0])
    r = V.attention(vit, ex, layer="encoder.layers.encoder_layer_1", out_dir=tmp_path)
    assert r.arrays["heads"].shape == (1, 3, 32, 32) and r.arrays["rollout"].shape == (1, 32, 32)
    assert r.info["layer"] == "encoder.layers.encoder_layer_1.self_attention" and r.info["grid"] == (8, 8)
    assert r.arrays["rollout_tokens"].sum() < 1  # the class token keeps some of the flow itself
    assert r.paths[0].stat().st_size > 10_000


def test_top_images_are_the_most_activating(lenet, tmp_path):
    r = V.top_images(
        lenet, layer="c3", channel=5, k=4, split="test", limit=250, out_dir=tmp_path, progress=False
    )
    subset = np.linspace(0, 999, 250).round().astype(int)  # evenly spaced over the 1,000 held-out digits
    ex = V.dataset_examples(lenet, split="test", indices=subset.tolist())
    x = torch.stack([e.x for e in ex])
    acts = []
    h = lenet.model.c3.register_forward_hook(lambda _m, _i, o: acts.append(o[:, 5].flatten(1).amax(1)))
    with torch.no_grad():
        lenet.model(x)
    h.remove()
    best = acts[0].argsort(descending=True)[:4]
    assert r.arrays["indices"].tolist() == subset[best.numpy()].tolist()
    np.testing.assert_allclose(r.arrays["activations"], acts[0][best].numpy(), rtol=1e-5)
    assert r.arrays["patches"].shape == (4, 14, 14)  # C3's 14x14 field
    assert r.info["images_scanned"] == 250 and r.paths[0].is_file()


def test_embedding_separates_the_classes(lenet, tmp_path):
    r = V.embedding(lenet, limit=200, out_dir=tmp_path)
    assert r.arrays["tsne"].shape == (200, 2) and r.arrays["features"].shape == (200, 84)  # F6's 84 units
    # 200 digits evenly spaced over the held-out split, 20 per class: chance is 0.1
    assert r.info["knn5_accuracy_2d"] > 0.8
    assert r.paths[0].name == "embedding-test.png"
