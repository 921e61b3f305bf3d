"""CIFAR-10 ResNets (He et al. 2015, §4.2): Table 6 parameter counts, 6n+2 layers, option A/B shortcuts."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn

import cnnlineage
from cnnlineage.models.resnet_cifar import CifarBasicBlock, CifarResNet, ZeroPadShortcut

# He et al. 2015, Table 6: depth -> parameters as printed (rounded) in the paper.
TABLE6_PARAMS = {20: "0.27", 32: "0.46", 44: "0.66", 56: "0.85", 110: "1.7"}
DEPTHS = sorted(TABLE6_PARAMS)


def _conv(k: int, cin: int, cout: int) -> int:
    return k * k * cin * cout  # bias-free: BN follows


def _hand_count(depth: int, classes: int = 10) -> int:
    """Parameters of the 6n+2 network counted layer by layer from §4.2 (option A: shortcuts are free)."""
    n = (depth - 2) // 6
    total = _conv(3, 3, 16) + 2 * 16  # first 3×3 conv + BN
    prev = 16
    for width in (16, 32, 64):
        for j in range(n):
            cin = prev if j == 0 else width
            total += _conv(3, cin, width) + 2 * width + _conv(3, width, width) + 2 * width
        prev = width
    return total + 64 * classes + classes  # fc


def _meta(**kwargs) -> CifarResNet:
    with torch.device("meta"):  # parameter shapes without allocating or initialising memory
        return CifarResNet(**kwargs)


def _n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _matches_paper(count: int, printed: str) -> bool:
    decimals = len(printed.split(".")[1])
    return f"{count / 1e6:.{decimals}f}" == printed


def test_resnet20_hand_count_written_out():
    # 3x3x3x16 + BN | 3 blocks of 2x(3x3x16x16 + BN) | 16->32 block + 2 blocks | 32->64 block + 2 blocks | fc
    stem = 432 + 32
    stage1 = 3 * 2 * (2304 + 32)
    stage2 = (4608 + 64 + 9216 + 64) + 2 * 2 * (9216 + 64)
    stage3 = (18432 + 128 + 36864 + 128) + 2 * 2 * (36864 + 128)
    fc = 64 * 10 + 10
    assert stem + stage1 + stage2 + stage3 + fc == 269_722 == _hand_count(20)
    assert cnnlineage.model_info("resnet20").ref_params == 269_722


@pytest.mark.parametrize("depth", DEPTHS)
def test_parameter_counts_match_table6_and_hand_count(depth):
    residual = _n_params(_meta(depth=depth))
    plain = _n_params(_meta(depth=depth, residual=False))
    assert residual == _hand_count(depth) == cnnlineage.model_info(f"resnet{depth}").ref_params
    assert _matches_paper(residual, TABLE6_PARAMS[depth]), (
        f"{residual:,} does not round to {TABLE6_PARAMS[depth]}M"
    )
    # option A shortcuts add no parameters: the plain twin has exactly as many
    assert plain == residual == cnnlineage.model_info(f"plain{depth}").ref_params


@pytest.mark.parametrize("depth", DEPTHS)
@pytest.mark.parametrize("residual, shortcut", [(True, "A"), (True, "B"), (False, "A")])
def test_layer_count_is_6n_plus_2(depth, residual, shortcut):
    model = _meta(depth=depth, residual=residual, shortcut=shortcut)
    weighted = [
        name
        for name, m in model.named_modules()
        if isinstance(m, (nn.Conv2d, nn.Linear)) and ".shortcut" not in name  # projections are not counted
    ]
    assert len(weighted) == depth
    assert model.blocks_per_stage == (depth - 2) // 6


def test_option_b_adds_two_projections():
    # 1x1 16->32 + BN(32) and 1x1 32->64 + BN(64): the only places where the shape changes
    extra = (16 * 32 + 2 * 32) + (32 * 64 + 2 * 64)
    for depth in (20, 110):
        assert _n_params(_meta(depth=depth, shortcut="B")) == _hand_count(depth) + extra
    model = cnnlineage.create_model("resnet20", shortcut="B")
    assert _n_params(model) == 269_722 + extra
    assert isinstance(model.layer2[0].shortcut[0], nn.Conv2d) and isinstance(
        model.layer2[1].shortcut, nn.Identity
    )


def test_zero_pad_shortcut_subsamples_and_pads_with_zeros():
    sc = ZeroPadShortcut(16, 32, 2)
    assert not list(sc.parameters())
    for size in (8, 7):  # odd sizes give ceil(H/2), as a stride-2 3x3 convolution with padding 1
        x = torch.randn(2, 16, size, size)
        y = sc(x)
        half = (size + 1) // 2
        assert y.shape == (2, 32, half, half)
        assert torch.equal(y[:, :16], x[:, :, ::2, ::2])
        assert torch.count_nonzero(y[:, 16:]) == 0
        conv = nn.Conv2d(16, 32, 3, 2, padding=1)
        assert conv(x).shape == y.shape


def _silence_residual(block: CifarBasicBlock) -> CifarBasicBlock:
    # zero the BN after the second conv: the residual branch then outputs exactly 0
    bn = block.conv2[1]
    nn.init.zeros_(bn.weight)
    nn.init.zeros_(bn.bias)
    return block.eval()


def test_residual_block_with_silent_branch_passes_the_shortcut():
    x = torch.randn(2, 16, 8, 8)
    with torch.no_grad():
        same = _silence_residual(CifarBasicBlock(16, 16, 1))(x)
        down = _silence_residual(CifarBasicBlock(16, 32, 2))(x)
        plain = _silence_residual(CifarBasicBlock(16, 16, 1, shortcut=None))(x)
    assert torch.equal(same, torch.relu(x))
    assert torch.equal(down, torch.relu(ZeroPadShortcut(16, 32, 2)(x)))
    assert torch.count_nonzero(plain) == 0  # no shortcut: nothing gets through


def test_plain_net_has_no_shortcuts_and_residual_net_has_them():
    plain, res = _meta(depth=20, residual=False), _meta(depth=20)
    assert all(
        block.shortcut is None for layer in (plain.layer1, plain.layer2, plain.layer3) for block in layer
    )
    assert isinstance(res.layer2[0].shortcut, ZeroPadShortcut) and isinstance(
        res.layer1[0].shortcut, nn.Identity
    )


def test_spatial_sizes_32_16_8():
    model = cnnlineage.create_model("resnet20").eval()
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        x = model.stem(x)
        sizes = []
        for layer in (model.layer1, model.layer2, model.layer3):
            x = layer(x)
            sizes.append(tuple(x.shape[1:]))
    assert sizes == [(16, 32, 32), (32, 16, 16), (64, 8, 8)]


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="6n\\+2"):
        CifarResNet(depth=21)
    with pytest.raises(ValueError, match="shortcut"):
        CifarResNet(depth=20, shortcut="C")
