"""ShuffleNet v1/v2: the channel shuffle permutation, v1's parameters by hand and its 140 MFLOPs,
v2's stage widths (Table 5) and complexities against the paper and torchvision."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn

import cnnlineage
from cnnlineage.models.shufflenet import ShuffleV1Unit, ShuffleV2Unit, channel_shuffle


def _macs(model: nn.Module, size: int = 224) -> int:
    """Multiply-accumulates of the convolutions and linear layers, counted from the output shapes."""
    total = 0

    def hook(mod, inp, out):
        nonlocal total
        if isinstance(mod, nn.Conv2d):
            kh, kw = mod.kernel_size
            total += out[0].numel() * (mod.in_channels // mod.groups) * kh * kw
        else:
            total += mod.in_features * mod.out_features

    hooks = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    with torch.no_grad():
        model.eval()(torch.randn(1, 3, size, size))
    for h in hooks:
        h.remove()
    return total


def test_channel_shuffle_against_hand_built_example():
    # 6 channels in g = 3 groups of 2: (a0 a1 | b0 b1 | c0 c1) -> (a0 b0 c0 a1 b1 c1), Fig. 1(c)
    x = torch.arange(6.0).view(1, 6, 1, 1).expand(2, 6, 2, 3).contiguous()
    out = channel_shuffle(x, 3)
    assert out[0, :, 0, 0].tolist() == [0.0, 2.0, 4.0, 1.0, 3.0, 5.0]
    assert torch.equal(out[1], out[0]) and out.shape == x.shape
    # with 2 groups (ShuffleNet V2): (0 1 2 | 3 4 5) -> (0 3 1 4 2 5)
    assert channel_shuffle(x, 2)[0, :, 1, 2].tolist() == [0.0, 3.0, 1.0, 4.0, 2.0, 5.0]
    # shuffling by g and then by n = C/g restores the order
    y = torch.randn(2, 12, 3, 3)
    assert torch.equal(channel_shuffle(channel_shuffle(y, 3), 4), y)


def test_shufflenet_v1_g3_parameters_by_hand():
    g, stem, classes = 3, 24, 1000

    def bn(c):
        return 2 * c

    def unit(c_in, c_out, stride, group_first=True):
        mid = c_out // 4
        branch = c_out - c_in if stride == 2 else c_out
        first = c_in * mid // (g if group_first else 1)  # 1×1 (group) conv, no bias
        return first + bn(mid) + mid * 9 + bn(mid) + mid * branch // g + bn(branch)

    total = 3 * stem * 9 + bn(stem)
    c = stem
    for s, (width, repeats) in enumerate(zip((240, 480, 960), (4, 8, 4))):  # Table 1, g = 3
        total += unit(c, width, 2, group_first=s > 0)  # Stage 2's first 1×1 is not grouped
        total += (repeats - 1) * unit(width, width, 1)
        c = width
    total += c * classes + classes
    model = cnnlineage.create_model("shufflenet_v1_g3")
    assert (
        sum(p.numel() for p in model.parameters())
        == total
        == cnnlineage.model_info("shufflenet_v1_g3").ref_params
    )
    # osmr/imgclsmob's independent shufflenet_g3_w1 has the same count
    assert total == 1_865_728

    first = model.stage2[0]
    assert first.conv1[0].groups == 1 and first.conv3[0].groups == 3
    assert all(u.conv1[0].groups == 3 for u in [*model.stage2[1:], *model.stage3, *model.stage4])
    assert [len(model.stage2), len(model.stage3), len(model.stage4)] == [4, 8, 4]

    # the paper's 140 MFLOPs (Table 1/2, multiply-adds) within 3%
    assert abs(_macs(model) / 140e6 - 1) < 0.03


def test_shufflenet_v1_units():
    torch.manual_seed(0)
    x = torch.randn(2, 24, 8, 8)
    down = ShuffleV1Unit(24, 240, 2, 3, group_first=False).eval()
    with torch.no_grad():
        y = down(x)
    assert y.shape == (2, 240, 4, 4)
    # concat: the first 24 channels are the ReLU of the 3×3/2 average-pooled input
    assert torch.allclose(y[:, :24], torch.relu(nn.functional.avg_pool2d(x, 3, 2, 1)))
    same = ShuffleV1Unit(240, 240, 1, 3).eval()
    with torch.no_grad():
        z = same(y)
    assert z.shape == y.shape and (z >= 0).all()
    with pytest.raises(ValueError, match="in_chs must equal out_chs"):
        ShuffleV1Unit(24, 240, 1, 3)


# Ma et al. 2018, Table 5: output channels of Conv1, Stage2-4, Conv5, and the complexity (MFLOPs).
TABLE_5 = {
    "shufflenet_v2_x0_5": ((24, 48, 96, 192, 1024), 41),
    "shufflenet_v2_x1_0": ((24, 116, 232, 464, 1024), 146),
    "shufflenet_v2_x1_5": ((24, 176, 352, 704, 1024), 299),
    "shufflenet_v2_x2_0": ((24, 244, 488, 976, 2048), 591),
}


@pytest.mark.parametrize("name", sorted(TABLE_5))
def test_shufflenet_v2_widths_and_flops_are_table_5(name):
    import torchvision

    widths, mflops = TABLE_5[name]
    model = cnnlineage.create_model(name)
    got = [model.conv1[0].out_channels]
    got += [stage[-1].branch2[-3].out_channels * 2 for stage in (model.stage2, model.stage3, model.stage4)]
    got += [model.conv5[0].out_channels]
    assert tuple(got) == widths
    assert [len(model.stage2), len(model.stage3), len(model.stage4)] == [4, 8, 4]
    assert tuple(torchvision.models.get_model(name)._stage_out_channels) == widths
    assert abs(_macs(model) / (mflops * 1e6) - 1) < 0.03


def test_shufflenet_v2_unit_keeps_half_the_channels():
    torch.manual_seed(0)
    unit = ShuffleV2Unit(8, 8, 1).eval()
    x = torch.randn(1, 8, 4, 4)
    with torch.no_grad():
        y = unit(x)
    # after the 2-group shuffle the untouched half x[:, :4] sits at the even positions
    assert torch.equal(y[:, 0::2], x[:, :4])
    down = ShuffleV2Unit(8, 16, 2).eval()
    with torch.no_grad():
        assert down(x).shape == (1, 16, 2, 2)
    with pytest.raises(ValueError, match="keeps its width"):
        ShuffleV2Unit(8, 16, 1)
