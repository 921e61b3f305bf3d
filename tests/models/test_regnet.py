"""RegNet: the design-space generator against the paper's tables, a hand calculation,
torchvision's and timm's independent implementations, and the RegNetY SE width.

Reference networks are built on the meta device: shapes only, no memory, no init time.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn

import cnnlineage
from cnnlineage.models.regnet import (
    REGNET_PARAMS,
    RegNetParams,
    block_widths,
    regnet_stages,
)

NAMES = sorted(REGNET_PARAMS)
TV_NAMES = [n for n in NAMES if cnnlineage.model_info(n).torchvision]
# the sizes torchvision lacks, built with the paper's rounding, against timm's independent generator
TIMM_NAMES = {n: cnnlineage.model_info(n).ref_params_source.split()[1] for n in NAMES if n not in TV_NAMES}


def _tv_stages(name: str, monkeypatch) -> list[tuple[int, int, int]]:
    """(depth, width, groups of the 3x3) per stage of torchvision's model, built from its own generator."""
    import torchvision.models.regnet as tvr

    def build_on_meta(block_params, weights, progress, **kwargs):
        # torchvision's generator ran on the CPU; build the network on the meta device (shapes only).
        with torch.device("meta"):
            return tvr.RegNet(block_params, **kwargs)

    monkeypatch.setattr(tvr, "_regnet", build_on_meta)
    ref = getattr(tvr, name)(weights=None)
    return [(len(s), s[0].f.c[0].out_channels, s[0].f.b[0].groups) for s in ref.trunk_output]


def test_every_published_regnet_is_registered():
    assert set(NAMES) == set(cnnlineage.list_models("regnet_*"))


