"""Views for pre-training: two different views of one image, the same ones for the same (seed, epoch, index)."""

from __future__ import annotations

import pytest
import torch
from torchvision.transforms import v2

from cnnlineage.data import EpochSampler
from cnnlineage.data.datasets import DATASET_INFO, TensorImageDataset
from cnnlineage.data.transforms import mix_seed
from cnnlineage.registry import create_model
from cnnlineage.ssl.augment import (
    ViewsDataset,
    build_views,
    describe_views,
    elastic_distort,
    local_crop_size,
    view_specs,
)
from cnnlineage.ssl.pretrain import check_pretrain_config, pretrain_config
from cnnlineage.train.config import ConfigError


def _digits(n=6, side=28, chans=1):
    g = torch.Generator().manual_seed(1)
    images = torch.randint(0, 256, (n, chans, side, side), dtype=torch.uint8, generator=g)
    return TensorImageDataset(images, torch.arange(n) % 10, num_classes=10, name="test")


def test_two_views_differ_and_repeat_for_the_same_seed():
    info = DATASET_INFO["mnist5k"]
    views = build_views(view_specs("simclr", info, (28, 28)), info, size=(28, 28), resize=False)
    ds = ViewsDataset(_digits(), views)
    seed = mix_seed(0, 3, 2)  # (seed, epoch, index), as the trainer's sampler hands it out
    (a, b), label = ds[(2, seed)]
    assert a.shape == b.shape == (1, 28, 28) and a.dtype == torch.float32 and label == 2
    assert not torch.equal(a, b)  # two random views of one image
    (a2, b2), _ = ds[(2, seed)]
    assert torch.equal(a, a2) and torch.equal(b, b2)  # deterministic for (seed, epoch, index)
    (a3, _), _ = ds[(2, mix_seed(0, 4, 2))]
    assert not torch.equal(a, a3)  # another epoch, other views
    before = torch.random.get_rng_state()
    ds[(0, 1)]
    assert torch.equal(torch.random.get_rng_state(), before)  # the global generator is left as it was


def test_a_batch_collates_per_view_and_follows_the_sampler_seeds():
    info = DATASET_INFO["shapes10"]
    net = create_model("resnet20", num_classes=10, in_chans=3)
    local = local_crop_size(net, (32, 32))
    specs = view_specs("dino", info, (32, 32), local_crops=3, local_size=local)
    ds = ViewsDataset(_digits(side=32, chans=3), build_views(specs, info, size=(32, 32), resize=False))
    sampler = EpochSampler(len(ds), seed=5, shuffle=True)
    sampler.set_epoch(1)
    keys = list(sampler)[:4]
    [(views, labels)] = ds.__getitems__(keys)
    assert [tuple(v.shape) for v in views] == [(4, 3, 32, 32)] * 2 + [(4, 3, 14, 14)] * 3
    assert labels.tolist() == [k[0] % 10 for k in keys]
    one, _ = ds[keys[1]]
    assert all(torch.equal(v[1], o) for v, o in zip(views, one))  # batch or single: the same views


def test_view_rules_follow_the_data():
    digits, colour = DATASET_INFO["mnist5k"], DATASET_INFO["cifar10"]
    for method in ("simclr", "moco", "byol", "dino", "mae"):
        for spec in view_specs(method, digits, (28, 28), local_crops=2, local_size=(12, 12)):
            assert spec.hflip == 0 and spec.jitter_p == 0 and spec.grey == 0 and spec.solarize == 0
            assert spec.blur == 0 and spec.scale[0] >= 0.2  # small images: no blur, no crop under 20 %
    byol = view_specs("byol", colour, (32, 32))
    assert [s.hflip for s in byol] == [0.5, 0.5] and [s.jitter_p for s in byol] == [0.8, 0.8]
    assert [s.solarize for s in byol] == [0.0, 0.2]  # BYOL's asymmetric views
    big = view_specs("byol", DATASET_INFO["imagefolder"], (224, 224))
    assert [s.blur for s in big] == [1.0, 0.1] and big[0].scale == (0.08, 1.0)  # the paper's, at full size
    dino = view_specs("dino", colour, (32, 32), local_crops=4, local_size=(16, 16))
    assert len(dino) == 6 and [s.size for s in dino] == [(32, 32)] * 2 + [(16, 16)] * 4
    assert len(view_specs("mae", colour, (32, 32))) == 1


