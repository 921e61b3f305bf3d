"""Inception-v4 — Szegedy, Ioffe, Vanhoucke & Alemi, "Inception-v4, Inception-ResNet and the
Impact of Residual Connections on Learning", AAAI 2017, arXiv:1602.07261.

Inception-v3's modules made uniform: a deeper stem (Fig. 3) with parallel stride-2 conv and
pool branches, four Inception-A (35×35, Fig. 4), a Reduction-A (Fig. 7, k-l-m-n = 192-224-256-384),
seven Inception-B (17×17, 1×7/7×1 factorisations, Fig. 5), a Reduction-B (Fig. 8) and three
Inception-C (8×8, split 1×3/3×1 banks, Fig. 6) — 1536 channels, average pool, dropout 0.2, FC.
Every module is written once below as data: branches of steps (a conv, a 3×3 pool, or a bank
of convs applied to one input and concatenated).

Inception-ResNet-v2 (same paper, §3.2, Fig. 15): cheaper Inception blocks whose concatenated
branches are projected by a linear 1×1 conv and *added* to the block's input, the residual
scaled by 0.17 / 0.10 / 0.20 in the 35/17/8 grids before the ReLU — scaling "stabilises the
training" of very wide residual Inception nets (§3.3). The stem is the released model's
(the authors' TF-slim code, as timm), not Fig. 3's.

timm's ``inception_v4`` state_dict loads through ``remap_timm``: the two networks register
the same parameters in the same order, so keys are paired by position (shapes checked).
"""

from __future__ import annotations

import functools

import torch
import torch.nn as nn

from ..layers.conv_norm_act import ConvNormAct
from ..registry import register_model
from ._base import LineageModel

__all__ = [
    "InceptionResNetV2",
    "InceptionV4",
    "InceptionV4Block",
    "INCEPTION_V4_LAYOUT",
    "ResidualInceptionBlock",
]

# A conv step: (out channels, kernel, stride, padding); "avg": 3×3/1 average pool (padding not
# counted); "max": 3×3/2 max-pool; a list of convs: a bank on one input, concatenated (Fig. 6).
_A = [[(96, 1, 1, 0)], [(64, 1, 1, 0), (96, 3, 1, 1)], [(64, 1, 1, 0), (96, 3, 1, 1), (96, 3, 1, 1)],
      ["avg", (96, 1, 1, 0)]]  # fmt: skip
_RED_A = [[(384, 3, 2, 0)], [(192, 1, 1, 0), (224, 3, 1, 1), (256, 3, 2, 0)], ["max"]]
_B = [[(384, 1, 1, 0)], [(192, 1, 1, 0), (224, (1, 7), 1, (0, 3)), (256, (7, 1), 1, (3, 0))],
      [(192, 1, 1, 0), (192, (7, 1), 1, (3, 0)), (224, (1, 7), 1, (0, 3)), (224, (7, 1), 1, (3, 0)),
       (256, (1, 7), 1, (0, 3))], ["avg", (128, 1, 1, 0)]]  # fmt: skip
_RED_B = [[(192, 1, 1, 0), (192, 3, 2, 0)],
          [(256, 1, 1, 0), (256, (1, 7), 1, (0, 3)), (320, (7, 1), 1, (3, 0)), (320, 3, 2, 0)], ["max"]]  # fmt: skip
_C = [[(256, 1, 1, 0)], [(384, 1, 1, 0), [(256, (1, 3), 1, (0, 1)), (256, (3, 1), 1, (1, 0))]],
      [(384, 1, 1, 0), (448, (3, 1), 1, (1, 0)), (512, (1, 3), 1, (0, 1)),
       [(256, (1, 3), 1, (0, 1)), (256, (3, 1), 1, (1, 0))]], ["avg", (256, 1, 1, 0)]]  # fmt: skip
