"""Transforms, mixup/cutmix and the epoch sampler: checked against hand computations."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from cnnlineage.data import (
    DATASET_INFO,
    EpochSampler,
    TensorImageDataset,
    TransformedDataset,
    build_transforms,
    seeded,
)
from cnnlineage.data.transforms import RandomAffine, build_batch_mix, describe, mix_seed
from cnnlineage.train.config import AugmentConfig

MNIST = DATASET_INFO["mnist5k"]


def test_eval_pipeline_is_resize_then_normalise():
    x = torch.randint(0, 256, (1, 28, 28), dtype=torch.uint8)
    tf = build_transforms(AugmentConfig(), MNIST, size=(32, 32), in_chans=1, train=False)
    assert tf.dynamic is None and describe(tf) == "Resize(32x32) -> ToDtype -> Normalize"
    by_hand = F.interpolate(
        x[None].float(), size=(32, 32), mode="bilinear", antialias=True, align_corners=False
    )
    by_hand = (by_hand.round().clamp(0, 255)[0] / 255 - 0.1307) / 0.3081
    # v2 resizes uint8 in fixed point: equal up to one grey level
    torch.testing.assert_close(tf(x), by_hand, atol=1.01 / 255 / 0.3081, rtol=0)


def test_channel_adaptation_and_statistics():
    grey = torch.randint(0, 256, (1, 8, 8), dtype=torch.uint8)
    tf = build_transforms(AugmentConfig(), MNIST, size=(8, 8), in_chans=3, train=False, resize=False)
    out = tf(grey)
    assert out.shape == (3, 8, 8) and torch.equal(out[0], out[2])  # grey repeated, MNIST mean/std on each
    torch.testing.assert_close(out[1], (grey[0] / 255 - 0.1307) / 0.3081)
    rgb = torch.randint(0, 256, (3, 4, 4), dtype=torch.uint8)
    tf = build_transforms(
        AugmentConfig(), DATASET_INFO["cifar10"], size=(4, 4), in_chans=1, train=False, resize=False
    )
    mean, std = sum(DATASET_INFO["cifar10"].mean) / 3, sum(DATASET_INFO["cifar10"].std) / 3
    torch.testing.assert_close(tf(rgb)[0], (rgb.float().mean(0).round() / 255 - mean) / std)


def test_augmentations_are_seeded_per_sample_and_leave_global_rng_alone():
    aug = AugmentConfig(
        crop_padding=4,
        hflip=0.5,
        affine_degrees=10,
        color_jitter=0.3,
        policy="trivialaugment",
        random_erasing=0.5,
    )
    tf = build_transforms(aug, DATASET_INFO["cifar10"], size=(32, 32), in_chans=3, train=True, resize=False)
    x = torch.randint(0, 256, (3, 32, 32), dtype=torch.uint8)
    torch.manual_seed(123)
    before = torch.get_rng_state()
    with seeded(7):
        a = tf(x)
    with seeded(7):
        b = tf(x)
    with seeded(8):
        c = tf(x)
    assert torch.equal(a, b) and not torch.equal(a, c) and a.shape == (3, 32, 32)
    assert torch.equal(torch.get_rng_state(), before)
    names = describe(tf)
    for step in (
        "RandomCrop",
        "RandomHorizontalFlip",
        "RandomAffine",
        "ColorJitter",
        "TrivialAugmentWide",
        "RandomErasing",
    ):
        assert step in names


def _warp(x, angle=0.0, tx=0.0, ty=0.0, scale=1.0):
    theta = RandomAffine.theta(angle, tx, ty, scale)
    grid = F.affine_grid(theta, [1, *x.shape], align_corners=False)
    return F.grid_sample(x[None], grid, align_corners=False)[0]


def test_random_affine_geometry_by_hand():
    x = torch.zeros(1, 9, 9)
    x[0, 4, 6] = 1.0  # two pixels right of the centre (4, 4)
    assert _warp(x, tx=2 / 9)[0].nonzero().tolist() == [[4, 8]]  # shifted right by 2 of 9 pixels
    assert _warp(x, ty=-1 / 9)[0].nonzero().tolist() == [[3, 6]]  # shifted up by 1
    assert _warp(x, angle=90)[0].nonzero().tolist() == [[2, 4]]  # counter-clockwise: right of centre -> above
    big = torch.zeros(1, 9, 9)
    big[0, 4, 5] = 1.0
    assert _warp(big, scale=2.0)[0, 4, 6].item() == pytest.approx(
        1.0
    )  # zoom 2x about the centre: 1 px -> 2 px out
    assert torch.allclose(RandomAffine(0, 0, 0)(x), x, atol=1e-6)
    with seeded(0):
        angle, tx, ty, s = RandomAffine(10, 0.1, 0.2).sample()
    assert abs(angle) <= 10 and abs(tx) <= 0.1 and abs(ty) <= 0.1 and 0.8 <= s <= 1.2


def test_random_crop_with_padding_is_a_shift():
    aug = AugmentConfig(crop_padding=2)
    tf = build_transforms(aug, MNIST, size=(16, 16), in_chans=1, train=True, resize=False)
    x = torch.arange(256, dtype=torch.uint8).view(1, 16, 16)
    for s in range(5):
        with seeded(s):
            y = tf.dynamic.transforms[0](x)  # the crop alone
        # the centre 12x12 of the input appears somewhere in the output, shifted by at most 2 pixels
        found = any(
            torch.equal(y[0, 2 + dy : 14 + dy, 2 + dx : 14 + dx], x[0, 2:14, 2:14])
            for dy in range(-2, 3)
            for dx in range(-2, 3)
        )
        assert found


def test_cutmix_targets_equal_the_pasted_area():
    aug = AugmentConfig(cutmix_alpha=1.0)
    mix = build_batch_mix(aug, num_classes=4)
    images = torch.stack([torch.full((1, 10, 10), float(i)) for i in range(4)])  # image i is constant i
    labels = torch.arange(4)
    with seeded(3):
        out, targets = mix(images, labels)
    assert targets.shape == (4, 4) and torch.allclose(targets.sum(1), torch.ones(4))
    for i in range(4):
        own = (out[i] == i).float().mean().item()  # share of pixels still from image i
        assert abs(targets[i, i].item() - own) < 1e-6 or (own == 1.0 and targets[i, i] == 1.0)


def test_mixup_is_a_convex_combination_and_reproducible():
    mix = build_batch_mix(AugmentConfig(mixup_alpha=0.4), num_classes=3)
    images = torch.randn(6, 1, 4, 4)
    labels = torch.tensor([0, 1, 2, 0, 1, 2])
    with seeded(11):
        a, ta = mix(images, labels)
    with seeded(11):
        b, tb = mix(images, labels)
    assert torch.equal(a, b) and torch.equal(ta, tb)
    lam = ta[0, 0].item()  # image 0 (class 0) keeps weight lambda unless its partner is class 0 too
    partner = torch.roll(images, 1, 0)  # torchvision pairs each sample with the previous one
    if labels[0] != labels[-1]:
        torch.testing.assert_close(a, lam * images + (1 - lam) * partner)
    assert build_batch_mix(AugmentConfig(), num_classes=3) is None


def test_epoch_sampler_shards_cover_the_single_process_batches():
    n, batch = 23, 8
    single = list(EpochSampler(n, seed=5, shuffle=True))
    assert sorted(i for i, _ in single) == list(range(n))
    ranks = [list(EpochSampler(n, seed=5, shuffle=True, rank=r, world_size=2)) for r in range(2)]
    assert len(ranks[0]) == len(ranks[1]) == 12  # padded to 24 by wrapping around
    for k in range(n // batch):  # global batch k == union of the ranks' k-th local batches
        union = {i for r in ranks for i, _ in r[k * batch // 2 : (k + 1) * batch // 2]}
        assert union == {i for i, _ in single[k * batch : (k + 1) * batch]}
    # a sample's augmentation seed depends on (seed, epoch, index) only
    seeds = {i: s for i, s in single}
    assert all(seeds[i] == s for r in ranks for i, s in r)


def test_epoch_sampler_orders_differ_per_epoch_and_resume_skips():
    s = EpochSampler(10, seed=1, shuffle=True)
    s.set_epoch(0)
    e0 = [i for i, _ in s]
    s.set_epoch(1)
    e1 = [i for i, _ in s]
    s.set_epoch(1, start=4)
    assert e0 != e1 and [i for i, _ in s] == e1[4:] and len(s) == 6
    s = EpochSampler(10, seed=1, shuffle=False, rank=1, world_size=3, pad=False)
    assert [i for i, _ in s] == [1, 4, 7]


def test_transformed_dataset_caches_and_fetches_batches():
    base = TensorImageDataset(
        torch.randint(0, 256, (5, 1, 28, 28), dtype=torch.uint8), torch.arange(5) % 2, num_classes=2
    )
    tf = build_transforms(AugmentConfig(), MNIST, size=(32, 32), in_chans=1, train=False)
    ds = TransformedDataset(base, tf)
    assert ds.cached is not None and ds.cached.shape == (5, 1, 32, 32)
    x, y = ds[3]
    torch.testing.assert_close(x, tf(base.images[3]))
    ((batch, labels),) = ds.__getitems__([(4, 0), (1, 0)])
    assert torch.equal(batch[1], ds[1][0]) and labels.tolist() == [0, 1]
    assert mix_seed(1, 2, 3) != mix_seed(1, 2, 4) and mix_seed(1, 2, 3) == mix_seed(1, 2, 3)


def test_augmented_batches_do_not_depend_on_worker_processes():
    from cnnlineage.data import make_loader

    base = TensorImageDataset(
        torch.randint(0, 256, (24, 1, 28, 28), dtype=torch.uint8), torch.arange(24) % 3, num_classes=3
    )
    tf = build_transforms(
        AugmentConfig(affine_degrees=15, crop_padding=2), MNIST, size=(28, 28), in_chans=1, train=True
    )
    ds = TransformedDataset(base, tf)
    batches = []
    for workers in (0, 2):
        sampler = EpochSampler(len(ds), seed=3, shuffle=True)
        sampler.set_epoch(1)
        batches.append([x for x, _ in make_loader(ds, sampler, batch_size=8, num_workers=workers)])
    assert all(torch.equal(a, b) for a, b in zip(*batches)) and len(batches[0]) == 3
