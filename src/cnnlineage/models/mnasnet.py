"""MnasNet — Tan, Chen, Pang, Vasudevan, Sandler, Howard & Le, "MnasNet: Platform-Aware Neural
Architecture Search for Mobile", CVPR 2019, arXiv:1807.11626.

A reinforcement-learning controller searches a *factorized hierarchical* space — each of
seven blocks picks its own operation (MBConv with expansion 3 or 6, kernel 3 or 5, SE or
not), width and depth (§4.1) — and rewards accuracy × (latency / target)^w, latency measured
on a real phone (§3, Eq. 2). Layer diversity across blocks is the result: 5×5 kernels where
the maps are small, expansion 3 early and 6 late. EfficientNet-B0's search space is this one
with a FLOPs target in place of latency (Tan & Le 2019, §4).

The builders give torchvision's networks: the MnasNet-B1 variant (Fig. 7 without SE, ReLU
everywhere) at width multipliers 0.5, 0.75, 1.0 and 1.3, widths rounded to multiples of 8
(up when rounding down loses more than 10%). The blocks are the library's MBConv
(``layers.InvertedResidual``); ``remap_torchvision`` renames torchvision's flat keys to them.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable

import torch
import torch.nn as nn

from ..layers.conv_norm_act import ConvNormAct
from ..layers.inverted_residual import InvertedResidual
from ..registry import register_model
from ._base import LineageModel

__all__ = ["MNASNet", "MNASNET_B1_STAGES", "mnasnet_width"]

# Fig. 7 (B1, no SE), the stages after the stem's 3×3 conv and separable conv:
#     t, k, s, c,   n
MNASNET_B1_STAGES = (
    (3, 3, 2, 24, 3),
    (3, 5, 2, 40, 3),
    (6, 5, 2, 80, 3),
    (6, 3, 1, 96, 2),
    (6, 5, 2, 192, 4),
    (6, 3, 1, 320, 1),
)  # fmt: skip
_STEM, _SEP, _HEAD = 32, 16, 1280  # stem conv, separable conv output, head 1×1 conv (not scaled)

# The authors' TF BatchNorm decay 0.9997 (torchvision's momentum 1 - 0.9997)
_BN = functools.partial(nn.BatchNorm2d, momentum=1 - 0.9997)
_RELU = functools.partial(nn.ReLU, inplace=True)


def mnasnet_width(channels: int, alpha: float) -> int:
    """Return ``channels·alpha`` rounded to a multiple of 8, rounding up when rounding down loses over 10%."""
    v = channels * alpha
    rounded = max(8, int(v + 4) // 8 * 8)
    return rounded if rounded >= 0.9 * v else rounded + 8


class MNASNet(LineageModel):
    """MnasNet-B1: a 3×3/2 stem, a separable conv, six MBConv stages, a 1×1 conv to 1280, pool, FC."""

    def __init__(
        self,
        alpha: float = 1.0,
        *,
        num_classes: int = 1000,
        in_chans: int = 3,
        dropout: float = 0.2,
        norm_layer: Callable[[int], nn.Module] = _BN,
        act_layer: Callable[..., nn.Module] = _RELU,
    ) -> None:
        if alpha <= 0:
            raise ValueError(f"alpha (width multiplier) must be positive, got {alpha}")
        super().__init__(in_chans=in_chans, num_classes=num_classes, input_size=(in_chans, 224, 224))
        self.alpha = alpha
        cna = functools.partial(ConvNormAct, norm_layer=norm_layer, act_layer=act_layer)
        stem, sep = mnasnet_width(_STEM, alpha), mnasnet_width(_SEP, alpha)
        layers: list[nn.Module] = [
            cna(in_chans, stem, 3, 2),
            # depthwise-separable conv, linear output: an MBConv without expansion
            InvertedResidual(stem, sep, mid_chs=stem, norm_layer=norm_layer, act_layer=act_layer),
        ]
        self.feature_info = [dict(module="layers.1", num_chs=sep, reduction=2)]
        chs, reduction = sep, 2
        for t, k, s, c, n in MNASNET_B1_STAGES:
            out = mnasnet_width(c, alpha)
            blocks = [
                InvertedResidual(chs if i == 0 else out, out, mid_chs=(chs if i == 0 else out) * t,
                                 kernel_size=k, stride=s if i == 0 else 1, norm_layer=norm_layer,
                                 act_layer=act_layer)
                for i in range(n)
            ]  # fmt: skip
            layers.append(nn.Sequential(*blocks))
            chs, reduction = out, reduction * s
            entry = dict(module=f"layers.{len(layers) - 1}", num_chs=chs, reduction=reduction)
            if self.feature_info[-1]["reduction"] == reduction:
                self.feature_info[-1] = entry
            else:
                self.feature_info.append(entry)
        layers.append(cna(chs, _HEAD, 1))
        self.feature_info[-1] = dict(module=f"layers.{len(layers) - 1}", num_chs=_HEAD, reduction=reduction)
        self.layers = nn.Sequential(*layers)
        self.num_features = _HEAD
        self.classifier = nn.Sequential(nn.Dropout(dropout, inplace=True), self._fc(num_classes))
        # torchvision's initialisation: He (fan-out) normal convs, Kaiming-uniform (fan-out) classifier
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.Linear):
                nn.init.kaiming_uniform_(m.weight, mode="fan_out", nonlinearity="sigmoid")
                nn.init.zeros_(m.bias)

    def _fc(self, num_classes: int) -> nn.Module:
        return nn.Linear(self.num_features, num_classes) if num_classes > 0 else nn.Identity()

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = self.classifier[0](x.mean((2, 3)))  # (B, 1280)
        return x if pre_logits else self.classifier[1](x)

    def get_classifier(self) -> nn.Module:
        return self.classifier[1]

    def reset_classifier(self, num_classes: int) -> None:
        self.num_classes = num_classes
        self.classifier[1] = self._fc(num_classes)

    def remap_torchvision(self, state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Return torchvision's MNASNet state_dict with keys renamed to this model's modules.

        torchvision keeps the stem as flat ``layers.0``–``layers.7`` and each block's convs and
        norms as ``layers.{8+i}.{j}.layers.{0,1,3,4,6,7}``; here they are conv-norm-act pairs.
        """
        flat = {"0": "0.0", "1": "0.1", "3": "1.block.0.0", "4": "1.block.0.1", "6": "1.block.1.0", "7": "1.block.1.1",
                "14": "8.0", "15": "8.1"}  # fmt: skip
        pair = {"0": "0.0", "1": "0.1", "3": "1.0", "4": "1.1", "6": "2.0", "7": "2.1"}
        out = {}
        for key, v in state_dict.items():
            m = re.fullmatch(r"layers\.(\d+)\.(\d+)\.layers\.(\d+)\.(.+)", key)
            if m:
                key = f"layers.{int(m[1]) - 6}.{m[2]}.block.{pair[m[3]]}.{m[4]}"
            else:
                m = re.fullmatch(r"layers\.(\d+)\.(.+)", key)
                if m and m[1] in flat:
                    key = f"layers.{flat[m[1]]}.{m[2]}"
            out[key] = v
        return out