@pytest.mark.parametrize("name", TV_NAMES)
def test_generator_reproduces_torchvision_stages(name, monkeypatch):
    # torchvision generates its networks with its own code (float32 tensors, make_divisible).
    ours = [(s.depth, s.width, s.width // s.group_width) for s in regnet_stages(REGNET_PARAMS[name])]
    assert ours == _tv_stages(name, monkeypatch)


def test_every_published_size_is_there():
    # pycls's model zoo: 12 RegNetX and 12 RegNetY sizes, 200MF to 32GF
    sizes = [
        "200mf",
        "400mf",
        "600mf",
        "800mf",
        "1_6gf",
        "3_2gf",
        "4gf",
        "6_4gf",
        "8gf",
        "12gf",
        "16gf",
        "32gf",
    ]
    assert sorted(NAMES) == sorted(f"regnet_{k}_{s}" for k in "xy" for s in sizes)
    assert len(TV_NAMES) == 14 and len(TIMM_NAMES) == 10


@pytest.mark.parametrize("name", sorted(TIMM_NAMES))
def test_generator_reproduces_timm_stages_and_counts(name):
    timm = pytest.importorskip("timm")
    with torch.device("meta"):
        ref = timm.create_model(TIMM_NAMES[name])
        ours = cnnlineage.create_model(name)
    stages = [list(getattr(ref, f"s{i}").children()) for i in range(1, 5)]  # timm's blocks b1, b2, ...
    theirs = [(len(s), s[0].conv3.conv.out_channels, s[0].conv2.conv.groups) for s in stages]
    mine = [
        (s.depth, s.width, s.width // s.group_width)
        for s in regnet_stages(REGNET_PARAMS[name], group_rounding="paper")
    ]
    assert mine == theirs
    n = sum(p.numel() for p in ours.parameters())
    assert n == sum(p.numel() for p in ref.parameters()) == cnnlineage.model_info(name).ref_params


def test_paper_rows_regnetx_400mf_and_regnety_400mf():
    # The paper's appendix: RegNetX-400MF d = 1, 2, 7, 12 / w = 32, 64, 160, 384;
    # RegNetY-400MF d = 1, 3, 6, 6 / w = 48, 104, 208, 440.
    x = regnet_stages(REGNET_PARAMS["regnet_x_400mf"], group_rounding="paper")
    assert [s.depth for s in x] == [1, 2, 7, 12]
    assert [s.width for s in x] == [32, 64, 160, 384]
    y = regnet_stages(REGNET_PARAMS["regnet_y_400mf"], group_rounding="paper")
    assert [s.depth for s in y] == [1, 3, 6, 6]
    assert [s.width for s in y] == [48, 104, 208, 440]


@pytest.mark.parametrize(
    "tv_name, timm_name",
    [("regnet_x_400mf", "regnetx_004"), ("regnet_y_800mf", "regnety_008"), ("regnet_y_8gf", "regnety_080")],
)
def test_paper_rounding_matches_timm_pycls_models(tv_name, timm_name):
    # timm's regnetx_004 etc. carry the authors' (pycls) weights and widths: an independent
    # implementation of the paper's rounding, where torchvision's differs.
    timm = pytest.importorskip("timm")
    with torch.device("meta"):
        ref = timm.create_model(timm_name, pretrained=False)
    ref_stages = [ref.get_submodule(f"s{i}") for i in range(1, 5)]
    expected = [
        (len(list(s.children())), next(iter(s.children())).conv3.conv.out_channels) for s in ref_stages
    ]
    paper = regnet_stages(REGNET_PARAMS[tv_name], group_rounding="paper")
    assert [(s.depth, s.width) for s in paper] == expected
    assert [s.width for s in paper] != [s.width for s in regnet_stages(REGNET_PARAMS[tv_name])]


def test_paper_rounding_param_count_matches_pycls_model_zoo():
    # pycls MODEL_ZOO.md lists RegNetX-400MF at 5.2M parameters, RegNetY-800MF at 6.3M
    # (torchvision's versions have 5.5M and 6.4M).
    for name, millions in [("regnet_x_400mf", 5.2), ("regnet_y_800mf", 6.3)]:
        with torch.device("meta"):
            model = cnnlineage.create_model(name, group_rounding="paper")
        assert round(sum(p.numel() for p in model.parameters()) / 1e6, 1) == millions


def test_block_widths_by_hand_regnetx_400mf():
    # w0 = 24, wa = 24.48, wm = 2.54 (log 2.54 = 0.9322):
    # j = 1: u = 48.48, log(48.48/24)/0.9322 = 0.754 -> s = 1, 24*2.54 = 60.96 -> 8*round(7.62) = 64
    # j = 3: u = 97.44, log(4.06)/0.9322 = 1.503 -> s = 2, 24*2.54^2 = 154.8 -> 8*round(19.35) = 152
    # j = 10: u = 268.8, log(11.2)/0.9322 = 2.592 -> s = 3, 24*2.54^3 = 393.3 -> 8*round(49.16) = 392
    ws = block_widths(REGNET_PARAMS["regnet_x_400mf"])
    assert len(ws) == 22
    assert (ws[0], ws[1], ws[3], ws[10], ws[21]) == (24, 64, 152, 392, 392)
    assert ws == sorted(ws) and len(set(ws)) == 4
    # 392 channels with group width 16: 392/16 = 24.5, a tie. The paper (pycls) rounds to
    # even (384), torchvision rounds up (400); the first stage's 24 < 32 becomes 32 in both.
    assert regnet_stages(REGNET_PARAMS["regnet_x_400mf"], group_rounding="paper")[-1].width == 384
    assert regnet_stages(REGNET_PARAMS["regnet_x_400mf"])[-1].width == 400


def test_group_width_capped_at_stage_width():
    # RegNetX-8GF: g = 120 but the first stage has only 80 channels, so it uses one group of 80.
    first = regnet_stages(REGNET_PARAMS["regnet_x_8gf"])[0]
    assert (first.width, first.group_width) == (80, 80)


def test_invalid_parameters_are_refused():
    with pytest.raises(ValueError, match="w0"):
        block_widths(RegNetParams(depth=10, w0=20, wa=10.0, wm=2.0, group_width=8))
    with pytest.raises(ValueError, match="wm"):
        block_widths(RegNetParams(depth=10, w0=24, wa=10.0, wm=1.0, group_width=8))
    with pytest.raises(ValueError, match="group_rounding"):
        regnet_stages(REGNET_PARAMS["regnet_x_400mf"], group_rounding="floor")


def test_regnety_se_width_is_quarter_of_block_input():
    model = cnnlineage.create_model("regnet_y_400mf")
    first = model.trunk_output.block2.get_submodule("block2-0")  # 48 -> 104 channels
    assert first.f.se.fc1.in_channels == 104  # SE acts on the bottleneck (b = 1: the block width)
    assert first.f.se.fc1.out_channels == 12  # round(0.25 * 48), the block's input width
    second = model.trunk_output.block2.get_submodule("block2-1")  # 104 -> 104
    assert second.f.se.fc1.out_channels == 26
    assert first.f.b[0].groups == 104 // 8
    x = cnnlineage.create_model("regnet_x_400mf")
    assert not any(name.endswith(".se") for name, _ in x.named_modules())


def test_residual_block_is_identity_plus_branch():
    # With the last BN's scale set to zero the branch vanishes: block(x) = relu(x) for an identity shortcut.
    model = cnnlineage.create_model("regnet_x_400mf").eval()
    block = model.trunk_output.block2.get_submodule("block2-1")
    assert block.proj is None
    nn.init.zeros_(block.f.c[1].weight)
    nn.init.zeros_(block.f.c[1].bias)
    x = torch.randn(2, 64, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(block(x), torch.relu(x))


def test_stage_strides_and_features():
    model = cnnlineage.create_model("regnet_y_400mf", num_classes=0).eval()
    assert [f["reduction"] for f in model.feature_info] == [2, 4, 8, 16, 32]
    assert [f["num_chs"] for f in model.feature_info] == [32, 48, 104, 208, 440]
    with torch.no_grad():
        out = model(torch.randn(1, 3, 64, 64))
    assert out.shape == (1, 440)
