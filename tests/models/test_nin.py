"""Network in Network: the authors' CIFAR-10 model, class maps and global average pooling."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn

import cnnlineage

# The authors' released cifar10_nin (Caffe): (name, in, out, kernel)
CIFAR10_NIN = [
    ("conv1", 3, 192, 5), ("cccp1", 192, 160, 1), ("cccp2", 160, 96, 1),
    ("conv2", 96, 192, 5), ("cccp3", 192, 192, 1), ("cccp4", 192, 192, 1),
    ("conv3", 192, 192, 3), ("cccp5", 192, 192, 1), ("cccp6", 192, 10, 1),
]  # fmt: skip


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return cnnlineage.create_model("nin").eval()


def test_hand_count_and_layers(model):
    n = sum(o * i * k * k + o for _, i, o, k in CIFAR10_NIN)
    assert n == 966_986 == cnnlineage.model_info("nin").ref_params
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.kernel_size[0]) for c in convs] == [r[1:] for r in CIFAR10_NIN]
    assert not any(isinstance(m, nn.Linear) for m in model.modules()), "NIN has no fully connected layer"


def test_logits_are_the_mean_of_the_class_maps(model):
    x = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        maps = model.class_maps(x)
        logits = model(x)
    # 32 -> 16 (max-pool) -> 8 (avg-pool), rounding up as Caffe: the 8x8 global average pool
    assert maps.shape == (3, 10, 8, 8)
    torch.testing.assert_close(logits, maps.mean(dim=(2, 3)))


def test_pools_round_up_like_caffe(model):
    pools = [m for m in model.blocks if isinstance(m, (nn.MaxPool2d, nn.AvgPool2d))]
    assert [type(p) for p in pools] == [nn.MaxPool2d, nn.AvgPool2d]
    # Caffe: out = ceil((in - k) / s) + 1; floor rounding would give 15 and 7
    with torch.no_grad():
        assert pools[0](torch.zeros(1, 1, 32, 32)).shape[-1] == -(-(32 - 3) // 2) + 1 == 16
        assert pools[1](torch.zeros(1, 1, 16, 16)).shape[-1] == -(-(16 - 3) // 2) + 1 == 8


def test_dropout_between_blocks_only_in_training(model):
    drops = [m for m in model.blocks if isinstance(m, nn.Dropout)]
    assert [d.p for d in drops] == [0.5, 0.5]
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(model(x), model(x))
        model.train()
        try:
            assert not torch.equal(model(x), model(x))
        finally:
            model.eval()


def test_reset_classifier_gives_new_class_maps():
    model = cnnlineage.create_model("nin").eval()
    model.reset_classifier(100)
    with torch.no_grad():
        assert model.class_maps(torch.randn(1, 3, 32, 32)).shape == (1, 100, 8, 8)
    model.reset_classifier(0)
    with torch.no_grad():
        assert model(torch.randn(1, 3, 32, 32)).shape == (1, 192)


def test_min_size_is_the_true_smallest(model):
    assert model.min_size == (4, 4)
    with torch.no_grad():
        assert model(torch.randn(1, 3, 4, 4)).shape == (1, 10)
        with pytest.raises(RuntimeError):  # 3x3 max-pools to 1x1, which the 3x3 average pool cannot take
            model.forward_features(torch.randn(1, 3, 3, 3))
