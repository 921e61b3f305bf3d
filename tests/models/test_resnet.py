"""ResNet family: the papers' tables and hand counts, the ResNeSt split attention, and the options.

Structural checks build the full-size models on the meta device (shapes only, no memory,
no arithmetic), so every depth is checked without the cost of real 100M-parameter models.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn as nn

import cnnlineage
from cnnlineage.layers.split_attn import SplitAttention, radix_softmax
from cnnlineage.models.resnet import VARIANTS, BasicBlock, Bottleneck, ResNet

TV_MODELS = ["resnet18", "resnet34", "resnet50", "resnet101", "resnet152"]
TV_MODELS += ["wide_resnet50_2", "resnext50_32x4d", "resnext101_32x8d"]


def _meta(name: str, **kwargs) -> nn.Module:
    with torch.device("meta"):
        return cnnlineage.create_model(name, **kwargs).eval()


def _n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _macs_and_sizes(model: nn.Module, size: int = 224) -> tuple[int, dict[str, tuple[int, int]]]:
    """Return multiply-accumulates of all convolutions and linear layers, and each stage's output size."""
    total = 0
    sizes: dict[str, tuple[int, int]] = {}

    def count(mod, inp, out):
        nonlocal total
        if isinstance(mod, nn.Conv2d):
            total += out.numel() * (mod.in_channels // mod.groups) * mod.kernel_size[0] * mod.kernel_size[1]
        else:
            total += mod.in_features * mod.out_features

    hooks = [m.register_forward_hook(count) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    for name in model.stage_names:
        stage = model.get_submodule(name)
        hooks.append(
            stage.register_forward_hook(lambda m, i, o, n=name: sizes.__setitem__(n, tuple(o.shape[2:])))
        )
    model(torch.empty(1, 3, size, size, device="meta"))
    for h in hooks:
        h.remove()
    return total, sizes


# He et al. 2015, Table 1: blocks per stage, and FLOPs (multiply-adds, x10^9) at 224x224
HE_TABLE1 = {
    "resnet18": ((2, 2, 2, 2), 1.8),
    "resnet34": ((3, 4, 6, 3), 3.6),
    "resnet50": ((3, 4, 6, 3), 3.8),
    "resnet101": ((3, 4, 23, 3), 7.6),
    "resnet152": ((3, 8, 36, 3), 11.3),
}


@pytest.mark.parametrize("name", list(HE_TABLE1))
def test_depth_and_stages_match_he_table1(name):
    layers, _ = HE_TABLE1[name]
    assert tuple(VARIANTS[name]["layers"]) == layers
    model = _meta(name)
    # weighted layers on the main path: the stem conv, every conv of every block (not the
    # projection shortcuts) and the fc; the count is the number in the name
    convs = [n for n, m in model.named_modules() if isinstance(m, nn.Conv2d) and ".downsample." not in n]
    assert len(convs) + 1 == int(name.removeprefix("resnet"))
    _, sizes = _macs_and_sizes(model)
    # Table 1's output sizes: conv2_x 56x56, conv3_x 28x28, conv4_x 14x14, conv5_x 7x7
    assert sizes == {"layer1": (56, 56), "layer2": (28, 28), "layer3": (14, 14), "layer4": (7, 7)}


@pytest.mark.parametrize("name", list(HE_TABLE1))
def test_flops_match_he_table1_with_v1_striding(name):
    # the paper strides in the first 1x1 of a bottleneck; its FLOPs are those of that placement
    _, paper_gflops = HE_TABLE1[name]
    v1 = VARIANTS[name]["block"] == "bottleneck"
    macs, _ = _macs_and_sizes(_meta(name, **({"stride_in_1x1": True} if v1 else {})))
    assert macs / 1e9 == pytest.approx(paper_gflops, rel=0.02)
    if v1:
        # v1.5 runs the first 1x1 of each downsampling block (stages 3-5) at the input resolution:
        # 4x its v1 cost, i.e. 3x more, where v1 costs H_out^2 * C_in * width
        extra = 3 * sum(h * h * c_in * w for h, c_in, w in ((28, 256, 128), (14, 512, 256), (7, 1024, 512)))
        macs_v15, _ = _macs_and_sizes(_meta(name))
        assert macs_v15 - macs == extra


@pytest.mark.parametrize("name", TV_MODELS)
def test_card_and_flops_match_torchvision_metadata(name):
    import torchvision

    meta = torchvision.models.get_model_weights(name).IMAGENET1K_V1.meta
    card = cnnlineage.model_info(name)
    assert card.ref_params == meta["num_params"]
    assert card.ref_top1 == meta["_metrics"]["ImageNet-1K"]["acc@1"]
    macs, _ = _macs_and_sizes(_meta(name))
    assert round(macs / 1e9, 3) == pytest.approx(meta["_ops"], abs=1e-9)


def test_stride_in_1x1_moves_the_stride_only():
    v15, v1 = _meta("resnet50"), _meta("resnet50", stride_in_1x1=True)
    assert _n_params(v1) == _n_params(v15)
    assert v15.layer2[0].conv1.stride == (1, 1) and v15.layer2[0].conv2.stride == (2, 2)
    assert v1.layer2[0].conv1.stride == (2, 2) and v1.layer2[0].conv2.stride == (1, 1)


def _conv_weights(module: nn.Module) -> int:
    return sum(m.weight.numel() for n, m in module.named_modules() if isinstance(m, nn.Conv2d))


def test_block_parameters_match_the_papers_figures():
    # He et al. Fig. 5: bottleneck on a 256-d input, 1x1 64 → 3x3 64 → 1x1 256
    assert _conv_weights(Bottleneck(256, 64)) == 256 * 64 + 3 * 3 * 64 * 64 + 64 * 256  # 69,632
    # and the basic block on 64-d it replaces: two 3x3 64 convs
    assert _conv_weights(BasicBlock(64, 64)) == 2 * 3 * 3 * 64 * 64  # 73,728
    # Xie et al. Fig. 1: 32 paths of 4 channels, "~70k" like the ResNet block
    assert _conv_weights(Bottleneck(256, 64, cardinality=32, base_width=4)) == 32 * (
        256 * 4 + 3 * 3 * 4 * 4 + 4 * 256
    )  # 70,144


def test_resnext_and_wide_resnet_inner_widths():
    # Xie et al. Table 1: ResNeXt-50 (32x4d) conv2 stage is 1x1 128, 3x3 128 in 32 groups, 1x1 256
    rx = _meta("resnext50_32x4d")
    assert rx.layer1[0].conv2.in_channels == 128 and rx.layer1[0].conv2.groups == 32
    assert rx.layer4[0].conv2.out_channels == 1024 and rx.layer4[0].conv3.out_channels == 2048
    # ... and its 25.0M parameters / 4.2 GFLOPs
    macs, _ = _macs_and_sizes(rx)
    assert round(_n_params(rx) / 1e6, 1) == 25.0 and round(macs / 1e9, 1) == 4.2
    # Wide ResNet-50-2: the 3x3 twice as wide as ResNet-50's, outputs unchanged
    wide = _meta("wide_resnet50_2")
    widths = [wide.get_submodule(f"layer{i}")[0].conv2.out_channels for i in range(1, 5)]
    assert widths == [128, 256, 512, 1024]
    assert wide.layer4[0].conv3.out_channels == 2048


def test_se_reduction_widths_and_extra_parameters():
    se, base = _meta("seresnet50"), _meta("resnet50")
    extra = 0
    for i, (n, c) in enumerate(zip((3, 4, 6, 3), (256, 512, 1024, 2048)), start=1):
        for block in se.get_submodule(f"layer{i}"):
            # Hu et al. §6.1: reduction ratio r = 16 on the block's output channels
            assert (block.se.fc1.in_channels, block.se.fc1.out_channels) == (c, c // 16)
        extra += n * (c * (c // 16) + c // 16 + (c // 16) * c + c)  # fc1 and fc2, weights + biases
    assert extra == 2_530_992  # "~2.5 million additional parameters" (Hu et al. §4)
    assert _n_params(se) - _n_params(base) == extra


def test_eca_kernel_sizes_and_extra_parameters():
    # Wang et al. Eq. 12: k = |log2(C)/2 + 1/2|_odd on each block's output width C:
    # 256 → 4.5 → 5, 512 → 5 → 5, 1024 → 5.5 → 5, 2048 → 6 → 7 (an even value goes up)
    expected = {"layer1": 5, "layer2": 5, "layer3": 5, "layer4": 7}
    for c, k in zip((256, 512, 1024, 2048), expected.values()):
        t = int(math.log2(c) / 2 + 0.5)
        assert k == (t if t % 2 else t + 1)
    eca, base = _meta("ecaresnet50"), _meta("resnet50")
    total = 0
    for name, k in expected.items():
        for block in eca.get_submodule(name):
            assert block.se.conv.kernel_size == (k,)
            total += k
    assert total == 3 * 5 + 4 * 5 + 6 * 5 + 3 * 7
    assert _n_params(eca) - _n_params(base) == total  # 86: one weight per kernel tap, no bias


def test_resnest50_structure():
    model = _meta("resnest50")
    # deep stem: three 3x3 convs of 32, 32, 64 channels, the first with stride 2
    stem = [m for m in model.conv1 if isinstance(m, nn.Conv2d)]
    assert [(m.out_channels, m.kernel_size, m.stride) for m in stem] == [
        (32, (3, 3), (2, 2)), (32, (3, 3), (1, 1)), (64, (3, 3), (1, 1)),
    ]  # fmt: skip
    for i, width in enumerate((64, 128, 256, 512), start=1):
        stage = model.get_submodule(f"layer{i}")
        sa = stage[0].conv2
        assert isinstance(sa, SplitAttention) and sa.radix == 2 and sa.conv.groups == 2
        # attention bottleneck: max(width * radix / 4, 32) (reduction factor 4, floor 32)
        assert sa.fc1.out_channels == max(width * 2 // 4, 32)
        # avd: the stride moves to a 3x3 average pool after the split attention, first block only
        if i > 1:
            assert sa.conv.stride == (1, 1) and isinstance(stage[0].avd, nn.AvgPool2d)
            assert isinstance(stage[0].downsample[0], nn.AvgPool2d)  # average pool in the shortcut
        assert all(b.avd is None for b in stage[1:])  # no pool where the stride is 1
    assert round(_n_params(model) / 1e6, 1) == 27.5  # Zhang et al.: ResNeSt-50, 27.5M


def test_radix_softmax_layout_and_normalisation():
    radix, groups, c = 2, 3, 4
    logits = torch.randn(2, groups * radix * c, 1, 1)
    w = radix_softmax(logits, radix, groups).reshape(2, radix, groups, c)
    ref = logits.reshape(2, groups, radix, c)  # fc2 outputs group-major
    for g in range(groups):
        for j in range(c):
            z = ref[:, g, :, j]
            torch.testing.assert_close(w[:, :, g, j], torch.exp(z) / torch.exp(z).sum(1, keepdim=True))
    torch.testing.assert_close(w.sum(1), torch.ones(2, groups, c))
    # radix 1 is a sigmoid gate
    torch.testing.assert_close(radix_softmax(logits, 1, groups), torch.sigmoid(logits))


def test_split_attention_of_identical_splits_is_that_split():
    # whatever the attention computes, weights that sum to one over equal splits return the split
    sa = SplitAttention(8, 8, radix=2).eval()
    with torch.no_grad():
        # split 2 sees the second half of the input: give it split 1's kernels and split 1's input
        sa.conv.weight[8:] = sa.conv.weight[:8]
        half = torch.randn(2, 4, 6, 6)
        x = torch.cat([half, half], 1)
        u = sa.act0(sa.bn0(sa.conv(x)))[:, :8]
        torch.testing.assert_close(sa(x), u)


def test_split_attention_trains_on_a_batch_of_one():
    # the pooled vector of a single image has no batch statistics; running ones are used
    sa = SplitAttention(8, 8, radix=2).train()
    before = sa.bn1.running_mean.clone()
    sa(torch.randn(1, 8, 5, 5)).sum().backward()
    assert torch.equal(sa.bn1.running_mean, before) and sa.bn1.weight.grad is not None
    sa(torch.randn(2, 8, 5, 5))
    assert not torch.equal(sa.bn1.running_mean, before)


def _tiny(block: str, **kwargs) -> ResNet:
    # two blocks in stage 1 so that layer1[1] has an identity shortcut
    stem = 32 if block == "bottleneck" else 8
    return ResNet(
        layers=(2, 1, 1, 1), block=block, widths=(8, 8, 16, 16), stem_width=stem, num_classes=5, **kwargs
    )


@pytest.mark.parametrize("block", ["basic", "bottleneck"])
def test_zero_init_residual_makes_blocks_identities(block):
    model = _tiny(block, zero_init_residual=True).eval()
    x = torch.rand(2, model.layer1[1].conv1.in_channels, 8, 8)  # non-negative, as after a ReLU
    with torch.no_grad():
        torch.testing.assert_close(model.layer1[1](x), x)
    assert not torch.allclose(_tiny(block).eval().layer1[1](x), x)


def test_drop_path_rates_rise_linearly_and_vanish_in_eval():
    model = _tiny("bottleneck", drop_path_rate=0.4)
    blocks = [b for name in model.stage_names for b in model.get_submodule(name)]
    rates = [getattr(b.drop_path, "p", 0.0) for b in blocks]
    assert rates == pytest.approx([0.0, 0.1, 0.2, 0.3, 0.4])
    plain = _tiny("bottleneck")
    plain.load_state_dict(model.state_dict())
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(model.eval()(x), plain.eval()(x))


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="BasicBlock"):
        ResNet(layers=(1, 1, 1, 1), block="basic", cardinality=32)
    with pytest.raises(ValueError, match="attn_layer"):
        ResNet(layers=(1, 1, 1, 1), attn_layer="cbam")
    with pytest.raises(ValueError, match="choose one"):
        Bottleneck(64, 16, 2, avd=True, stride_in_1x1=True)
    with pytest.raises(ValueError, match="radix"):
        cnnlineage.create_model("resnet50", radix=-1)