# the stem after its three convs (Fig. 3): pool beside conv, two conv towers, conv beside pool
_STEM = [[["max"], [(96, 3, 2, 0)]], [[(64, 1, 1, 0), (96, 3, 1, 0)],
         [(64, 1, 1, 0), (64, (1, 7), 1, (0, 3)), (64, (7, 1), 1, (3, 0)), (96, 3, 1, 0)]],
         [[(192, 3, 2, 0)], ["max"]]]  # fmt: skip
INCEPTION_V4_LAYOUT = [*_STEM, *[_A] * 4, _RED_A, *[_B] * 7, _RED_B, *[_C] * 3]


class _Bank(nn.ModuleList):
    """Convs on one input, concatenated."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([m(x) for m in self], 1)


class InceptionV4Block(nn.Module):
    """Return the concatenation of parallel branches built from a list of steps each."""

    def __init__(self, in_chs: int, branches: list, *, conv: functools.partial) -> None:
        super().__init__()
        self.branches = nn.ModuleList()
        self.out_chs = 0
        for steps in branches:
            layers, chs = [], in_chs
            for step in steps:
                if step == "avg":
                    layers.append(nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False))
                elif step == "max":
                    layers.append(nn.MaxPool2d(3, stride=2))
                elif isinstance(step, list):
                    layers.append(_Bank([conv(chs, o, k, s, padding=p) for o, k, s, p in step]))
                    chs = sum(o for o, *_ in step)
                else:
                    o, k, s, p = step
                    layers.append(conv(chs, o, k, s, padding=p))
                    chs = o
            self.branches.append(nn.Sequential(*layers))
            self.out_chs += chs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([b(x) for b in self.branches], 1)


class ResidualInceptionBlock(InceptionV4Block):
    """Return ``act(x + scale · conv1x1(cat(branches)))``: an Inception-ResNet block (Fig. 16-19)."""

    def __init__(
        self, in_chs: int, branches: list, *, conv: functools.partial, scale: float, act: bool = True
    ):
        super().__init__(in_chs, branches, conv=conv)
        self.conv2d = nn.Conv2d(self.out_chs, in_chs, 1)  # linear: no BatchNorm, no activation
        self.scale = scale
        self.act = nn.ReLU() if act else nn.Identity()
        self.out_chs = in_chs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(x + self.scale * self.conv2d(super().forward(x)))


def _remap_by_position(model: nn.Module, state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    ours, theirs = list(model.state_dict().items()), list(state_dict.items())
    if len(ours) != len(theirs):
        raise ValueError(f"timm state_dict has {len(theirs)} entries, expected {len(ours)}")
    out = {}
    for (key, mine), (tkey, value) in zip(ours, theirs):
        if mine.shape != value.shape:
            raise ValueError(f"{tkey} {tuple(value.shape)} does not fit {key} {tuple(mine.shape)}")
        out[key] = value
    return out


class InceptionV4(LineageModel):
    """Inception-v4: three stem convs, three stem blocks, 4×A, Reduction-A, 7×B, Reduction-B, 3×C, pool, FC."""

    def __init__(self, *, num_classes: int = 1000, in_chans: int = 3, dropout: float = 0.2) -> None:
        # 75x75 is the smallest input every valid conv and stride-2 pool leaves at least one pixel
        super().__init__(
            in_chans=in_chans, num_classes=num_classes, input_size=(in_chans, 299, 299), min_size=75
        )
        # BatchNorm eps 1e-3 (the authors' TF models, as timm)
        conv = functools.partial(ConvNormAct, norm_layer=functools.partial(nn.BatchNorm2d, eps=1e-3))
        layers: list[nn.Module] = [
            conv(in_chans, 32, 3, 2, padding=0),
            conv(32, 32, 3, padding=0),
            conv(32, 64, 3),
        ]
        chs = 64
        for branches in INCEPTION_V4_LAYOUT:
            layers.append(InceptionV4Block(chs, branches, conv=conv))
            chs = layers[-1].out_chs
        self.features = nn.Sequential(*layers)
        # the last module at each scale: 147² (64), 73² (160), 35² (384), 17² (1024), 8² (1536)
        self.feature_info = [dict(module=f"features.{i}", num_chs=c, reduction=r)
                             for i, c, r in ((2, 64, 2), (3, 160, 4), (9, 384, 8), (17, 1024, 16), (21, 1536, 32))]  # fmt: skip
        self.num_features = chs
        self.dropout = nn.Dropout(dropout)
        self.last_linear = self._fc(num_classes)

    def _fc(self, num_classes: int) -> nn.Module:
        return nn.Linear(self.num_features, num_classes) if num_classes > 0 else nn.Identity()

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = self.dropout(x.mean((2, 3)))  # (B, 1536)
        return x if pre_logits else self.last_linear(x)

    def get_classifier(self) -> nn.Module:
        return self.last_linear

    def reset_classifier(self, num_classes: int) -> None:
        self.num_classes = num_classes
        self.last_linear = self._fc(num_classes)

    def remap_timm(self, state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Return timm's state_dict under our keys, paired by position; ValueError where shapes disagree."""
        return _remap_by_position(self, state_dict)


