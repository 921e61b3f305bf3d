"""DenseNet: the paper's block layouts, channel growth c_in + L·k, compressing transitions, the
CIFAR DenseNet-BC's parameter count by hand, and the memory-efficient (checkpointed) path."""

from __future__ import annotations

import functools

import pytest
import torch

import cnnlineage
from cnnlineage.models.densenet import DenseBlock, DenseNet, Transition

# Huang et al. 2017, Table 1: layers per dense block of the ImageNet DenseNets (k = 32).
TABLE_1 = {
    "densenet121": (6, 12, 24, 16),
    "densenet169": (6, 12, 32, 32),
    "densenet201": (6, 12, 48, 32),
}


@functools.cache
def _model(name: str) -> DenseNet:
    return cnnlineage.create_model(name)


@pytest.mark.parametrize("name", sorted(TABLE_1))
def test_imagenet_block_layout_is_table_1(name):
    model = _model(name)
    blocks = [m for m in model.features if isinstance(m, DenseBlock)]
    assert tuple(len(b) for b in blocks) == TABLE_1[name]
    assert sum(isinstance(m, Transition) for m in model.features) == 3
    # depth = stem conv + 2 convs per bottleneck layer + 3 transitions + classifier (121, 169, 201)
    assert 1 + 2 * sum(TABLE_1[name]) + 3 + 1 == int(name.removeprefix("densenet"))


def _record_channels(model: DenseNet, x: torch.Tensor) -> list[tuple[str, int, int]]:
    seen = []

    def hook(mod, inp, out):
        seen.append((type(mod).__name__, inp[0].shape[1], out.shape[1]))

    hooks = [m.register_forward_hook(hook) for m in model.features if isinstance(m, (DenseBlock, Transition))]
    with torch.no_grad():
        model.eval()(x)
    for h in hooks:
        h.remove()
    return seen


def test_channel_growth_and_transitions_densenet121():
    model = _model("densenet121")
    seen = _record_channels(model, torch.randn(1, 3, 64, 64))
    k, c = 32, 64  # growth rate and stem width (Table 1: 2k)
    layers = iter(TABLE_1["densenet121"])
    expected = []
    for i in range(4):
        c_out = c + next(layers) * k  # a block of L layers adds L·k maps
        expected.append(("DenseBlock", c, c_out))
        c = c_out
        if i < 3:
            expected.append(("Transition", c, c // 2))  # compression θ = 0.5
            c //= 2
    assert seen == expected
    assert [(e[2]) for e in expected if e[0] == "DenseBlock"] == [256, 512, 1024, 1024]
    assert model.get_classifier().in_features == 1024


def test_cifar_densenet_bc_100_12_hand_count():
    k, bn = 12, 4
    layers_per_block = (
        100 - 4
    ) // 6  # L = 100: 3 blocks of bottleneck layers (2 convs each) + conv + 2 trans + fc
    assert layers_per_block == 16

    def bottleneck(c):  # BN(c), conv1x1 c→4k, BN(4k), conv3x3 4k→k
        return 2 * c + c * bn * k + 2 * bn * k + bn * k * k * 9

    total, c = 3 * (2 * k) * 9, 2 * k  # first 3×3 conv to 2k = 24 maps, no bias
    for block in range(3):
        for _ in range(layers_per_block):
            total += bottleneck(c)
            c += k
        if block < 2:
            total += 2 * c + c * (c // 2)  # transition BN + 1×1 conv, θ = 0.5
            c //= 2
    assert c == 342
    total += 2 * c + c * 10 + 10  # final BN, linear classifier
    model = _model("densenet_bc_100_12")
    n = sum(p.numel() for p in model.parameters())
    assert n == total == cnnlineage.model_info("densenet_bc_100_12").ref_params
    assert round(n / 1e6, 1) == 0.8  # the paper's Table 2: 0.8M

    seen = _record_channels(model, torch.randn(1, 3, 32, 32))
    assert seen == [
        ("DenseBlock", 24, 216),
        ("Transition", 216, 108),
        ("DenseBlock", 108, 300),
        ("Transition", 300, 150),
        ("DenseBlock", 150, 342),
    ]


def test_memory_efficient_matches_plain_including_batchnorm_statistics():
    torch.manual_seed(0)
    small = dict(growth_rate=4, block_config=(3, 3), num_init_features=8, stem="cifar", num_classes=5)
    plain = DenseNet(**small)
    ckpt = DenseNet(**small, memory_efficient=True)
    ckpt.load_state_dict(plain.state_dict())
    x = torch.randn(2, 3, 8, 8)
    out_plain, out_ckpt = plain(x), ckpt(x)
    assert torch.allclose(out_plain, out_ckpt, atol=1e-6)
    out_plain.square().mean().backward()
    out_ckpt.square().mean().backward()
    for (name, p), q in zip(plain.named_parameters(), ckpt.parameters()):
        assert torch.allclose(p.grad, q.grad, atol=1e-6), name
    # the recomputation in the backward pass must not update BatchNorm running stats a second time
    for (name, a), b in zip(plain.state_dict().items(), ckpt.state_dict().values()):
        assert torch.equal(a, b), name
    assert ckpt.features.denseblock1.denselayer1.norm1.num_batches_tracked.item() == 1


def test_min_size_is_torchvisions():
    import torchvision

    assert (
        _model("densenet121").min_size
        == torchvision.models.get_model_weights("densenet121").DEFAULT.meta["min_size"]
    )
    assert _model("densenet_bc_100_12").min_size == (4, 4)  # 4 → 2 → 1 through two transitions
