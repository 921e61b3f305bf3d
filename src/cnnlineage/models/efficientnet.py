"""EfficientNet — Tan & Le, "EfficientNet: Rethinking Model Scaling for Convolutional Neural
Networks", ICML 2019, arXiv:1905.11946.

Scaling a network up by depth, width *or* resolution alone saturates quickly; scaling all
three together by one compound coefficient φ does not (§3). With depth d = α^φ, width
w = β^φ and resolution r = γ^φ, FLOPs grow as (α·β²·γ²)^φ, and a grid search at φ = 1 under
α·β²·γ² ≈ 2 gave α = 1.2, β = 1.1, γ = 1.15 (Eq. 3). The baseline B0 (Table 1) is a
MnasNet-like stack of MBConv blocks — MobileNetV2's inverted residual with
squeeze-and-excitation and Swish (SiLU) — found by neural architecture search.

Two ways to scale here:

- :func:`efficientnet` (``phi=``) applies Eq. 3 literally: d = 1.2^φ, w = 1.1^φ,
  r = round(224·1.15^φ), dropout rising linearly from 0.2 at φ = 0 to 0.5 at φ = 7 (§5.2).
- ``efficientnet_b0`` … ``efficientnet_b7`` use the coefficient table the authors published
  with their code (``efficientnet_builder.py``; torchvision and timm use the same). It is not
  Eq. 3 at integer φ: B1–B3 match Eq. 3 at φ ≈ 0.5, 1, 2 to the table's rounding (width
  and depth ±0.05, resolution ±2%), while no single φ matches B4–B7 that closely — the best
  is off by up to ~7% on one axis (B7: depth 3.1, where the resolution 600 implies φ ≈ 7 and
  1.2^7 ≈ 3.6); the authors tuned the large models by hand (tensorflow/tpu#390).
  ``tests/models/test_efficientnet.py`` measures both.

:func:`scale_model` scales any configuration along any subset of the three axes, so
single-axis scaling (Fig. 3) can be set against compound scaling (Fig. 4). Widths are
rounded to multiples of 8 (``make_divisible``) and depths up (``ceil(d·n)``), as in the
authors' code. Module names are torchvision's, so its b0–b7 state_dicts load as they are.

EfficientNetV2 — Tan & Le, "EfficientNetV2: Smaller Models and Faster Training", ICML 2021,
arXiv:2104.00298. Depthwise convolutions are slow to train on accelerators in the early,
high-resolution stages; *Fused-MBConv* (§3.2, Fig. 2) replaces MBConv's 1×1 expansion and
k×k depthwise conv by one regular k×k conv there, with no SE. A training-aware search
mixes both block kinds (Fused-MBConv in stages 1–3, MBConv with SE after, Table 4) and
prefers small expansion ratios; S, M and L are scaled by hand (Appendix), and *progressive
learning* (§4) raises image size and regularisation together during training — a training
recipe, not part of the network. ``efficientnet_v2_s/m/l`` are torchvision's networks; the
MBConv stages reuse the V1 block (``layers.InvertedResidual``).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass, replace

import torch
import torch.nn as nn

from ..layers.conv_norm_act import ConvNormAct
from ..layers.drop_path import DropPath
from ..layers.helpers import make_divisible
from ..layers.inverted_residual import InvertedResidual
from ..layers.se import SqueezeExcite
from ..registry import register_model
from ._base import LineageModel

__all__ = [
    "ALPHA",
    "BETA",
    "GAMMA",
    "EFFICIENTNET_B0_STAGES",
    "EFFICIENTNET_VARIANTS",
    "EFFICIENTNET_V2_STAGES",
    "EfficientNet",
    "EFFICIENTNET_V2_VARIANTS",
    "EfficientNetConfig",
    "FusedMBConv",
    "MBConvStage",
    "compound_coefficients",
    "compound_dropout",
    "efficientnet",
    "round_depth",
    "round_width",
    "scale_model",
]

ALPHA, BETA, GAMMA = 1.2, 1.1, 1.15  # depth, width, resolution bases (§3.3), α·β²·γ² = 1.92 ≈ 2


@dataclass(frozen=True)
class MBConvStage:
    """One row of Table 1: ``depth`` MBConv blocks, the first with ``stride``."""

    expand_ratio: int  # t: the middle is t times the block's input width (MBConv1 / MBConv6)
    kernel_size: int  # k of the depthwise convolution
    stride: int  # stride of the stage's first block
    out_chs: int  # c: output channels at width 1
    depth: int  # n: number of blocks at depth 1
    fused: bool = False  # Fused-MBConv (one k×k conv for expansion and filtering, no SE; EfficientNetV2)


EFFICIENTNET_B0_STAGES: tuple[MBConvStage, ...] = tuple(
    MBConvStage(*row)
    for row in (
        # t, k, s, c, n    (Table 1, stages 2–8; input resolution of the stage at 224²)
        (1, 3, 1, 16, 1),  # 112²
        (6, 3, 2, 24, 2),  # 112²
        (6, 5, 2, 40, 2),  # 56²
        (6, 3, 2, 80, 3),  # 28²
        (6, 5, 1, 112, 3),  # 14²
        (6, 5, 2, 192, 4),  # 14²
        (6, 3, 1, 320, 1),  # 7²
    )
)


class FusedMBConv(nn.Module):
    """Return ``x + drop_path(project(conv_kxk(x)))``: MBConv with its expansion and depthwise conv fused.

    EfficientNetV2 §3.2, Fig. 2: a regular k×k conv (with the stride) expands to ``mid_chs``,
    a linear 1×1 conv projects back; with expansion 1 the k×k conv maps straight to
    ``out_chs`` and there is no projection. No SE gate. Keys ``block.0``, ``block.1`` as torchvision's.
    """

    def __init__(
        self,
        in_chs: int,
        out_chs: int,
        *,
        mid_chs: int,
        kernel_size: int = 3,
        stride: int = 1,
        norm_layer: Callable[[int], nn.Module] = nn.BatchNorm2d,
        act_layer: Callable[..., nn.Module] = nn.SiLU,
        drop_path: float = 0.0,
    ) -> None:
        super().__init__()
        if mid_chs == in_chs:  # expansion 1: one conv
            layers = [
                ConvNormAct(in_chs, out_chs, kernel_size, stride, norm_layer=norm_layer, act_layer=act_layer)
            ]
        else:
            layers = [
                ConvNormAct(in_chs, mid_chs, kernel_size, stride, norm_layer=norm_layer, act_layer=act_layer),
                ConvNormAct(mid_chs, out_chs, 1, norm_layer=norm_layer, act_layer=None),  # linear projection
            ]
        self.block = nn.Sequential(*layers)
        self.use_residual = stride == 1 and in_chs == out_chs
        self.drop_path = DropPath(drop_path) if self.use_residual else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.block(x)
        if self.use_residual:
            out = self.drop_path(out)
            out += x  # in place, as torchvision
        return out


# EfficientNetV2-S (Table 4) and the M and L scalings of the authors' code (torchvision's tables):
# Fused-MBConv in the first stages, MBConv with SE 0.25 after. Stem width = the first stage's input.
EFFICIENTNET_V2_STAGES: dict[str, tuple[int, tuple[MBConvStage, ...]]] = {
    name: (stem, tuple(MBConvStage(t, k, s, c, n, fused=f) for f, t, k, s, c, n in rows))
    for name, (stem, rows) in {
        # stem, rows of (fused, t, k, s, c, n)
        "efficientnet_v2_s": (24, ((1, 1, 3, 1, 24, 2), (1, 4, 3, 2, 48, 4), (1, 4, 3, 2, 64, 4),
                                   (0, 4, 3, 2, 128, 6), (0, 6, 3, 1, 160, 9), (0, 6, 3, 2, 256, 15))),
        "efficientnet_v2_m": (24, ((1, 1, 3, 1, 24, 3), (1, 4, 3, 2, 48, 5), (1, 4, 3, 2, 80, 5),
                                   (0, 4, 3, 2, 160, 7), (0, 6, 3, 1, 176, 14), (0, 6, 3, 2, 304, 18),
                                   (0, 6, 3, 1, 512, 5))),
        "efficientnet_v2_l": (32, ((1, 1, 3, 1, 32, 4), (1, 4, 3, 2, 64, 7), (1, 4, 3, 2, 96, 7),
                                   (0, 4, 3, 2, 192, 10), (0, 6, 3, 1, 224, 19), (0, 6, 3, 2, 384, 25),
                                   (0, 6, 3, 1, 640, 7))),
    }.items()
}  # fmt: skip


def round_width(channels: int, width: float) -> int:
    """Return ``channels·width`` rounded to the nearest multiple of 8 (never 10% below it)."""
    return make_divisible(channels * width, 8)


def round_depth(blocks: int, depth: float) -> int:
    """Return ``ceil(blocks·depth)``: a stage never loses a block to rounding."""
    return int(math.ceil(blocks * depth))


def compound_coefficients(phi: float) -> tuple[float, float, float]:
    """Return the multipliers (depth α^φ, width β^φ, resolution γ^φ) of Eq. 3."""
    return ALPHA**phi, BETA**phi, GAMMA**phi


def compound_dropout(phi: float) -> float:
    """Return the dropout for coefficient φ: linear from 0.2 (B0, φ = 0) to 0.5 (B7, φ = 7), §5.2."""
    return 0.2 + 0.3 * min(max(phi, 0.0), 7.0) / 7.0


@dataclass(frozen=True)
class EfficientNetConfig:
    """A B0-like network and its scaling: the Table 1 stages, then width, depth and resolution."""

    width: float = 1.0  # channel multiplier w (every stage, the stem and the head)
    depth: float = 1.0  # block multiplier d (every stage)
    resolution: int = 224  # input side in pixels
    dropout: float = 0.2  # before the classifier
    bn_eps: float = 1e-3  # the authors' TF BatchNorm epsilon
    bn_momentum: float = 0.01  # = 1 − TF's moving-average decay 0.99
    stages: tuple[MBConvStage, ...] = EFFICIENTNET_B0_STAGES
    stem_chs: int = 32  # Table 1 stage 1, a 3×3/2 conv
    head_chs: int = 1280  # Table 1 stage 9, a 1×1 conv before pooling

    def scaled_stages(self) -> tuple[MBConvStage, ...]:
        """Return the stages with widths and depths scaled and rounded."""
        return tuple(
            replace(s, out_chs=round_width(s.out_chs, self.width), depth=round_depth(s.depth, self.depth))
            for s in self.stages
        )


class EfficientNet(LineageModel):
    """EfficientNet: 3×3/2 stem, seven stages of MBConv blocks with SE and SiLU, 1×1 head conv, pool, FC.

    Block ``i`` of ``N`` drops its residual branch with probability ``drop_path_rate·i/N``
    (stochastic depth, survival 0.8 at the last block, §5.2). Each SE gate squeezes to a
    quarter of the block's *input* width (se_ratio 0.25 in the authors' code).
    """

    def __init__(
        self,
        *,
        config: EfficientNetConfig | None = None,
        num_classes: int = 1000,
        in_chans: int = 3,
        drop_path_rate: float = 0.2,
        norm_layer: Callable[[int], nn.Module] | None = None,
        act_layer: Callable[..., nn.Module] = nn.SiLU,
    ) -> None:
        config = config or EfficientNetConfig()
        r = config.resolution
        super().__init__(in_chans=in_chans, num_classes=num_classes, input_size=(in_chans, r, r))
        self.config = config
        if norm_layer is None:
            norm_layer = functools.partial(nn.BatchNorm2d, eps=config.bn_eps, momentum=config.bn_momentum)
        stages = config.scaled_stages()
        chs = round_width(config.stem_chs, config.width)
        layers: list[nn.Module] = [
            ConvNormAct(in_chans, chs, 3, 2, norm_layer=norm_layer, act_layer=act_layer)
        ]
        total, index, reduction = sum(s.depth for s in stages), 0, 2
        self.feature_info = []
        for i, s in enumerate(stages, start=1):
            blocks: list[nn.Module] = []
            for j in range(s.depth):
                common = dict(
                    mid_chs=round_width(chs, s.expand_ratio),
                    kernel_size=s.kernel_size,
                    stride=s.stride if j == 0 else 1,
                    norm_layer=norm_layer,
                    act_layer=act_layer,
                    drop_path=drop_path_rate * index / total,
                )
                if s.fused:
                    blocks.append(FusedMBConv(chs, s.out_chs, **common))
                else:
                    se = functools.partial(SqueezeExcite, rd_channels=max(1, chs // 4), act_layer=act_layer)
                    blocks.append(InvertedResidual(chs, s.out_chs, se_layer=se, **common))
                chs, index = s.out_chs, index + 1
            layers.append(nn.Sequential(*blocks))
            reduction *= s.stride
            entry = dict(module=f"features.{i}", num_chs=chs, reduction=reduction)
            if self.feature_info and self.feature_info[-1]["reduction"] == reduction:
                self.feature_info[-1] = entry  # keep the last stage at each reduction
            else:
                self.feature_info.append(entry)
        head = round_width(config.head_chs, config.width)
        layers.append(ConvNormAct(chs, head, 1, norm_layer=norm_layer, act_layer=act_layer))
        self.features = nn.Sequential(*layers)
        self.num_features = head
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(
            nn.Dropout(config.dropout, inplace=True),
            nn.Linear(head, num_classes) if num_classes > 0 else nn.Identity(),
        )
        self._init_weights()

    def _init_weights(self) -> None:
        # The authors' initialisers: He (fan-out) normal convs, uniform ±1/sqrt(out) classifier.
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                bound = 1.0 / math.sqrt(m.out_features)
                nn.init.uniform_(m.weight, -bound, bound)
                nn.init.zeros_(m.bias)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = torch.flatten(self.avgpool(x), 1)  # (B, C)
        x = self.classifier[0](x)
        return x if pre_logits else self.classifier[1](x)

    def get_classifier(self) -> nn.Module:
        return self.classifier[1]

    def reset_classifier(self, num_classes: int) -> None:
        self.num_classes = num_classes
        self.classifier[1] = nn.Linear(self.num_features, num_classes) if num_classes > 0 else nn.Identity()


# ---------------------------------------------------------------------------------------- variants
_TF_BN = dict(bn_eps=1e-3, bn_momentum=0.01)
_TORCH_BN = dict(bn_eps=1e-5, bn_momentum=0.1)

# The published coefficients (the authors' efficientnet_builder.py; torchvision, timm). torchvision's
# b0–b4 weights were trained in PyTorch (timm) with PyTorch's BatchNorm settings, its b5–b7 weights
# ported from TF with TF's; the last column follows torchvision so that its weights load exactly.
EFFICIENTNET_VARIANTS: dict[str, EfficientNetConfig] = {
    name: EfficientNetConfig(width=w, depth=d, resolution=r, dropout=p, **(_TF_BN if tf_bn else _TORCH_BN))
    for name, (w, d, r, p, tf_bn) in {
        # width, depth, resolution, dropout, TF BatchNorm (eps 1e-3, momentum 0.01; else 1e-5, 0.1)
        "efficientnet_b0": (1.0, 1.0, 224, 0.2, False),
        "efficientnet_b1": (1.0, 1.1, 240, 0.2, False),
        "efficientnet_b2": (1.1, 1.2, 260, 0.3, False),
        "efficientnet_b3": (1.2, 1.4, 300, 0.3, False),
        "efficientnet_b4": (1.4, 1.8, 380, 0.4, False),
        "efficientnet_b5": (1.6, 2.2, 456, 0.4, True),
        "efficientnet_b6": (1.8, 2.6, 528, 0.5, True),
        "efficientnet_b7": (2.0, 3.1, 600, 0.5, True),
    }.items()
}


def scale_model(
    base: EfficientNetConfig | str = "efficientnet_b0",
    *,
    depth: float = 1.0,
    width: float = 1.0,
    resolution: float = 1.0,
    dropout: float | None = None,
    num_classes: int = 1000,
    in_chans: int = 3,
    drop_path_rate: float = 0.2,
) -> EfficientNet:
    """Return ``base`` (a config or a variant name) with its depth, width and resolution multiplied.

    ``scale_model("efficientnet_b0", depth=4.0)`` is one of Fig. 3's single-axis networks;
    ``scale_model(EfficientNetConfig(), **dict(zip(("depth", "width", "resolution"),
    compound_coefficients(1))))`` is :func:`efficientnet` at φ = 1.
    """
    if isinstance(base, str):
        if base not in EFFICIENTNET_VARIANTS:
            raise ValueError(
                f"unknown EfficientNet variant {base!r}; expected one of {', '.join(EFFICIENTNET_VARIANTS)}"
            )
        base = EFFICIENTNET_VARIANTS[base]
    if min(depth, width, resolution) <= 0:
        raise ValueError(
            f"depth, width and resolution multipliers must be positive, got {depth}, {width}, {resolution}"
        )
    config = replace(
        base,
        depth=base.depth * depth,
        width=base.width * width,
        resolution=round(base.resolution * resolution),
        dropout=base.dropout if dropout is None else dropout,
    )
    return EfficientNet(
        config=config, num_classes=num_classes, in_chans=in_chans, drop_path_rate=drop_path_rate
    )


def efficientnet(
    *, phi: float = 0.0, num_classes: int = 1000, in_chans: int = 3, drop_path_rate: float = 0.2
) -> EfficientNet:
    """Return B0 compound-scaled by Eq. 3 at coefficient ``phi`` (the formula, not the published table)."""
    d, w, r = compound_coefficients(phi)
    return scale_model(
        EfficientNetConfig(),
        depth=d,
        width=w,
        resolution=r,
        dropout=compound_dropout(phi),
        num_classes=num_classes,
        in_chans=in_chans,
        drop_path_rate=drop_path_rate,
    )


# ---------------------------------------------------------------------------------------- registry
_REFERENCE = {
    # name: (torchvision meta num_params, top-1 of Table 2)
    "efficientnet_b0": (5_288_548, 77.1),
    "efficientnet_b1": (7_794_184, 79.1),
    "efficientnet_b2": (9_109_994, 80.1),
    "efficientnet_b3": (12_233_232, 81.6),
    "efficientnet_b4": (19_341_616, 82.9),
    "efficientnet_b5": (30_389_784, 83.6),
    "efficientnet_b6": (43_040_704, 84.0),
    "efficientnet_b7": (66_347_960, 84.3),
}


def _card(name: str) -> dict:
    cfg = EFFICIENTNET_VARIANTS[name]
    params, top1 = _REFERENCE[name]
    return dict(
        family="efficientnet",
        year=2019,
        paper="EfficientNet: Rethinking Model Scaling for Convolutional Neural Networks",
        authors=("Tan", "Le"),
        venue="ICML",
        venue_year=2019,
        arxiv="1905.11946",
        input_size=(3, cfg.resolution, cfg.resolution),
        key_idea="Scale depth, width and resolution together by one compound coefficient from a NAS-found B0.",
        ref_params=params,
        ref_params_source=f"torchvision {name.replace('efficientnet_b', 'EfficientNet_B')}_Weights meta num_params",
        ref_top1=top1,
        ref_top1_kind="paper",
        ref_top1_source="Tan & Le 2019, Table 2",
        torchvision=name,
        notes=f"Published coefficients: width {cfg.width}, depth {cfg.depth}, resolution {cfg.resolution}, "
        f"dropout {cfg.dropout}; BatchNorm eps {cfg.bn_eps} as torchvision's weights. Symmetric padding "
        "(torchvision) instead of TF's asymmetric 'same' padding at stride 2.",
        default_kwargs=dict(width=cfg.width, depth=cfg.depth, resolution=cfg.resolution, dropout=cfg.dropout),
    )


def _variant(name: str, num_classes: int, in_chans: int, drop_path_rate: float) -> EfficientNet:
    return EfficientNet(
        config=EFFICIENTNET_VARIANTS[name],
        num_classes=num_classes,
        in_chans=in_chans,
        drop_path_rate=drop_path_rate,
    )


@register_model(**_card("efficientnet_b0"))
def efficientnet_b0(
    *, num_classes: int = 1000, in_chans: int = 3, drop_path_rate: float = 0.2
) -> EfficientNet:
    """Return EfficientNet-B0, the NAS-found baseline (Table 1), 224²."""
    return _variant("efficientnet_b0", num_classes, in_chans, drop_path_rate)


@register_model(**_card("efficientnet_b1"))
def efficientnet_b1(
    *, num_classes: int = 1000, in_chans: int = 3, drop_path_rate: float = 0.2
) -> EfficientNet:
    """Return EfficientNet-B1 (width 1.0, depth 1.1, 240²)."""
    return _variant("efficientnet_b1", num_classes, in_chans, drop_path_rate)


@register_model(**_card("efficientnet_b2"))
def efficientnet_b2(
    *, num_classes: int = 1000, in_chans: int = 3, drop_path_rate: float = 0.2
) -> EfficientNet:
    """Return EfficientNet-B2 (width 1.1, depth 1.2, 260²)."""
    return _variant("efficientnet_b2", num_classes, in_chans, drop_path_rate)


@register_model(**_card("efficientnet_b3"))
def efficientnet_b3(
    *, num_classes: int = 1000, in_chans: int = 3, drop_path_rate: float = 0.2
) -> EfficientNet:
    """Return EfficientNet-B3 (width 1.2, depth 1.4, 300²)."""
    return _variant("efficientnet_b3", num_classes, in_chans, drop_path_rate)


@register_model(**_card("efficientnet_b4"))
def efficientnet_b4(
    *, num_classes: int = 1000, in_chans: int = 3, drop_path_rate: float = 0.2
) -> EfficientNet:
    """Return EfficientNet-B4 (width 1.4, depth 1.8, 380²)."""
    return _variant("efficientnet_b4", num_classes, in_chans, drop_path_rate)


@register_model(**_card("efficientnet_b5"))
def efficientnet_b5(
    *, num_classes: int = 1000, in_chans: int = 3, drop_path_rate: float = 0.2
) -> EfficientNet:
    """Return EfficientNet-B5 (width 1.6, depth 2.2, 456²)."""
    return _variant("efficientnet_b5", num_classes, in_chans, drop_path_rate)


@register_model(**_card("efficientnet_b6"))
def efficientnet_b6(
    *, num_classes: int = 1000, in_chans: int = 3, drop_path_rate: float = 0.2
) -> EfficientNet:
    """Return EfficientNet-B6 (width 1.8, depth 2.6, 528²)."""
    return _variant("efficientnet_b6", num_classes, in_chans, drop_path_rate)


@register_model(**_card("efficientnet_b7"))
def efficientnet_b7(
    *, num_classes: int = 1000, in_chans: int = 3, drop_path_rate: float = 0.2
) -> EfficientNet:
    """Return EfficientNet-B7 (width 2.0, depth 3.1, 600²)."""
    return _variant("efficientnet_b7", num_classes, in_chans, drop_path_rate)


# ---------------------------------------------------------------------------------------- EfficientNetV2
# name: (eval resolution, dropout, torchvision meta num_params, torchvision meta acc@1)
_V2_REFERENCE = {
    "efficientnet_v2_s": (384, 0.2, 21_458_488, 84.228),
    "efficientnet_v2_m": (480, 0.3, 54_139_356, 85.112),
    "efficientnet_v2_l": (480, 0.4, 118_515_272, 85.808),
}
EFFICIENTNET_V2_VARIANTS: dict[str, EfficientNetConfig] = {
    # BatchNorm eps 1e-3 with PyTorch's momentum, as torchvision's V2 weights
    name: EfficientNetConfig(
        resolution=r, dropout=p, bn_eps=1e-3, bn_momentum=0.1, stages=stages, stem_chs=stem
    )
    for name, (r, p, _, _) in _V2_REFERENCE.items()
    for stem, stages in [EFFICIENTNET_V2_STAGES[name]]
}


def _v2_card(name: str) -> dict:
    r, p, params, top1 = _V2_REFERENCE[name]
    weights = (
        name.replace("efficientnet_v2_", "EfficientNet_V2_").upper().replace("EFFICIENTNET", "EfficientNet")
    )
    return dict(
        family="efficientnet",
        year=2021,
        paper="EfficientNetV2: Smaller Models and Faster Training",
        authors=("Tan", "Le"),
        venue="ICML",
        venue_year=2021,
        arxiv="2104.00298",
        input_size=(3, r, r),
        key_idea="Fused-MBConv (one regular kxk conv) in the early stages, found by training-aware NAS; "
        "progressive learning raises image size and regularisation together.",
        ref_params=params,
        ref_params_source=f"torchvision {weights}_Weights meta num_params",
        ref_top1=top1,
        ref_top1_kind="recipe",
        ref_top1_source=f"torchvision {weights}_Weights.IMAGENET1K_V1 meta acc@1 ({r}x{r})",
        torchvision=name,
        notes=f"torchvision's network: stages of Table 4 (S) and the authors' code (M, L), dropout {p}, "
        "stochastic depth 0.2, BatchNorm eps 1e-3. Progressive learning (§4) is a training recipe, not built "
        "here. The paper's headline figures come from ImageNet-21k pre-training; these weights do not.",
        default_kwargs=dict(resolution=r, dropout=p),
    )


def _v2(name: str, num_classes: int, in_chans: int, drop_path_rate: float) -> EfficientNet:
    return EfficientNet(
        config=EFFICIENTNET_V2_VARIANTS[name],
        num_classes=num_classes,
        in_chans=in_chans,
        drop_path_rate=drop_path_rate,
    )


@register_model(**_v2_card("efficientnet_v2_s"))
def efficientnet_v2_s(
    *, num_classes: int = 1000, in_chans: int = 3, drop_path_rate: float = 0.2
) -> EfficientNet:
    """Return EfficientNetV2-S (Table 4), 384²."""
    return _v2("efficientnet_v2_s", num_classes, in_chans, drop_path_rate)


@register_model(**_v2_card("efficientnet_v2_m"))
def efficientnet_v2_m(
    *, num_classes: int = 1000, in_chans: int = 3, drop_path_rate: float = 0.2
) -> EfficientNet:
    """Return EfficientNetV2-M, 480²."""
    return _v2("efficientnet_v2_m", num_classes, in_chans, drop_path_rate)


@register_model(**_v2_card("efficientnet_v2_l"))
def efficientnet_v2_l(
    *, num_classes: int = 1000, in_chans: int = 3, drop_path_rate: float = 0.2
) -> EfficientNet:
    """Return EfficientNetV2-L, 480²."""
    return _v2("efficientnet_v2_l", num_classes, in_chans, drop_path_rate)