# Inception-ResNet-v2, the released model (TF-slim, timm): stem, 35x35 Mixed_5b, 10 x Block35,
# Mixed_6a, 20 x Block17, Mixed_7a, 9 x Block8 (+ one unscaled, without ReLU), 1x1 conv to 1536
_MIXED_5B = [[(96, 1, 1, 0)], [(48, 1, 1, 0), (64, 5, 1, 2)], [(64, 1, 1, 0), (96, 3, 1, 1), (96, 3, 1, 1)],
             ["avg", (64, 1, 1, 0)]]  # fmt: skip
_BLOCK35 = [[(32, 1, 1, 0)], [(32, 1, 1, 0), (32, 3, 1, 1)], [(32, 1, 1, 0), (48, 3, 1, 1), (64, 3, 1, 1)]]
_MIXED_6A = [[(384, 3, 2, 0)], [(256, 1, 1, 0), (256, 3, 1, 1), (384, 3, 2, 0)], ["max"]]
_BLOCK17 = [[(192, 1, 1, 0)], [(128, 1, 1, 0), (160, (1, 7), 1, (0, 3)), (192, (7, 1), 1, (3, 0))]]
_MIXED_7A = [[(256, 1, 1, 0), (384, 3, 2, 0)], [(256, 1, 1, 0), (288, 3, 2, 0)],
             [(256, 1, 1, 0), (288, 3, 1, 1), (320, 3, 2, 0)], ["max"]]  # fmt: skip
_BLOCK8 = [[(192, 1, 1, 0)], [(192, 1, 1, 0), (224, (1, 3), 1, (0, 1)), (256, (3, 1), 1, (1, 0))]]


