"""AlexNet (torchvision and 2012 paper) and ZFNet: hand counts, the paper's shapes, LRN, towers, init."""

from __future__ import annotations

import functools

import pytest
import torch
import torch.nn as nn

import cnnlineage
from cnnlineage.models.alexnet import krizhevsky_lrn


def _count(convs, fcs):
    """Hand count: conv rows (in, out, k, groups), fc rows (in, out); weights + biases."""
    n = sum(o * (i // g) * k * k + o for i, o, k, g in convs)
    return n + sum(i * o + o for i, o in fcs)


FC = [(256 * 6 * 6, 4096), (4096, 4096), (4096, 1000)]


def test_alexnet_original_hand_count():
    # Krizhevsky 2012 §3.5: conv2 has 256 kernels of 5x5x48, conv3 384 of 3x3x256,
    # conv4 384 of 3x3x192, conv5 256 of 3x3x192 (two towers = groups of 2)
    convs = [(3, 96, 11, 1), (96, 256, 5, 2), (256, 384, 3, 1), (384, 384, 3, 2), (384, 256, 3, 2)]
    n = _count(convs, FC)
    assert n == 60_965_224
    assert round(n / 1e6) == 61  # "60 million parameters" (§1): 60.97M
    assert cnnlineage.model_info("alexnet_original").ref_params == n


def test_zfnet_hand_count():
    # Zeiler & Fergus Fig. 3: 96 7x7, 256 5x5, 384 3x3, 384 3x3, 256 3x3, all dense
    convs = [(3, 96, 7, 1), (96, 256, 5, 1), (256, 384, 3, 1), (384, 384, 3, 1), (384, 256, 3, 1)]
    assert cnnlineage.model_info("zfnet").ref_params == _count(convs, FC) == 62_357_608


def test_alexnet_card_matches_torchvision_metadata():
    from torchvision.models import get_model_weights

    meta = get_model_weights("alexnet").DEFAULT.meta
    card = cnnlineage.model_info("alexnet")
    assert card.ref_params == meta["num_params"]
    assert card.ref_top1 == meta["_metrics"]["ImageNet-1K"]["acc@1"]
    # torchvision's own _count of the single-tower layout agrees
    convs = [(3, 64, 11, 1), (64, 192, 5, 1), (192, 384, 3, 1), (384, 256, 3, 1), (256, 256, 3, 1)]
    assert _count(convs, FC) == meta["num_params"]


def test_lrn_is_the_papers_formula():
    # §3.3: b_i = a_i / (k + alpha * sum_{j=max(0,i-n/2)}^{min(N-1,i+n/2)} a_j^2)^beta
    # with k = 2, n = 5, alpha = 1e-4, beta = 0.75
    a = torch.randn(2, 12, 3, 4, dtype=torch.float64) * 30  # large enough for the sum to matter
    n_maps, n, k, alpha, beta = 12, 5, 2.0, 1e-4, 0.75
    expected = torch.empty_like(a)
    for i in range(n_maps):
        lo, hi = max(0, i - n // 2), min(n_maps - 1, i + n // 2)
        s = (a[:, lo : hi + 1] ** 2).sum(1)
        expected[:, i] = a[:, i] / (k + alpha * s) ** beta
    torch.testing.assert_close(krizhevsky_lrn()(a), expected, rtol=1e-12, atol=0)
    # torch's own default parameters would not give the paper's formula (alpha is divided by n)
    assert not torch.allclose(nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=2.0)(a), expected)


@functools.cache
def _built(name):
    # each model is built once for this file
    torch.manual_seed(0)
    return cnnlineage.create_model(name).eval()


@pytest.fixture
def original():
    return _built("alexnet_original")


def test_alexnet_original_maps_and_weights_as_in_the_paper(original):
    convs = [m for m in original.features if isinstance(m, nn.Conv2d)]
    # §3.5: kernel shapes (out, in per tower, k, k)
    assert [tuple(c.weight.shape) for c in convs] == [
        (96, 3, 11, 11),
        (256, 48, 5, 5),
        (384, 256, 3, 3),
        (384, 192, 3, 3),
        (256, 192, 3, 3),
    ]
    assert [c.stride[0] for c in convs] == [4, 1, 1, 1, 1]
    # Fig. 2: 227 -> 55 (conv1) -> 27 (pool1) -> 13 (pool2) -> 6 (pool5)
    sizes = []
    hooks = [m.register_forward_hook(lambda m, i, o: sizes.append(o.shape[-1])) for m in original.features]
    with torch.no_grad():
        out = original(torch.randn(1, 3, 227, 227))
    for h in hooks:
        h.remove()
    kinds = [type(m).__name__ for m in original.features]
    conv_sizes = [s for s, kind in zip(sizes, kinds) if kind == "Conv2d"]
    pool_sizes = [s for s, kind in zip(sizes, kinds) if kind == "MaxPool2d"]
    assert conv_sizes == [55, 27, 13, 13, 13] and pool_sizes == [27, 13, 6]
    assert out.shape == (1, 1000)
    # LRN follows the ReLU of conv1 and conv2 only, before their pools (§3.5)
    assert kinds[:8] == ["Conv2d", "ReLU", "TowerLRN", "MaxPool2d"] * 2
    assert kinds.count("TowerLRN") == 2


def test_alexnet_original_two_towers_are_separate_until_conv3(original):
    # a change in tower 1's conv1 maps (0-47) reaches only tower 1's conv2 maps (0-127)
    torch.manual_seed(1)
    a = torch.rand(1, 96, 55, 55)
    b = a.clone()
    b[:, :48] += torch.rand(1, 48, 55, 55)
    to_conv2 = original.features[2:8]  # LRN, pool, conv2, ReLU, LRN, pool
    with torch.no_grad():
        ya, yb = to_conv2(a), to_conv2(b)
        assert torch.equal(ya[:, 128:], yb[:, 128:])
        assert not torch.allclose(ya[:, :128], yb[:, :128])
        # conv3 sees both towers
        za, zb = original.features[8](ya), original.features[8](yb)
    assert not torch.allclose(za[:, 192:], zb[:, 192:])


def test_alexnet_original_init_as_section_5(original):
    layers = [m for m in original.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    assert len(layers) == 8
    # bias 1 in conv2, conv4, conv5, fc6, fc7; 0 in conv1, conv3, fc8
    assert [m.bias.unique().tolist() for m in layers] == [
        [0.0],
        [1.0],
        [0.0],
        [1.0],
        [1.0],
        [1.0],
        [1.0],
        [0.0],
    ]
    for m in layers[1:]:  # weights N(0, 0.01); enough samples for a tight estimate
        assert abs(m.weight.std().item() - 0.01) < 5e-4
        assert abs(m.weight.mean().item()) < 5e-4


def test_dropout_follows_the_hidden_fc_layers_in_the_papers(original):
    kinds = [type(m).__name__ for m in original.classifier]
    assert kinds == ["Linear", "ReLU", "Dropout", "Linear", "ReLU", "Dropout", "Linear"]


def test_zfnet_maps_as_fig3():
    model = _built("zfnet")
    convs = [m for m in model.features if isinstance(m, nn.Conv2d)]
    assert [(c.out_channels, c.kernel_size[0], c.stride[0], c.groups) for c in convs] == [
        (96, 7, 2, 1),
        (256, 5, 2, 1),
        (384, 3, 1, 1),
        (384, 3, 1, 1),
        (256, 3, 1, 1),
    ]
    sizes = {}
    hooks = [
        m.register_forward_hook(lambda m, i, o, j=j: sizes.__setitem__(j, o.shape[-1]))
        for j, m in enumerate(model.features)
    ]
    with torch.no_grad():
        model(torch.randn(1, 3, 224, 224))
    for h in hooks:
        h.remove()
    kinds = [type(m).__name__ for m in model.features]
    # Fig. 3: 224 -> 110 -> 55 (pool, then norm) -> 26 -> 13 -> 13 -> 13 -> 13 -> 6
    assert [sizes[j] for j, kind in enumerate(kinds) if kind in ("Conv2d", "MaxPool2d")] == [
        110, 55, 26, 13, 13, 13, 13, 6
    ]  # fmt: skip
    assert kinds[:4] == ["Conv2d", "ReLU", "MaxPool2d", "LocalResponseNorm"]
    # weights N(0, 0.01), biases 0 (§3.1)
    assert all(not c.bias.detach().any() for c in convs)
    assert abs(convs[2].weight.std().item() - 0.01) < 5e-4


@pytest.mark.parametrize(
    "name, smallest", [("alexnet", 63), ("alexnet_original", 67), ("zfnet", 47)], ids=["tv", "orig", "zf"]
)
def test_min_size_is_the_true_smallest(name, smallest):
    # torchvision states 63 for its AlexNet; one pixel less breaks a layer, not just the input check
    model = _built(name)
    assert model.min_size == (smallest, smallest)
    with torch.no_grad():
        assert model(torch.randn(1, 3, smallest, smallest)).shape == (1, 1000)
        with pytest.raises(RuntimeError):
            model.forward_features(torch.randn(1, 3, smallest - 1, smallest - 1))
    if name == "alexnet":
        from torchvision.models import get_model_weights

        assert model.min_size == get_model_weights("alexnet").DEFAULT.meta["min_size"]
