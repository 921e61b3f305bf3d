"""MobileNet v1/v2/v3 against their papers' tables: layer lists, parameter and mult-add counts.

Counts are taken on the meta device (shapes only, no arithmetic), so even the layer-by-layer
checks cost milliseconds. Parity with torchvision/timm weights is in tests/test_weights.py.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision

import cnnlineage
from cnnlineage.layers.se import SqueezeExcite
from cnnlineage.models.mobilenet import MobileNetV1, MobileNetV2, MobileNetV3


def _params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _trace(
    model: nn.Module, size: int, chans: int = 3
) -> tuple[int, list[tuple[nn.Module, tuple[int, ...]]]]:
    """Return (mult-adds of convs and linears, [(module, input shape)] in call order) at size×size, on meta."""
    calls: list[tuple[nn.Module, tuple[int, ...]]] = []
    total = 0

    def hook(m: nn.Module, inp: tuple[torch.Tensor], out: torch.Tensor) -> None:
        nonlocal total
        calls.append((m, tuple(inp[0].shape)))
        if isinstance(m, nn.Conv2d):
            total += out[0].numel() * (m.in_channels // m.groups) * m.kernel_size[0] * m.kernel_size[1]
        elif isinstance(m, nn.Linear):
            total += m.in_features * m.out_features

    hooks = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    model.eval()
    with torch.no_grad():
        model(torch.empty(1, chans, size, size, device="meta"))
    for h in hooks:
        h.remove()
    return total, calls


def _build(name: str, **kwargs) -> nn.Module:
    with torch.device("meta"):
        return cnnlineage.create_model(name, **kwargs)


# ------------------------------------------------------------------------------------ v1
# MobileNet v1, Table 1 as printed: (type, stride, filter shape, input size H, W, C).
# "dw" filters are 3×3×C (one per channel); the second-to-last row reads "Conv dw / s2" in the
# paper but maps 7×7 to 7×7, so its stride is 1 (as in the authors' TF-slim code).
TABLE_1 = [
    ("conv", 2, (3, 3, 3, 32), (224, 224, 3)),
    ("dw", 1, (3, 3, 32), (112, 112, 32)),
    ("conv", 1, (1, 1, 32, 64), (112, 112, 32)),
    ("dw", 2, (3, 3, 64), (112, 112, 64)),
    ("conv", 1, (1, 1, 64, 128), (56, 56, 64)),
    ("dw", 1, (3, 3, 128), (56, 56, 128)),
    ("conv", 1, (1, 1, 128, 128), (56, 56, 128)),
    ("dw", 2, (3, 3, 128), (56, 56, 128)),
    ("conv", 1, (1, 1, 128, 256), (28, 28, 128)),
    ("dw", 1, (3, 3, 256), (28, 28, 256)),
    ("conv", 1, (1, 1, 256, 256), (28, 28, 256)),
    ("dw", 2, (3, 3, 256), (28, 28, 256)),
    ("conv", 1, (1, 1, 256, 512), (14, 14, 256)),
    *[
        row
        for _ in range(5)
        for row in (("dw", 1, (3, 3, 512), (14, 14, 512)), ("conv", 1, (1, 1, 512, 512), (14, 14, 512)))
    ],
    ("dw", 2, (3, 3, 512), (14, 14, 512)),
    ("conv", 1, (1, 1, 512, 1024), (7, 7, 512)),
    ("dw", 1, (3, 3, 1024), (7, 7, 1024)),  # printed "s2", see above
    ("conv", 1, (1, 1, 1024, 1024), (7, 7, 1024)),
    ("fc", 1, (1024, 1000), (1, 1, 1024)),
]


def test_v1_layers_follow_table_1():
    model = _build("mobilenet_v1")
    _, calls = _trace(model, 224)
    assert len(calls) == len(TABLE_1) == 28  # 27 conv layers (13 separable = 26, plus the stem) and the FC
    for (m, shape), (kind, stride, filt, (h, w, c)) in zip(calls, TABLE_1):
        if kind == "fc":
            assert isinstance(m, nn.Linear) and (m.in_features, m.out_features) == filt
            continue
        assert (shape[2], shape[3], shape[1]) == (h, w, c)
        assert m.stride == (stride, stride)
        if kind == "dw":
            assert m.groups == m.in_channels == m.out_channels == filt[2] and m.kernel_size == filt[:2]
        else:
            assert m.groups == 1 and (*m.kernel_size, m.in_channels, m.out_channels) == filt
    # every conv is followed by BN and the activation (Fig. 3 right); the FC is preceded by a global pool
    convs = [
        m for m in model.features.modules() if isinstance(m, nn.Sequential) and isinstance(m[0], nn.Conv2d)
    ]
    assert len(convs) == 27 and all(
        isinstance(s[1], nn.BatchNorm2d) and isinstance(s[2], nn.ReLU6) for s in convs
    )


def _v1_hand_count(alpha: float) -> int:
    # Table 1 at width alpha: every width becomes max(int(alpha*c), 8); BN has 2 parameters per channel.
    w = [
        max(int(alpha * c), 8) for c in (32, 64, 128, 128, 256, 256, 512, 512, 512, 512, 512, 512, 1024, 1024)
    ]
    convs = 3 * 3 * 3 * w[0] + sum(9 * a + a * b for a, b in zip(w, w[1:]))
    bn = 2 * (w[0] + sum(a + b for a, b in zip(w, w[1:])))
    return convs + bn + w[-1] * 1000 + 1000


@pytest.mark.parametrize(
    "name, kwargs, paper_params_m, paper_madds_m",
    [
        # Table 6 (width multiplier) and Table 7 (resolution multiplier); params in millions, 1 decimal
        ("mobilenet_v1", {}, 4.2, 569),
        ("mobilenet_v1_0.75", {}, 2.6, 325),
        ("mobilenet_v1_0.5", {}, 1.3, 149),
        ("mobilenet_v1", dict(width_mult=0.25), 0.5, 41),
        ("mobilenet_v1", dict(resolution_mult=6 / 7), 4.2, 418),
        ("mobilenet_v1", dict(resolution_mult=5 / 7), 4.2, 290),
        ("mobilenet_v1", dict(resolution_mult=4 / 7), 4.2, 186),
    ],
)
def test_v1_width_and_resolution_multipliers_match_tables_6_and_7(
    name, kwargs, paper_params_m, paper_madds_m
):
    model = _build(name, **kwargs)
    alpha, rho = model.width_mult, model.resolution_mult
    assert model.input_size == (3, round(224 * rho), round(224 * rho))
    n = _params(model)
    assert n == _v1_hand_count(alpha)
    assert round(n / 1e6, 1) == paper_params_m
    madds, _ = _trace(model, model.input_size[1])
    assert abs(madds / 1e6 - paper_madds_m) < 1  # the tables round (568.7 -> 569, but 290.7 -> 290)


def test_v1_cards_equal_hand_counts():
    for name, alpha in (("mobilenet_v1", 1.0), ("mobilenet_v1_0.75", 0.75), ("mobilenet_v1_0.5", 0.5)):
        assert cnnlineage.model_info(name).ref_params == _v1_hand_count(alpha)


def test_v1_depthwise_separable_saves_what_section_3_1_says():
    # Cost ratio of a separable layer to a full 3x3 conv: 1/N + 1/D_K^2 (Eq. 5), N output channels.
    model = _build("mobilenet_v1")
    block = model.features[8]  # 512 -> 512 at 14x14
    sep, _ = _trace(block, 14, chans=512)
    full = 14 * 14 * 512 * 512 * 9
    assert sep / full == pytest.approx(1 / 512 + 1 / 9)


def test_v1_paper_relu_variant_only_swaps_the_activation():
    relu6 = _build("mobilenet_v1")
    relu = _build("mobilenet_v1", act_layer=nn.ReLU)
    assert {k: v.shape for k, v in relu.state_dict().items()} == {
        k: v.shape for k, v in relu6.state_dict().items()
    }
    acts = [type(m) for m in relu.modules() if isinstance(m, (nn.ReLU, nn.ReLU6))]
    assert len(acts) == 27 and set(acts) == {nn.ReLU}


def test_v1_remap_timm_renames_every_key():
    timm = pytest.importorskip("timm")
    with torch.device("meta"):
        ref = timm.create_model("mobilenetv1_100", pretrained=False)
    ours = _build("mobilenet_v1")
    remapped = ours.remap_timm(ref.state_dict())
    assert list(remapped) == list(ours.state_dict())  # same keys, same order (stem, 13 blocks, classifier)
    assert all(remapped[k].shape == v.shape for k, v in ours.state_dict().items())


# ------------------------------------------------------------------------------------ v2
# MobileNetV2, Table 2's input column: the input of each bottleneck row and of the final 1x1 conv.
TABLE_2_INPUTS = [(112, 32), (112, 16), (56, 24), (28, 32), (14, 64), (14, 96), (7, 160), (7, 320)]


def test_v2_bottleneck_inputs_follow_table_2():
    model = _build("mobilenet_v2")
    _, calls = _trace(model, 224)
    inputs = {id(m): s for m, s in calls}
    first_of_row = [model.features[i].conv[0][0] for i in (1, 2, 4, 7, 11, 14, 17)] + [model.features[18][0]]
    got = [(inputs[id(conv)][2], inputs[id(conv)][1]) for conv in first_of_row]
    assert got == TABLE_2_INPUTS
    # expansion t: the hidden width is t times the block input (t = 1 in the first row, 6 after)
    assert [blk.conv[0][0].out_channels // blk.conv[0][0].in_channels for blk in model.features[2:18]] == [
        6
    ] * 16
    assert model.features[1].conv[0][0].groups == 32  # t = 1: no expansion, straight to depthwise
    # residual exactly where stride is 1 and widths agree: within rows, not at row starts
    assert [i for i in range(1, 18) if model.features[i].use_residual] == [3, 5, 6, 8, 9, 10, 12, 13, 15, 16]


def test_v2_counts_match_table_4():
    model = _build("mobilenet_v2")
    madds, _ = _trace(model, 224)
    assert madds / 1e6 == pytest.approx(300, rel=0.01)  # Table 4: 300M mult-adds (we count 300.8M)
    # Table 4 lists 3.4M parameters; torchvision's identical network counts 3,504,872 (3.5M).
    assert _params(model) == 3_504_872


@pytest.mark.parametrize("width_mult", [0.35, 0.5, 0.75, 1.4])
def test_v2_width_multiplier_matches_torchvision(width_mult):
    # Widths round to multiples of 8; the last conv keeps 1280 below width 1 (§6.1).
    ours = _build("mobilenet_v2", width_mult=width_mult)
    with torch.device("meta"):
        ref = torchvision.models.mobilenet_v2(width_mult=width_mult)
    assert {k: v.shape for k, v in ours.state_dict().items()} == {
        k: v.shape for k, v in ref.state_dict().items()
    }
    assert ours.num_features == max(1280, math.ceil(1280 * width_mult / 8) * 8)


# ------------------------------------------------------------------------------------ v3
# Tables 1 and 2 of the v3 paper, input column (side, channels) of every bneck row.
V3_LARGE_INPUTS = (
    [(112, 16)] * 2 + [(56, 24)] * 2 + [(28, 40)] * 3 + [(14, 80)] * 4 + [(14, 112)] * 2 + [(7, 160)] * 2
)
V3_SMALL_INPUTS = [
    (112, 16),
    (56, 16),
    (28, 24),
    (28, 24),
    (14, 40),
    (14, 40),
    (14, 40),
    (14, 48),
    (14, 48),
    (7, 96),
    (7, 96),
]


@pytest.mark.parametrize(
    "name, inputs, head, paper_madds_m, paper_params_m",
    [
        ("mobilenet_v3_large", V3_LARGE_INPUTS, (960, 1280), 219, 5.4),  # Table 1, Table 3
        ("mobilenet_v3_small", V3_SMALL_INPUTS, (576, 1024), 56, 2.5),  # Table 2, Table 3
    ],
)
def test_v3_layers_and_counts_follow_the_tables(name, inputs, head, paper_madds_m, paper_params_m):
    model = _build(name)
    madds, calls = _trace(model, 224)
    first_in = {id(m): s for m, s in reversed(calls)}
    blocks = list(model.features)[1:-1]
    got = [(first_in[id(b.block[0][0])][2], first_in[id(b.block[0][0])][1]) for b in blocks]
    assert got == inputs
    assert (model.features[-1][0].out_channels, model.classifier[0].out_features) == head
    # the last two 1x1 layers have no BN and act on the pooled 1x1 map (§5.2): Linear layers
    assert isinstance(model.classifier[0], nn.Linear) and isinstance(model.classifier[-1], nn.Linear)
    # Table 3 rounds; our conv+FC mult-adds and torchvision's parameter count agree to 2%
    assert madds / 1e6 == pytest.approx(paper_madds_m, rel=0.02)
    assert _params(model) / 1e6 == pytest.approx(paper_params_m, rel=0.02)


def test_v3_se_squeeze_and_activations():
    model = _build("mobilenet_v3_large")
    ses = [m for m in model.modules() if isinstance(m, SqueezeExcite)]
    # squeeze to exp/4 rounded to a multiple of 8, never below 90%: 72->24 (18 would round to 16 < 16.2)
    assert [(se.fc1.in_channels, se.fc1.out_channels) for se in ses] == [
        (72, 24), (120, 32), (120, 32), (480, 120), (672, 168), (672, 168), (960, 240), (960, 240)
    ]  # fmt: skip
    x = torch.linspace(-5, 5, 101)
    gate, hswish = ses[0].gate, model.features[0][2]
    assert torch.allclose(gate(x.clone()), F.relu6(x + 3) / 6)  # hard sigmoid, §5.2
    assert torch.allclose(hswish(x.clone()), x * F.relu6(x + 3) / 6)  # h-swish, Eq. (2) (in place: clone)
    # h-swish only in the second half of the network (Table 1 "NL" column): blocks 7-15
    uses_hs = [any(isinstance(m, nn.Hardswish) for m in b.modules()) for b in list(model.features)[1:-1]]
    assert uses_hs == [False] * 6 + [True] * 9


@pytest.mark.parametrize("name", ["mobilenet_v3_large", "mobilenet_v3_small"])
def test_v3_width_multiplier_matches_torchvision(name):
    ours = _build(name, width_mult=0.75)
    with torch.device("meta"):
        ref = torchvision.models.get_model(name, weights=None, width_mult=0.75)
    assert {k: v.shape for k, v in ours.state_dict().items()} == {
        k: v.shape for k, v in ref.state_dict().items()
    }


# ------------------------------------------------------------------------------------ shared
@pytest.mark.parametrize("cls", [MobileNetV1, MobileNetV2, MobileNetV3])
def test_pre_logits_and_reset_classifier(cls):
    name = {MobileNetV1: "mobilenet_v1_0.5", MobileNetV2: "mobilenet_v2", MobileNetV3: "mobilenet_v3_small"}[
        cls
    ]
    model = cnnlineage.create_model(name, num_classes=0).eval()
    with torch.no_grad():
        feats = model(torch.randn(2, 3, 64, 64))
    assert feats.shape == (2, model.num_features)
    model.reset_classifier(5)
    with torch.no_grad():
        assert model(torch.randn(2, 3, 32, 32)).shape == (2, 5)