class InceptionResNetV2(InceptionV4):
    """Inception-ResNet-v2: stem, Mixed_5b, 10 x 35x35, Mixed_6a, 20 x 17x17, Mixed_7a, 10 x 8x8 residual blocks."""

    def __init__(self, *, num_classes: int = 1000, in_chans: int = 3, dropout: float = 0.2) -> None:
        LineageModel.__init__(self, in_chans=in_chans, num_classes=num_classes, input_size=(in_chans, 299, 299),
                              min_size=75)  # fmt: skip
        conv = functools.partial(ConvNormAct, norm_layer=functools.partial(nn.BatchNorm2d, eps=1e-3))
        layers: list[nn.Module] = [
            conv(in_chans, 32, 3, 2, padding=0), conv(32, 32, 3, padding=0), conv(32, 64, 3),
            nn.MaxPool2d(3, stride=2), conv(64, 80, 1), conv(80, 192, 3, padding=0), nn.MaxPool2d(3, stride=2),
        ]  # fmt: skip
        chs = 192
        plan = [(_MIXED_5B, None)] + [(_BLOCK35, 0.17)] * 10 + [(_MIXED_6A, None)] + [(_BLOCK17, 0.10)] * 20
        plan += [(_MIXED_7A, None)] + [(_BLOCK8, 0.20)] * 9 + [(_BLOCK8, 1.0)]  # the last: scale 1, no ReLU
        for i, (branches, scale) in enumerate(plan):
            if scale is None:
                block = InceptionV4Block(chs, branches, conv=conv)
            else:  # the last 8x8 block has no ReLU (the released model)
                block = ResidualInceptionBlock(chs, branches, conv=conv, scale=scale, act=i < len(plan) - 1)
            layers.append(block)
            chs = block.out_chs
        layers.append(conv(chs, 1536, 1))
        self.features = nn.Sequential(*layers)
        self.feature_info = [dict(module=f"features.{i}", num_chs=c, reduction=r)
                             for i, c, r in ((2, 64, 2), (5, 192, 4), (17, 320, 8), (38, 1088, 16), (50, 1536, 32))]  # fmt: skip
        self.num_features = 1536
        self.dropout = nn.Dropout(dropout)
        self.last_linear = self._fc(num_classes)


@register_model(
    family="inception_v4",
    year=2016,
    paper="Inception-v4, Inception-ResNet and the Impact of Residual Connections on Learning",
    authors=("Szegedy", "Ioffe", "Vanhoucke", "Alemi"),
    venue="AAAI",
    venue_year=2017,
    arxiv="1602.07261",
    input_size=(3, 299, 299),
    key_idea="Inception-v3's modules made uniform and deeper: a branched stem, 4xA, 7xB, 3xC with "
    "dedicated reduction modules.",
    ref_params=42_679_816,
    ref_params_source="timm inception_v4 parameter count",
    ref_top1=80.0,
    ref_top1_kind="paper",
    ref_top1_source="Szegedy et al. 2016, Table 2: Inception-v4 single crop, 20.0% top-1 error",
    timm="inception_v4",
    notes="BatchNorm (eps 1e-3) after every conv, dropout 0.2 before the classifier (keep 0.8, §3.1 Fig. 9).",
)
def inception_v4(*, num_classes: int = 1000, in_chans: int = 3, dropout: float = 0.2) -> InceptionV4:
    """Return Inception-v4 (Fig. 9)."""
    return InceptionV4(num_classes=num_classes, in_chans=in_chans, dropout=dropout)


@register_model(
    family="inception_v4",
    year=2016,
    paper="Inception-v4, Inception-ResNet and the Impact of Residual Connections on Learning",
    authors=("Szegedy", "Ioffe", "Vanhoucke", "Alemi"),
    venue="AAAI",
    venue_year=2017,
    arxiv="1602.07261",
    input_size=(3, 299, 299),
    key_idea="Inception blocks as residual branches, scaled by 0.1-0.2 before the addition: faster training, "
    "Inception-v4's accuracy.",
    ref_params=55_843_464,
    ref_params_source="timm inception_resnet_v2 parameter count",
    ref_top1=80.1,
    ref_top1_kind="paper",
    ref_top1_source="Szegedy et al. 2016, Table 2: Inception-ResNet-v2 single crop, 19.9% top-1 error",
    timm="inception_resnet_v2",
    notes="The released model's stem and block widths (TF-slim; timm), residual scales 0.17 / 0.10 / 0.20; "
    "the last 8x8 block is unscaled and has no ReLU. timm's weights load by position (shapes checked).",
)
def inception_resnet_v2(
    *, num_classes: int = 1000, in_chans: int = 3, dropout: float = 0.2
) -> InceptionResNetV2:
    """Return Inception-ResNet-v2 (Fig. 15, the released widths)."""
    return InceptionResNetV2(num_classes=num_classes, in_chans=in_chans, dropout=dropout)
