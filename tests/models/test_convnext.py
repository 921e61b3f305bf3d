"""ConvNeXt: the paper's variant table, a hand count of parameters, the block's order of
operations, layer scale and the stochastic-depth schedule.

Large models are built on the meta device (shapes only); behaviour is checked on
convnext_tiny (built once) and on tiny hand-made configurations.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import cnnlineage
from cnnlineage.models.convnext import (
    CONVNEXT_STAGES,
    ConvNeXt,
    ConvNeXtBlock,
    ConvNeXtStage,
    drop_path_rates,
)

# Liu et al. 2022, §3 "Model variants", and the ImageNet-1K stochastic depth rates of Appendix A.1.
PAPER = {
    "convnext_tiny": ((96, 192, 384, 768), (3, 3, 9, 3), 0.1),
    "convnext_small": ((96, 192, 384, 768), (3, 3, 27, 3), 0.4),
    "convnext_base": ((128, 256, 512, 1024), (3, 3, 27, 3), 0.5),
    "convnext_large": ((192, 384, 768, 1536), (3, 3, 27, 3), 0.5),
}


@pytest.fixture(scope="module")
def tiny():
    return cnnlineage.create_model("convnext_tiny")


def _meta(name: str) -> ConvNeXt:
    with torch.device("meta"):
        return cnnlineage.create_model(name)


def _hand_count(widths, depths, num_classes=1000, in_chans=3) -> int:
    # block of width d: 7x7 depthwise 49d + d, LayerNorm 2d, 1x1 d->4d 4d^2 + 4d,
    # 1x1 4d->d 4d^2 + d, layer scale d: 8d^2 + 58d
    n = in_chans * widths[0] * 16 + widths[0] + 2 * widths[0]  # 4x4 patchify conv + LayerNorm
    for i, (d, b) in enumerate(zip(widths, depths)):
        if i:  # LayerNorm + 2x2 conv from the previous width
            c = widths[i - 1]
            n += 2 * c + 4 * c * d + d
        n += b * (8 * d * d + 58 * d)
    c = widths[-1]
    return n + 2 * c + c * num_classes + num_classes  # head LayerNorm + linear


def test_every_variant_is_registered():
    assert set(CONVNEXT_STAGES) == set(cnnlineage.list_models("convnext_*")) == set(PAPER)


@pytest.mark.parametrize("name", sorted(PAPER))
def test_variant_table_matches_paper(name):
    widths, depths, rate = PAPER[name]
    stages, table_rate = CONVNEXT_STAGES[name]
    assert tuple((s.width, s.depth) for s in stages) == tuple(zip(widths, depths))
    assert table_rate == rate
    # stage compute ratio 1:1:3:1 (Swin-T's) and channels doubling at every stage (§2.2)
    assert depths[0] == depths[1] == depths[3] and depths[2] in (3 * depths[0], 9 * depths[0])
    assert all(widths[i + 1] == 2 * widths[i] for i in range(3))
    # the built network has these stages, separated by 2x2 stride-2 downsampling convs
    model = _meta(name)
    built = [model.get_submodule(f["module"]) for f in model.feature_info]
    assert [len(s) for s in built] == list(depths)
    assert [s[0].block[0].in_channels for s in built] == list(widths)
    for i in (2, 4, 6):
        down = model.features[i][1]
        assert (down.kernel_size, down.stride) == ((2, 2), (2, 2))
    assert sum(p.numel() for p in model.parameters()) == _hand_count(widths, depths)


def test_hand_count_matches_reference_counts():
    # The hand count of the paper's description equals torchvision's published counts.
    for name, (widths, depths, _) in PAPER.items():
        assert _hand_count(widths, depths) == cnnlineage.model_info(name).ref_params, name


def test_layer_scale_starts_at_1e_minus_6(tiny):
    scales = [m.layer_scale for m in tiny.modules() if isinstance(m, ConvNeXtBlock)]
    assert len(scales) == 18
    assert all(s.shape == (s.shape[0], 1, 1) and torch.all(s == 1e-6) for s in scales)
    # the block output starts within ~1e-6 of its input: a near-identity network at init
    block = tiny.features[1][0].eval()
    x = torch.randn(1, 96, 8, 8)
    with torch.no_grad():
        assert (block(x) - x).abs().max() < 1e-3


def test_drop_path_schedule_is_linear_over_all_blocks(tiny):
    ps = [m.drop_path.p for m in tiny.modules() if isinstance(m, ConvNeXtBlock)]
    assert ps == pytest.approx([0.1 * k / 17 for k in range(18)])  # 0 for the first block, 0.1 for the last
    assert ps[0] == 0.0 and ps[-1] == pytest.approx(0.1)
    # same schedule as torchvision's independent implementation
    import torchvision

    with torch.device("meta"):
        ref = torchvision.models.convnext_tiny(weights=None)
    ref_ps = [m.stochastic_depth.p for m in ref.modules() if hasattr(m, "stochastic_depth")]
    assert ps == pytest.approx(ref_ps)
    assert drop_path_rates([3, 3, 27, 3], 0.5)[-1] == pytest.approx(0.5)
    assert drop_path_rates([1], 0.3) == [0.0]


def test_drop_path_rate_override():
    model = ConvNeXt([ConvNeXtStage(8, 2), ConvNeXtStage(16, 2)], num_classes=3, drop_path_rate=0.3)
    ps = [m.drop_path.p for m in model.modules() if isinstance(m, ConvNeXtBlock)]
    assert ps == pytest.approx([0.0, 0.1, 0.2, 0.3])


def test_block_order_of_operations():
    # Fig. 4: 7x7 depthwise conv -> LayerNorm -> 1x1 (4x) -> GELU -> 1x1 -> layer scale, + input.
    block = ConvNeXtBlock(8, layer_scale=0.5).eval()
    dw, _, ln, fc1, _, fc2, _ = block.block
    x = torch.randn(2, 8, 9, 9)
    y = F.conv2d(x, dw.weight, dw.bias, padding=3, groups=8).permute(0, 2, 3, 1)
    y = F.layer_norm(y, (8,), ln.weight, ln.bias, eps=1e-6)
    y = F.linear(F.gelu(F.linear(y, fc1.weight, fc1.bias)), fc2.weight, fc2.bias).permute(0, 3, 1, 2)
    assert fc1.out_features == 32
    with torch.no_grad():
        torch.testing.assert_close(block(x), x + 0.5 * y)


def test_drop_path_drops_whole_branches_in_training():
    block = ConvNeXtBlock(4, layer_scale=1.0, drop_path=0.5).train()
    x = torch.randn(64, 4, 5, 5)
    with torch.no_grad():
        branch = block.block(x)
        out = block(x)
    dropped = torch.isclose(out, x).flatten(1).all(1)
    kept = torch.isclose(out, x + 2.0 * branch, atol=1e-6).flatten(1).all(1)  # survivors scaled by 1/(1-p)
    assert torch.all(dropped | kept) and dropped.any() and kept.any()
    block.eval()
    with torch.no_grad():
        torch.testing.assert_close(block(x), x + branch)


def test_head_is_pool_layernorm_linear():
    model = ConvNeXt([ConvNeXtStage(8, 1), ConvNeXtStage(16, 1)], num_classes=5).eval()
    assert [f["reduction"] for f in model.feature_info] == [4, 8]
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        feats = model.forward_features(x)
        pooled = model.forward_head(feats, pre_logits=True)
        ln = model.classifier[0]
        expected = F.layer_norm(feats.mean((2, 3)), (16,), ln.weight, ln.bias, eps=1e-6)
        torch.testing.assert_close(pooled, expected)
        torch.testing.assert_close(model(x), model.get_classifier()(pooled))
    model.reset_classifier(0)
    assert isinstance(model.get_classifier(), nn.Identity)