def test_local_crop_size_respects_the_model():
    assert local_crop_size(create_model("lenet5_modern", pad_input=True), (28, 28)) == (28, 28)  # fixed input
    assert local_crop_size(create_model("resnet20"), (28, 28)) == (12, 12)  # ~96/224 of the side
    vit = create_model("vit_tiny_patch4_32", img_size=16)
    assert local_crop_size(vit, (32, 32)) == (12, 12)  # a multiple of the 4-pixel patch


def test_crop_min_sets_the_smallest_crop_of_the_full_size_views():
    digits = DATASET_INFO["mnist5k"]
    for method in ("simclr", "moco", "byol", "mae"):
        specs = view_specs(method, digits, (28, 28), min_scale=0.5)
        assert [s.scale for s in specs] == [(0.5, 1.0)] * len(specs)
        crop = build_views(specs, digits, size=(28, 28), resize=False).views[0].transforms[0]
        assert isinstance(crop, v2.RandomResizedCrop) and tuple(crop.scale) == (0.5, 1.0)
    dino = view_specs("dino", digits, (28, 28), local_crops=2, local_size=(12, 12), min_scale=0.6)
    assert [s.scale for s in dino] == [(0.6, 1.0)] * 2 + [(0.2, 0.4)] * 2  # local crops keep theirs
    assert view_specs("simclr", digits, (28, 28))[0].scale == (0.2, 1.0)  # 0: the method's own


def test_crop_min_outside_0_1_is_refused():
    with pytest.raises(ConfigError, match=r"ssl.crop_min must be in \[0, 1\)"):
        pretrain_config("lenet5_modern", method="simclr", overrides=["ssl.crop_min=1.0"])


def test_augment_affine_reaches_every_view_and_stays_seeded():
    digits = DATASET_INFO["mnist5k"]
    plain = build_views(view_specs("simclr", digits, (28, 28)), digits, size=(28, 28), resize=False)
    specs = view_specs("simclr", digits, (28, 28), affine=(10.0, 0.1, 0.1))
    assert [s.affine for s in specs] == [(10.0, 0.1, 0.1)] * 2
    moved = build_views(specs, digits, size=(28, 28), resize=False)
    assert "affine 10deg/0.1/0.1" in describe_views(moved)
    key = (1, mix_seed(0, 2, 1))
    (a, b), _ = ViewsDataset(_digits(), moved)[key]
    (a2, b2), _ = ViewsDataset(_digits(), moved)[key]
    (p, q), _ = ViewsDataset(_digits(), plain)[key]
    assert torch.equal(a, a2) and torch.equal(b, b2)  # the same views for the same (seed, epoch, index)
    assert not torch.equal(a, p) and not torch.equal(b, q)  # the rotation, shift and zoom were applied


def test_pretraining_takes_the_affine_keys_and_refuses_other_augment_keys():
    cfg = pretrain_config("lenet5_modern", method="simclr", overrides=["augment.affine_degrees=10"])
    check_pretrain_config(cfg)
    assert cfg.augment.affine_degrees == 10
    bad = pretrain_config("lenet5_modern", method="simclr", overrides=["augment.hflip=0.5"])
    with pytest.raises(ConfigError, match=r"does not use augment.hflip .*only the affine_\* keys apply"):
        check_pretrain_config(bad)


