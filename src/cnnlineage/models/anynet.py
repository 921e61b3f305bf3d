"""AnyNet — the design space of Radosavovic, Kosaraju, Girshick, He & Dollár, "Designing Network
Design Spaces", CVPR 2020, arXiv:2003.13678, §3.

A stem, four stages of residual bottleneck blocks (the first block of each stage
strides 2), and a head. Each stage i is free: depth d_i, width w_i, bottleneck ratio
b_i (the 3x3 runs at w_i / b_i channels) and group width g_i — 16 numbers per network,
the unconstrained AnyNetX space whose populations the paper studies before narrowing
it to RegNet. The blocks are RegNet's (``cnnlineage.models.regnet``), so a RegNet is an
AnyNet whose stage widths follow the linear rule. ``stem_stride=1`` keeps small inputs
(32x32) from shrinking to nothing, as the authors' code does for CIFAR.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn as nn

from ..layers.conv_norm_act import ConvNormAct
from ..registry import register_model
from ._base import LineageModel
from .regnet import ResBottleneckBlock

__all__ = ["AnyNet", "check_stages"]


def check_stages(stages: Sequence[Sequence[float]]) -> list[tuple[int, int, float, int]]:
    """Return ``stages`` as (depth, width, bottleneck ratio b, group width) tuples; ValueError if one is impossible.

    The 3x3 of a stage runs at w / b channels in groups of g: w / b must be a whole
    multiple of g.
    """
    out = []
    for i, s in enumerate(stages):
        if len(s) != 4:
            raise ValueError(
                f"AnyNet stage {i}: expected [depth, width, bottleneck_ratio, group_width], got {list(s)}"
            )
        d, w, b, g = int(s[0]), int(s[1]), float(s[2]), int(s[3])
        if d < 1 or w < 1 or b <= 0 or g < 1:
            raise ValueError(
                f"AnyNet stage {i}: depth, width, b and group width must be positive, got {list(s)}"
            )
        wb = w / b
        if abs(wb - round(wb)) > 1e-9 or round(wb) % g:
            raise ValueError(
                f"AnyNet stage {i}: bottleneck width w/b = {wb:g} is not a multiple of group width {g}"
            )
        out.append((d, w, b, g))
    if not out:
        raise ValueError("AnyNet needs at least one stage")
    return out


class AnyNet(LineageModel):
    """Stem (3x3 conv), stages of residual bottlenecks given as (d, w, b, g), global pool, fc."""

    def __init__(
        self,
        stages: Sequence[Sequence[float]],
        *,
        num_classes: int = 10,
        in_chans: int = 3,
        stem_width: int = 32,
        stem_stride: int = 1,
        input_size: tuple[int, int, int] = (3, 32, 32),
        se_ratio: float | None = None,
    ) -> None:
        spec = check_stages(stages)
        super().__init__(
            in_chans=in_chans, num_classes=num_classes, input_size=(in_chans, *input_size[1:]), min_size=1
        )
        self.stage_spec = spec
        self.stem = ConvNormAct(in_chans, stem_width, 3, stem_stride)
        self.feature_info = [dict(module="stem", num_chs=stem_width, reduction=stem_stride)]
        width, reduction = stem_width, stem_stride
        self.stages = nn.Sequential()
        for i, (d, w, b, g) in enumerate(spec, start=1):
            blocks = nn.Sequential(
                *(
                    ResBottleneckBlock(
                        width if j == 0 else w,
                        w,
                        stride=2 if j == 0 else 1,
                        group_width=g,
                        bottleneck_ratio=1.0 / b,
                        se_ratio=se_ratio,
                    )  # fmt: skip
                    for j in range(d)
                )
            )
            self.stages.add_module(f"stage{i}", blocks)
            width, reduction = w, reduction * 2
            self.feature_info.append(dict(module=f"stages.stage{i}", num_chs=w, reduction=reduction))
        self.num_features = width
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(width, num_classes) if num_classes > 0 else nn.Identity()
        for m in self.modules():  # pycls: He-normal over fan-out, N(0, 0.01) classifier
            if isinstance(m, nn.Conv2d):
                fan_out = m.kernel_size[0] * m.kernel_size[1] * m.out_channels // m.groups
                nn.init.normal_(m.weight, mean=0.0, std=math.sqrt(2.0 / fan_out))
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, mean=0.0, std=0.01)
                nn.init.zeros_(m.bias)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.stages(self.stem(x))

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = torch.flatten(self.pool(x), 1)
        return x if pre_logits else self.fc(x)

    def get_classifier(self) -> nn.Module:
        return self.fc

    def reset_classifier(self, num_classes: int) -> None:
        self.num_classes = num_classes
        self.fc = nn.Linear(self.num_features, num_classes) if num_classes > 0 else nn.Identity()


@register_model(
    family="anynet",
    year=2020,
    paper="Designing Network Design Spaces",
    authors=("Radosavovic", "Kosaraju", "Girshick", "He", "Dollár"),
    venue="CVPR",
    venue_year=2020,
    arxiv="2003.13678",
    key_idea="A design space, not one network: four free stages (depth, width, bottleneck, groups) whose good populations reveal the RegNet rule.",
    input_size=(3, 32, 32),
    num_classes=10,
    ref_params=77_338,
    ref_params_source="hand count of this build (tests/models/test_anynet.py): stem 3x3 conv to 16 + BN, stages [1,16,1,4], [1,32,1,8], [2,64,1,8], [1,128,1,8], fc 128x10",
    notes="Any AnyNetX sample builds with `anynet(stages=[[d, w, b, g], ...])`; "
    "`cnnlineage search design-space` samples and ranks populations of them.",
)
def anynet(
    *,
    stages: Sequence[Sequence[float]] = ((1, 16, 1, 4), (1, 32, 1, 8), (2, 64, 1, 8), (1, 128, 1, 8)),
    num_classes: int = 10,
    in_chans: int = 3,
    stem_width: int = 16,
    stem_stride: int = 1,
) -> AnyNet:
    """Return an AnyNet with the given stages (default: a small 32x32 network)."""
    return AnyNet(
        stages, num_classes=num_classes, in_chans=in_chans, stem_width=stem_width, stem_stride=stem_stride
    )
