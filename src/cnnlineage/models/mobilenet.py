"""MobileNets v1, v2 and v3: convolutional networks built for phones.

- **v1** — Howard et al., "MobileNets: Efficient Convolutional Neural Networks for Mobile
  Vision Applications", 2017, arXiv:1704.04861. Every convolution after the stem is split
  into a 3×3 depthwise convolution (one filter per channel) and a 1×1 pointwise one, which
  costs 1/N + 1/9 of a full 3×3 convolution (§3.1). A width multiplier α thins every layer
  and a resolution multiplier ρ shrinks the input (§3.3–3.4).
- **v2** — Sandler et al., "MobileNetV2: Inverted Residuals and Linear Bottlenecks", 2018,
  arXiv:1801.04381. Residual blocks whose ends are thin and middle wide (expanded t = 6
  times), with a linear projection back to the thin end: ReLU on a low-dimensional
  manifold destroys information (§3.2).
- **v3** — Howard et al., "Searching for MobileNetV3", 2019, arXiv:1905.02244. The v2 block
  plus squeeze-and-excitation with a hard-sigmoid gate, the h-swish activation
  x·ReLU6(x+3)/6 in the deeper layers, a layer table found by platform-aware NAS and NetAdapt,
  and a cheaper last stage (§5–6).

v2 and v3 keep torchvision's module names, so torchvision state_dicts load as they are. v1
(not in torchvision) loads timm's ``mobilenetv1_100`` through :meth:`MobileNetV1.remap_timm`.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Sequence

import torch
import torch.nn as nn

from ..layers.conv_norm_act import ConvNormAct
from ..layers.helpers import make_divisible
from ..layers.inverted_residual import InvertedResidual
from ..layers.se import SqueezeExcite
from ..registry import register_model
from ._base import LineageModel

__all__ = ["DepthwiseSeparableConv", "LinearBottleneck", "MobileNetV1", "MobileNetV2", "MobileNetV3"]


# ---------------------------------------------------------------------------------------- blocks
class DepthwiseSeparableConv(nn.Module):
    """Return ``pw(dw(x))``: 3×3 depthwise conv-BN-act, then 1×1 pointwise conv-BN-act (v1, Fig. 3 right)."""

    def __init__(
        self,
        in_chs: int,
        out_chs: int,
        *,
        stride: int = 1,
        norm_layer: Callable[[int], nn.Module] = nn.BatchNorm2d,
        act_layer: Callable[..., nn.Module] = nn.ReLU6,
    ) -> None:
        super().__init__()
        self.dw = ConvNormAct(
            in_chs, in_chs, 3, stride, groups=in_chs, norm_layer=norm_layer, act_layer=act_layer
        )
        self.pw = ConvNormAct(in_chs, out_chs, 1, norm_layer=norm_layer, act_layer=act_layer)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pw(self.dw(x))


class LinearBottleneck(nn.Module):
    """Return the v2 inverted residual: [1×1 expand] → 3×3 depthwise → linear 1×1 projection (+ identity).

    Kept in torchvision's 2018 layout (``conv.*`` with the projection as a bare Conv2d and
    BatchNorm2d) so that MobileNetV2 state_dicts load; v3 and EfficientNet use the shared
    :class:`~cnnlineage.layers.inverted_residual.InvertedResidual`.
    """

    def __init__(
        self,
        in_chs: int,
        out_chs: int,
        *,
        stride: int,
        expand_ratio: int,
        norm_layer: Callable[[int], nn.Module] = nn.BatchNorm2d,
        act_layer: Callable[..., nn.Module] = nn.ReLU6,
    ) -> None:
        super().__init__()
        hidden = int(round(in_chs * expand_ratio))
        layers: list[nn.Module] = []
        if expand_ratio != 1:
            layers.append(ConvNormAct(in_chs, hidden, 1, norm_layer=norm_layer, act_layer=act_layer))
        layers += [
            ConvNormAct(hidden, hidden, 3, stride, groups=hidden, norm_layer=norm_layer, act_layer=act_layer),
            nn.Conv2d(hidden, out_chs, 1, bias=False),  # linear bottleneck: no activation (§3.2)
            norm_layer(out_chs),
        ]
        self.conv = nn.Sequential(*layers)
        self.use_residual = stride == 1 and in_chs == out_chs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.use_residual else self.conv(x)


def _stage_ends(layers: Sequence[tuple[str, int, int]]) -> list[dict]:
    """Return feature_info from (module, channels, stride) per layer: the last module at each reduction."""
    info: list[dict] = []
    reduction = 1
    for module, chs, stride in layers:
        reduction *= stride
        entry = dict(module=module, num_chs=chs, reduction=reduction)
        if info and info[-1]["reduction"] == reduction:
            info[-1] = entry
        else:
            info.append(entry)
    return info


def _init_weights(model: nn.Module) -> None:
    # As torchvision and the authors' TF code: He (fan-out) convs, unit BN, N(0, 0.01) classifier.
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0.0, 0.01)
            nn.init.zeros_(m.bias)


class _PooledClassifier(LineageModel):
    """Shared head: global average pool → ``classifier`` (a Sequential whose last layer is the Linear)."""

    features: nn.Sequential
    classifier: nn.Sequential

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = torch.flatten(self.avgpool(x), 1)  # (B, C)
        if not pre_logits:
            return self.classifier(x)  # one call, as torchvision: a slice would build a new Sequential
        return self.classifier[:-1](x)

    def get_classifier(self) -> nn.Module:
        return self.classifier[-1]

    def reset_classifier(self, num_classes: int) -> None:
        self.num_classes = num_classes
        in_features = self.num_features
        self.classifier[-1] = nn.Linear(in_features, num_classes) if num_classes > 0 else nn.Identity()


# ---------------------------------------------------------------------------------------- v1
# MobileNet v1, Table 1: the 13 depthwise-separable layers after the 3×3/2 stem (32 channels).
# The table prints the last depthwise layer as "s2" on a 7×7 input with a 7×7 output; its
# stride is 1, as in the authors' TF-slim code.
MOBILENET_V1_LAYERS: tuple[tuple[int, int], ...] = (
    # c, s  (pointwise output channels, depthwise stride)
    (64, 1),
    (128, 2), (128, 1),
    (256, 2), (256, 1),
    (512, 2), (512, 1), (512, 1), (512, 1), (512, 1), (512, 1),
    (1024, 2), (1024, 1),
)  # fmt: skip


class MobileNetV1(_PooledClassifier):
    """MobileNet v1: 3×3/2 conv stem, 13 depthwise-separable layers, global average pool, FC.

    ``width_mult`` is α (every layer's channels become max(int(α·c), 8), as the TF-slim
    reference rounds them), ``resolution_mult`` is ρ (default input round(224·ρ)). The
    activation defaults to ReLU6: the paper's text says ReLU, but the authors' TF-slim
    release that produced its results and checkpoints (and timm's weights) use ReLU6; pass
    ``act_layer=nn.ReLU`` for the text's version.
    """

    def __init__(
        self,
        *,
        width_mult: float = 1.0,
        resolution_mult: float = 1.0,
        num_classes: int = 1000,
        in_chans: int = 3,
        drop_rate: float = 0.0,
        layers: Sequence[tuple[int, int]] = MOBILENET_V1_LAYERS,
        norm_layer: Callable[[int], nn.Module] = nn.BatchNorm2d,
        act_layer: Callable[..., nn.Module] = nn.ReLU6,
    ) -> None:
        if width_mult <= 0 or resolution_mult <= 0:
            raise ValueError(
                f"width_mult and resolution_mult must be positive, got {width_mult}, {resolution_mult}"
            )
        size = round(224 * resolution_mult)
        super().__init__(in_chans=in_chans, num_classes=num_classes, input_size=(in_chans, size, size))
        self.width_mult, self.resolution_mult = width_mult, resolution_mult

        def width(c: int) -> int:
            return max(int(c * width_mult), 8)

        chs = width(32)
        blocks: list[nn.Module] = [
            ConvNormAct(in_chans, chs, 3, 2, norm_layer=norm_layer, act_layer=act_layer)
        ]
        trace = [("features.0", chs, 2)]
        for i, (c, s) in enumerate(layers, start=1):
            blocks.append(
                DepthwiseSeparableConv(chs, width(c), stride=s, norm_layer=norm_layer, act_layer=act_layer)
            )
            chs = width(c)
            trace.append((f"features.{i}", chs, s))
        self.features = nn.Sequential(*blocks)
        self.feature_info = _stage_ends(trace)
        self.num_features = chs
        self.avgpool = nn.AdaptiveAvgPool2d(1)  # the paper's 7×7 average pool at 224
        self.classifier = nn.Sequential(
            nn.Dropout(drop_rate), nn.Linear(chs, num_classes) if num_classes > 0 else nn.Identity()
        )
        _init_weights(self)

    def remap_timm(self, state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Return timm ``mobilenetv1_*`` keys renamed to ours.

        timm: ``conv_stem``/``bn1``, then ``blocks.<stage>.<i>.{conv_dw,bn1,conv_pw,bn2}`` in
        five stages, then ``classifier``; ours: ``features.0`` and ``features.1``–``13``
        ``.{dw,pw}.{0,1}`` in one sequence, then ``classifier.1`` (after the dropout).
        """
        parts = {"conv_dw": "dw.0", "bn1": "dw.1", "conv_pw": "pw.0", "bn2": "pw.1"}
        pattern = re.compile(r"blocks\.(\d+)\.(\d+)\.(\w+)\.(.+)")
        matches = {k: pattern.fullmatch(k) for k in state_dict}
        order = sorted({(int(m[1]), int(m[2])) for m in matches.values() if m})
        index = {pos: i + 1 for i, pos in enumerate(order)}  # features.0 is the stem
        out: dict[str, torch.Tensor] = {}
        for k, v in state_dict.items():
            m = matches[k]
            if m:
                k = f"features.{index[int(m[1]), int(m[2])]}.{parts.get(m[3], m[3])}.{m[4]}"
            elif k.startswith("conv_stem."):
                k = "features.0.0." + k[len("conv_stem.") :]
            elif k.startswith("bn1."):
                k = "features.0.1." + k[len("bn1.") :]
            elif k.startswith("classifier."):
                k = "classifier.1." + k[len("classifier.") :]
            out[k] = v
        return out


# ---------------------------------------------------------------------------------------- v2
MOBILENET_V2_SETTING: tuple[tuple[int, int, int, int], ...] = (
    # t, c, n, s  (expansion, output channels, repeats, stride of the first) — Table 2
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)


class MobileNetV2(_PooledClassifier):
    """MobileNetV2: 3×3/2 stem (32), 17 linear-bottleneck blocks (Table 2), 1×1 conv to 1280, pool, FC.

    ``width_mult`` scales every width, rounded to a multiple of 8; the last 1×1 conv keeps 1280
    channels for multipliers below 1 (§6.1, "we do not apply the width multiplier to the last
    convolutional layer").
    """

    def __init__(
        self,
        *,
        width_mult: float = 1.0,
        num_classes: int = 1000,
        in_chans: int = 3,
        dropout: float = 0.2,
        setting: Sequence[tuple[int, int, int, int]] = MOBILENET_V2_SETTING,
        norm_layer: Callable[[int], nn.Module] = nn.BatchNorm2d,
        act_layer: Callable[..., nn.Module] = nn.ReLU6,
    ) -> None:
        super().__init__(in_chans=in_chans, num_classes=num_classes, input_size=(in_chans, 224, 224))
        self.width_mult = width_mult
        chs = make_divisible(32 * width_mult, 8)
        last = make_divisible(1280 * max(1.0, width_mult), 8)
        layers: list[nn.Module] = [
            ConvNormAct(in_chans, chs, 3, 2, norm_layer=norm_layer, act_layer=act_layer)
        ]
        trace = [("features.0", chs, 2)]
        for t, c, n, s in setting:
            out = make_divisible(c * width_mult, 8)
            for i in range(n):
                stride = s if i == 0 else 1
                layers.append(
                    LinearBottleneck(
                        chs, out, stride=stride, expand_ratio=t, norm_layer=norm_layer, act_layer=act_layer
                    )
                )
                trace.append((f"features.{len(layers) - 1}", out, stride))
                chs = out
        layers.append(ConvNormAct(chs, last, 1, norm_layer=norm_layer, act_layer=act_layer))
        self.features = nn.Sequential(*layers)
        self.feature_info = _stage_ends(trace)
        self.num_features = last
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(
            nn.Dropout(dropout), nn.Linear(last, num_classes) if num_classes > 0 else nn.Identity()
        )
        _init_weights(self)


# ---------------------------------------------------------------------------------------- v3
# Tables 1 and 2 of the v3 paper, one row per bneck block (found by NAS + NetAdapt).
MOBILENET_V3_LARGE: tuple[tuple[int, int, int, bool, str, int], ...] = (
    # k, exp, c, se, nl, s   (kernel, expanded width, output width, SE gate, activation, stride)
    (3, 16, 16, False, "RE", 1),
    (3, 64, 24, False, "RE", 2),
    (3, 72, 24, False, "RE", 1),
    (5, 72, 40, True, "RE", 2),
    (5, 120, 40, True, "RE", 1),
    (5, 120, 40, True, "RE", 1),
    (3, 240, 80, False, "HS", 2),
    (3, 200, 80, False, "HS", 1),
    (3, 184, 80, False, "HS", 1),
    (3, 184, 80, False, "HS", 1),
    (3, 480, 112, True, "HS", 1),
    (3, 672, 112, True, "HS", 1),
    (5, 672, 160, True, "HS", 2),
    (5, 960, 160, True, "HS", 1),
    (5, 960, 160, True, "HS", 1),
)
MOBILENET_V3_SMALL: tuple[tuple[int, int, int, bool, str, int], ...] = (
    # k, exp, c, se, nl, s
    (3, 16, 16, True, "RE", 2),
    (3, 72, 24, False, "RE", 2),
    (3, 88, 24, False, "RE", 1),
    (5, 96, 40, True, "HS", 2),
    (5, 240, 40, True, "HS", 1),
    (5, 240, 40, True, "HS", 1),
    (5, 120, 48, True, "HS", 1),
    (5, 144, 48, True, "HS", 1),
    (5, 288, 96, True, "HS", 2),
    (5, 576, 96, True, "HS", 1),
    (5, 576, 96, True, "HS", 1),
)
_V3_ACT: dict[str, Callable[..., nn.Module]] = {"RE": nn.ReLU, "HS": nn.Hardswish}


def _v3_se(channels: int) -> SqueezeExcite:
    # §5.3: squeeze to 1/4 of the expansion (rounded to 8), ReLU, hard-sigmoid ReLU6(x+3)/6 gate.
    return SqueezeExcite(
        channels, make_divisible(channels // 4, 8), act_layer=nn.ReLU, gate_layer=nn.Hardsigmoid
    )


class MobileNetV3(_PooledClassifier):
    """MobileNetV3: 3×3/2 h-swish stem (16), bneck blocks from a table, 1×1 conv (6× the last width),
    pool, then two 1×1 layers without BN — Linear(6c → ``last_chs``) with h-swish and the classifier (§5.2).
    """

    def __init__(
        self,
        *,
        setting: Sequence[tuple[int, int, int, bool, str, int]],
        last_chs: int,
        width_mult: float = 1.0,
        num_classes: int = 1000,
        in_chans: int = 3,
        dropout: float = 0.2,
        norm_layer: Callable[[int], nn.Module] | None = None,
    ) -> None:
        super().__init__(in_chans=in_chans, num_classes=num_classes, input_size=(in_chans, 224, 224))
        self.width_mult = width_mult
        norm_layer = norm_layer or functools.partial(
            nn.BatchNorm2d, eps=1e-3, momentum=0.01
        )  # TF: decay 0.99

        def width(c: int) -> int:
            return make_divisible(c * width_mult, 8)

        chs = width(16)
        layers: list[nn.Module] = [
            ConvNormAct(in_chans, chs, 3, 2, norm_layer=norm_layer, act_layer=nn.Hardswish)
        ]
        trace = [("features.0", chs, 2)]
        for i, (k, exp, c, se, nl, s) in enumerate(setting, start=1):
            block = InvertedResidual(
                chs,
                width(c),
                mid_chs=width(exp),
                kernel_size=k,
                stride=s,
                se_layer=_v3_se if se else None,
                norm_layer=norm_layer,
                act_layer=_V3_ACT[nl],
            )
            layers.append(block)
            chs = width(c)
            trace.append((f"features.{i}", chs, s))
        head = 6 * chs  # 960 = 6·160 (large), 576 = 6·96 (small)
        layers.append(ConvNormAct(chs, head, 1, norm_layer=norm_layer, act_layer=nn.Hardswish))
        self.features = nn.Sequential(*layers)
        self.feature_info = _stage_ends(trace)
        last = width(last_chs)
        self.num_features = last
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        # The efficient last stage (§6.1.2): pool first, then the 1×1 layers run on a 1×1 map.
        self.classifier = nn.Sequential(
            nn.Linear(head, last),
            nn.Hardswish(inplace=True),
            nn.Dropout(dropout, inplace=True),
            nn.Linear(last, num_classes) if num_classes > 0 else nn.Identity(),
        )
        _init_weights(self)


# ---------------------------------------------------------------------------------------- registry
_V1 = dict(
    family="mobilenet",
    year=2017,
    paper="MobileNets: Efficient Convolutional Neural Networks for Mobile Vision Applications",
    authors=("Howard", "Zhu", "Chen", "Kalenichenko", "Wang", "Weyand", "Andreetto", "Adam"),
    venue="arXiv",
    venue_year=2017,
    arxiv="1704.04861",
    input_size=(3, 224, 224),
)
_V1_NOTES = (
    "ReLU6 as in the authors' TF-slim code and timm (the paper's text says ReLU; act_layer=nn.ReLU). "
    "Global average pooling instead of the fixed 7x7 pool (identical at 224). resolution_mult=rho sets "
    "the input to round(224*rho)."
)
_V1_IDEA = "Depthwise-separable convolutions (3x3 per channel, then 1x1 across) cut cost 8-9x; α and ρ trade accuracy for speed."


@register_model(
    **_V1,
    key_idea=_V1_IDEA,
    ref_params=4_231_976,
    ref_params_source="hand count from Table 1: convs 3,185,088 + BN 21,888 + FC 1,025,000 (paper: 4.2M); "
    "equals timm mobilenetv1_100",
    ref_top1=70.6,
    ref_top1_kind="paper",
    ref_top1_source="Howard et al. 2017, Table 8 (1.0 MobileNet-224)",
    timm="mobilenetv1_100",
    notes=_V1_NOTES,
)
def mobilenet_v1(
    *,
    width_mult: float = 1.0,
    resolution_mult: float = 1.0,
    num_classes: int = 1000,
    in_chans: int = 3,
    drop_rate: float = 0.0,
    act_layer: Callable[..., nn.Module] = nn.ReLU6,
) -> MobileNetV1:
    """Return MobileNet v1 with width multiplier α = ``width_mult`` and resolution multiplier ρ = ``resolution_mult``."""
    return MobileNetV1(
        width_mult=width_mult,
        resolution_mult=resolution_mult,
        num_classes=num_classes,
        in_chans=in_chans,
        drop_rate=drop_rate,
        act_layer=act_layer,
    )


@register_model(
    **_V1,
    name="mobilenet_v1_0.75",
    key_idea=_V1_IDEA,
    ref_params=2_585_560,
    ref_params_source="hand count from Table 1 at alpha=0.75: convs 1,800,144 (as TF-slim lists) + BN 16,416 + FC 769,000 (paper Table 6: 2.6M)",
    ref_top1=68.4,
    ref_top1_kind="paper",
    ref_top1_source="Howard et al. 2017, Table 6 (0.75 MobileNet-224)",
    notes=_V1_NOTES,
    default_kwargs=dict(width_mult=0.75),
)
def mobilenet_v1_075(
    *, resolution_mult: float = 1.0, num_classes: int = 1000, in_chans: int = 3, drop_rate: float = 0.0
) -> MobileNetV1:
    """Return 0.75 MobileNet-224 (α = 0.75), at resolution 224·``resolution_mult``."""
    return MobileNetV1(
        width_mult=0.75,
        resolution_mult=resolution_mult,
        num_classes=num_classes,
        in_chans=in_chans,
        drop_rate=drop_rate,
    )


@register_model(
    **_V1,
    name="mobilenet_v1_0.5",
    key_idea=_V1_IDEA,
    ref_params=1_331_592,
    ref_params_source="hand count from Table 1 at alpha=0.5: convs 807,648 + BN 10,944 + FC 513,000 (paper Table 6: 1.3M)",
    ref_top1=63.7,
    ref_top1_kind="paper",
    ref_top1_source="Howard et al. 2017, Table 6 (0.5 MobileNet-224)",
    notes=_V1_NOTES,
    default_kwargs=dict(width_mult=0.5),
)
def mobilenet_v1_050(
    *, resolution_mult: float = 1.0, num_classes: int = 1000, in_chans: int = 3, drop_rate: float = 0.0
) -> MobileNetV1:
    """Return 0.5 MobileNet-224 (α = 0.5), at resolution 224·``resolution_mult``."""
    return MobileNetV1(
        width_mult=0.5,
        resolution_mult=resolution_mult,
        num_classes=num_classes,
        in_chans=in_chans,
        drop_rate=drop_rate,
    )


@register_model(
    family="mobilenet",
    year=2018,
    paper="MobileNetV2: Inverted Residuals and Linear Bottlenecks",
    authors=("Sandler", "Howard", "Zhu", "Zhmoginov", "Chen"),
    venue="CVPR",
    venue_year=2018,
    arxiv="1801.04381",
    input_size=(3, 224, 224),
    key_idea="Inverted residuals: thin ends, a 6x-expanded depthwise middle, and a linear (no ReLU) projection.",
    ref_params=3_504_872,
    ref_params_source="torchvision MobileNet_V2_Weights meta num_params",
    ref_top1=72.0,
    ref_top1_kind="paper",
    ref_top1_source="Sandler et al. 2018, Table 4",
    torchvision="mobilenet_v2",
)
def mobilenet_v2(
    *, width_mult: float = 1.0, num_classes: int = 1000, in_chans: int = 3, dropout: float = 0.2
) -> MobileNetV2:
    """Return MobileNetV2 (Table 2) with width multiplier ``width_mult``."""
    return MobileNetV2(width_mult=width_mult, num_classes=num_classes, in_chans=in_chans, dropout=dropout)


_V3 = dict(
    family="mobilenet",
    year=2019,
    paper="Searching for MobileNetV3",
    authors=(
        "Howard",
        "Sandler",
        "Chu",
        "Chen",
        "Chen",
        "Tan",
        "Wang",
        "Zhu",
        "Pang",
        "Vasudevan",
        "Le",
        "Adam",
    ),
    venue="ICCV",
    venue_year=2019,
    arxiv="1905.02244",
    input_size=(3, 224, 224),
    notes="The small model's last 1x1 conv has no SE gate, as in torchvision and the authors' TF code "
    "(Table 2 of the paper marks one). BN eps 1e-3, momentum 0.01 (TF's 0.99 decay).",
)


@register_model(
    **_V3,
    key_idea="NAS-found v2 blocks with SE (hard-sigmoid gate), h-swish in the deep layers, a cheaper last stage.",
    ref_params=5_483_032,
    ref_params_source="torchvision MobileNet_V3_Large_Weights meta num_params",
    ref_top1=75.2,
    ref_top1_kind="paper",
    ref_top1_source="Howard et al. 2019, Table 3 (Large 1.0)",
    torchvision="mobilenet_v3_large",
)
def mobilenet_v3_large(
    *, width_mult: float = 1.0, num_classes: int = 1000, in_chans: int = 3, dropout: float = 0.2
) -> MobileNetV3:
    """Return MobileNetV3-Large (Table 1)."""
    return MobileNetV3(
        setting=MOBILENET_V3_LARGE,
        last_chs=1280,
        width_mult=width_mult,
        num_classes=num_classes,
        in_chans=in_chans,
        dropout=dropout,
    )


@register_model(
    **_V3,
    key_idea="MobileNetV3 for low-resource use: 11 NAS-found blocks, SE and h-swish, 1024-wide head.",
    ref_params=2_542_856,
    ref_params_source="torchvision MobileNet_V3_Small_Weights meta num_params",
    ref_top1=67.4,
    ref_top1_kind="paper",
    ref_top1_source="Howard et al. 2019, Table 3 (Small 1.0)",
    torchvision="mobilenet_v3_small",
)
def mobilenet_v3_small(
    *, width_mult: float = 1.0, num_classes: int = 1000, in_chans: int = 3, dropout: float = 0.2
) -> MobileNetV3:
    """Return MobileNetV3-Small (Table 2)."""
    return MobileNetV3(
        setting=MOBILENET_V3_SMALL,
        last_chs=1024,
        width_mult=width_mult,
        num_classes=num_classes,
        in_chans=in_chans,
        dropout=dropout,
    )