@pytest.mark.parametrize(
    ("override", "needle"),
    [
        ("augment.affine_degrees=1e9", "augment.affine_degrees must be in [0, 180]"),
        ("augment.affine_translate=5", "augment.affine_translate must be in [0, 1]"),
        ("augment.affine_scale=-3", "augment.affine_scale must be in [0, 1)"),
        ("ssl.elastic_alpha=-1", "ssl.elastic_alpha must be in [0, 1000]"),
        ("ssl.elastic_alpha=1e9", "ssl.elastic_alpha must be in [0, 1000]"),
        ("ssl.elastic_sigma=0", "ssl.elastic_sigma must be in (0, 100]"),
        ("ssl.elastic_sigma=1e6", "ssl.elastic_sigma must be in (0, 100]"),
    ],
)
def test_absurd_affine_and_elastic_values_are_refused(override, needle):
    with pytest.raises(ConfigError) as e:
        pretrain_config("lenet5_modern", method="simclr", overrides=[override])
    assert needle in str(e.value) and "\n" not in str(e.value)


def test_elastic_distortion_matches_torchvision_image_by_image():
    g = torch.Generator().manual_seed(3)
    x = torch.rand(3, 2, 28, 24, generator=g)
    field = torch.rand(3, 2, 28, 24, generator=g) * 2 - 1
    alpha, sigma = 34.0, 4.0
    out = elastic_distort(x, field, alpha, sigma)
    k = int(8 * sigma + 1) + 1 - int(8 * sigma + 1) % 2  # torchvision ElasticTransform's kernel: 33 taps
    for i in range(3):
        smooth = v2.functional.gaussian_blur(field[i : i + 1], [k, k], [sigma, sigma])
        # torchvision scales by alpha / side in [-1, 1] coordinates: its alpha is twice the pixels
        disp = torch.cat([smooth[:, :1] * 2 * alpha / 24, smooth[:, 1:] * 2 * alpha / 28], 1)
        disp = disp.permute(0, 2, 3, 1)
        ref = v2.functional.elastic(x[i], disp, fill=None)
        assert torch.allclose(out[i], ref, atol=1e-5)


def test_a_uniform_field_shifts_the_image_by_alpha_pixels():
    x = torch.arange(2 * 8 * 8, dtype=torch.float32).view(2, 1, 8, 8)
    field = torch.zeros(2, 2, 8, 8)
    field[0, 0] = 1.0  # image 0: every pixel samples 2 pixels to its right
    field[1, 1] = -0.5  # image 1: every pixel samples 1 pixel above
    out = elastic_distort(x, field, 2.0, 1.5)  # the blur leaves a constant field as it is
    assert torch.allclose(out[0, 0, :, :6], x[0, 0, :, 2:], atol=1e-4) and out[0, 0, :, 6:].abs().max() < 1e-4
    assert torch.allclose(out[1, 0, 1:], x[1, 0, :7], atol=1e-4) and out[1, 0, 0].abs().max() < 1e-4


def test_elastic_reaches_every_view_and_stays_seeded():
    for name, chans in (("mnist5k", 1), ("shapes10", 3)):  # grey views, and colour rows before the field
        info = DATASET_INFO[name]
        plain = build_views(view_specs("simclr", info, (28, 28)), info, size=(28, 28), resize=False)
        specs = view_specs("simclr", info, (28, 28), elastic=(34.0, 4.0), affine=(10.0, 0.0, 0.0))
        assert [s.elastic for s in specs] == [(34.0, 4.0)] * 2
        bent = build_views(specs, info, size=(28, 28), resize=False)
        assert "elastic alpha 34 sigma 4, affine 10deg/0/0" in describe_views(bent)
        key = (1, mix_seed(0, 2, 1))
        (a, b), _ = ViewsDataset(_digits(chans=chans), bent)[key]
        (a2, b2), _ = ViewsDataset(_digits(chans=chans), bent)[key]
        (p, q), _ = ViewsDataset(_digits(chans=chans), plain)[key]
        assert torch.equal(a, a2) and torch.equal(b, b2)
        assert not torch.equal(a, p) and not torch.equal(b, q)
        keys = [(i, mix_seed(0, 2, i)) for i in range(4)]
        [(views, _)] = ViewsDataset(_digits(chans=chans), bent).__getitems__(keys)
        assert torch.equal(views[0][1], a) and torch.equal(views[1][1], b)  # batched as one by one