# ---------------------------------------------------------------------------------------- registry
_PAPER = dict(
    family="mnasnet",
    year=2018,
    paper="MnasNet: Platform-Aware Neural Architecture Search for Mobile",
    authors=("Tan", "Chen", "Pang", "Vasudevan", "Sandler", "Howard", "Le"),
    venue="CVPR",
    venue_year=2019,
    arxiv="1807.11626",
    input_size=(3, 224, 224),
    key_idea="Architecture search rewarded by accuracy and measured phone latency over a space where every "
    "block picks its own MBConv.",
)
_NOTES = (
    "MnasNet-B1 (Fig. 7 without SE), ReLU everywhere, BatchNorm momentum 1 - 0.9997 as torchvision; "
    "widths alpha x (32, 16, 24, 40, 80, 96, 192, 320) rounded to multiples of 8, head 1280 unscaled."
)
# name: (alpha, torchvision meta num_params, torchvision meta acc@1)
_VARIANTS = {
    "mnasnet0_5": (0.5, 2_218_512, 67.734),
    "mnasnet0_75": (0.75, 3_170_208, 71.18),
    "mnasnet1_0": (1.0, 4_383_312, 73.456),
    "mnasnet1_3": (1.3, 6_282_256, 76.506),
}


def _card(name: str) -> dict:
    alpha, params, top1 = _VARIANTS[name]
    weights = name.replace("mnasnet", "MNASNet")
    return dict(
        **_PAPER,
        ref_params=params,
        ref_params_source=f"torchvision {weights}_Weights meta num_params",
        ref_top1=top1,
        ref_top1_kind="recipe",
        ref_top1_source=f"torchvision {weights}_Weights.IMAGENET1K_V1 meta acc@1",
        torchvision=name,
        notes=_NOTES,
        default_kwargs=dict(alpha=alpha),
    )


@register_model(**_card("mnasnet0_5"))
def mnasnet0_5(*, num_classes: int = 1000, in_chans: int = 3, dropout: float = 0.2) -> MNASNet:
    """Return MnasNet-B1 at width 0.5."""
    return MNASNet(0.5, num_classes=num_classes, in_chans=in_chans, dropout=dropout)


@register_model(**_card("mnasnet0_75"))
def mnasnet0_75(*, num_classes: int = 1000, in_chans: int = 3, dropout: float = 0.2) -> MNASNet:
    """Return MnasNet-B1 at width 0.75."""
    return MNASNet(0.75, num_classes=num_classes, in_chans=in_chans, dropout=dropout)


@register_model(**_card("mnasnet1_0"))
def mnasnet1_0(*, num_classes: int = 1000, in_chans: int = 3, dropout: float = 0.2) -> MNASNet:
    """Return MnasNet-B1 at width 1.0 (75.2% top-1 in the paper's Table 1 is MnasNet-A1, with SE)."""
    return MNASNet(1.0, num_classes=num_classes, in_chans=in_chans, dropout=dropout)


@register_model(**_card("mnasnet1_3"))
def mnasnet1_3(*, num_classes: int = 1000, in_chans: int = 3, dropout: float = 0.2) -> MNASNet:
    """Return MnasNet-B1 at width 1.3."""
    return MNASNet(1.3, num_classes=num_classes, in_chans=in_chans, dropout=dropout)
