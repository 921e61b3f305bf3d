"""Xception: the three flows of Fig. 5, eight middle-flow modules, residuals, the separable
convolution's parameter count by hand, and the renaming of timm's legacy_xception keys."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn

import cnnlineage
from cnnlineage.models.xception import SeparableConv2d, XceptionBlock


def test_separable_conv_parameter_count_by_hand():
    conv = SeparableConv2d(728, 1024, 3)
    # depthwise: one 3×3 filter per input channel; pointwise: a 1×1 from 728 to 1024; no bias
    assert sum(p.numel() for p in conv.parameters()) == 728 * 3 * 3 + 728 * 1024
    assert conv.depthwise.groups == 728
    # against a full 3×3 convolution: about 9 times fewer parameters
    full = 728 * 1024 * 9
    assert full / (728 * 9 + 728 * 1024) > 8.9
    assert conv(torch.randn(1, 728, 5, 5)).shape == (1, 1024, 5, 5)


@pytest.fixture(scope="module")
def model():
    return cnnlineage.create_model("xception")


def test_flows_follow_figure_5(model):
    assert len(model.middle_flow) == 8
    assert all(isinstance(b, XceptionBlock) and isinstance(b.skip, nn.Identity) for b in model.middle_flow)
    assert [sum(isinstance(m, SeparableConv2d) for m in b.rep) for b in model.middle_flow] == [3] * 8
    # 36 convolutional layers: 2 plain in the stem, 34 separable
    assert sum(isinstance(m, SeparableConv2d) for m in model.modules()) == 34
    plain = [
        m for m in model.modules() if isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3) and m.groups == 1
    ]
    assert len(plain) == 2
    # entry-flow widths and the exit-flow's 728 → 1024 module, then 1536, 2048
    assert [b.rep[-2].num_features for b in model.entry_flow] == [128, 256, 728]
    exit_block = model.exit_flow[0]
    assert [m.pointwise.out_channels for m in exit_block.rep if isinstance(m, SeparableConv2d)] == [728, 1024]
    # the first entry module starts with a separable conv, all others with a ReLU
    assert isinstance(model.entry_flow[0].rep[0], SeparableConv2d)
    assert all(isinstance(b.rep[0], nn.ReLU) for b in [*model.entry_flow[1:], *model.middle_flow, exit_block])


def test_residual_block_adds_projection_or_identity():
    torch.manual_seed(0)
    block = XceptionBlock(8, 8, 3).eval()
    x = torch.randn(2, 8, 6, 6)
    x0 = x.clone()
    with torch.no_grad():
        y = block(x)
    assert torch.equal(x, x0)  # the leading ReLU did not modify the input the residual adds
    with torch.no_grad():
        assert torch.allclose(y, block.rep(x0) + x0)
    down = XceptionBlock(8, 16, 2, 2).eval()
    with torch.no_grad():
        y = down(x)
    assert y.shape == (2, 16, 3, 3)
    assert isinstance(down.skip[0], nn.Conv2d) and down.skip[0].stride == (2, 2)


def test_timm_keys_are_renamed(model):
    timm = pytest.importorskip("timm")
    ref_keys = set(timm.create_model("legacy_xception", pretrained=False).state_dict())
    renamed = model.remap_timm(dict.fromkeys(ref_keys, None))
    assert set(renamed) == set(model.state_dict())
    assert renamed.keys() >= {
        "stem.0.0.weight",
        "middle_flow.7.rep.1.depthwise.weight",
        "exit_flow.2.0.pointwise.weight",
    }
    # timm's block11 is the last (eighth) middle-flow module
    origin = model.remap_timm({k: k for k in ref_keys})  # our key -> timm's key
    assert {origin[k] for k in origin if k.startswith("middle_flow.7.")} == {
        k for k in ref_keys if k.startswith("block11.")
    }