def test_batched_colour_operations_match_torchvision_image_by_image():
    from cnnlineage.ssl.augment import ViewTail, _grey

    g = torch.Generator().manual_seed(0)
    x = torch.rand(5, 3, 12, 12, generator=g)
    x[0] = 0.5  # a grey image: hue has nothing to turn
    f = torch.tensor([0.3, 0.9, 1.0, 1.4, 1.8])
    hue = torch.tensor([-0.1, -0.02, 0.0, 0.05, 0.1])
    F = v2.functional
    refs = {0: F.adjust_brightness, 1: F.adjust_contrast, 2: F.adjust_saturation}
    for op, ref in refs.items():
        got = ViewTail._jitter(op, x, f)
        for i in range(5):
            assert torch.allclose(got[i], ref(x[i], float(f[i])), atol=1e-5), (op, i)
    got = ViewTail._jitter(3, x, hue)
    for i in range(5):
        assert torch.allclose(got[i], F.adjust_hue(x[i], float(hue[i])), atol=1e-4), ("hue", i)
    assert torch.allclose(_grey(x), F.rgb_to_grayscale(x), atol=1e-6)
    info = DATASET_INFO["imagefolder"]
    tail = ViewTail(view_specs("byol", info, (64, 64))[0], info.mean, info.std)
    sigma = torch.tensor([0.1, 0.5, 1.0, 1.5, 2.0])
    got = tail._blur(x, sigma)
    for i in range(5):
        want = F.gaussian_blur(x[i], [tail.kernel] * 2, [float(sigma[i])] * 2)
        assert torch.allclose(got[i], want, atol=1e-5), ("blur", i)


def test_colour_views_apply_each_step_with_its_probability():
    from cnnlineage.ssl.augment import N_COLOUR, ViewTail

    info = DATASET_INFO["shapes10"]
    byol = view_specs("byol", info, (32, 32))[1]  # jitter 0.8, grey 0.2, solarise 0.2
    tail = ViewTail(byol, (0.0,) * 3, (1.0,) * 3)  # no normalisation: the [0, 1] image comes back
    x = torch.randint(0, 256, (4, 3, 8, 8), dtype=torch.uint8, generator=torch.Generator().manual_seed(2))
    plain = x.float() / 255
    rows = torch.ones(4, N_COLOUR)  # every draw at 1: no step applies
    assert torch.allclose(tail(x, rows), plain)
    rows[1, 9] = 0.0  # image 1 turns grey
    rows[2, 12] = 0.0  # image 2 is solarised
    out = tail(x, rows)
    assert torch.allclose(out[[0, 3]], plain[[0, 3]])
    assert torch.allclose(out[1], v2.functional.rgb_to_grayscale(plain[1], 3), atol=1e-6)
    assert torch.allclose(out[2], torch.where(plain[2] >= 0.5, 1 - plain[2], plain[2]), atol=1e-6)
    info = DATASET_INFO["shapes10"]
    specs = view_specs("simclr", info, (32, 32))
    ds = ViewsDataset(_digits(n=64, side=32, chans=3), build_views(specs, info, size=(32, 32), resize=False))
    [(views, _)] = ds.__getitems__([(i, mix_seed(3, 0, i)) for i in range(64)])
    grey = (views[0][:, 0] == views[0][:, 1]).flatten(1).all(1) & (views[0][:, 1] == views[0][:, 2]).flatten(
        1
    ).all(1)
    assert 2 <= int(grey.sum()) <= 25  # about a fifth of the views are grey (p = 0.2; 12.8 expected of 64)
