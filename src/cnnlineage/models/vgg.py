"""VGG — Simonyan & Zisserman, "Very Deep Convolutional Networks for Large-Scale Image
Recognition", ICLR 2015, arXiv:1409.1556.

Depth as the one design variable: stacks of 3×3 convolutions (stride 1, padding 1) between
2×2 max-pools, widths doubling from 64 to 512 after each pool, and AlexNet's 4096-4096
classifier. Two 3×3 layers see a 5×5 field and three a 7×7 one, with fewer parameters and
more non-linearities than one large kernel (§2.3).

The configurations are Table 1's columns A (11 weight layers), A-LRN (A with local response
normalisation after the first layer), B (13), C (16, of which three 1×1), D (16) and E (19),
written once in ``VGG_CFGS``; with them the single-scale comparison of Table 3 is complete:
LRN does not help (A-LRN is no better than A), depth does (A → B → C → D), and spatial context
does (C's 1×1 layers add non-linearity but lose to D's 3×3, §4.1). ``_bn`` variants add
BatchNorm after every convolution (not in the paper, which predates BatchNorm; torchvision's
trained weights exist for both).
Module names and order are torchvision's, so its state_dicts load as they are.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import torch
import torch.nn as nn

from ..registry import register_model
from ._base import LineageModel
from .alexnet import krizhevsky_lrn

__all__ = ["VGG", "VGG_CFGS"]

_RELU = functools.partial(nn.ReLU, inplace=True)

# Table 1: the widths of the convolutions of each of the five stages, 3×3 unless written
# (width, kernel) — configuration C's 1×1 layers; every stage ends with a 2×2 stride-2
# max-pool. A-LRN is configuration A with LRN after the first layer (``lrn=True``).
VGG_CFGS: dict[str, tuple[tuple[int | tuple[int, int], ...], ...]] = {
    "A": ((64,), (128,), (256, 256), (512, 512), (512, 512)),
    "B": ((64, 64), (128, 128), (256, 256), (512, 512), (512, 512)),
    "C": ((64, 64), (128, 128), (256, 256, (256, 1)), (512, 512, (512, 1)), (512, 512, (512, 1))),
    "D": ((64, 64), (128, 128), (256, 256, 256), (512, 512, 512), (512, 512, 512)),
    "E": ((64, 64), (128, 128), (256, 256, 256, 256), (512, 512, 512, 512), (512, 512, 512, 512)),
}


class VGG(LineageModel):
    """Five stages of 3×3 conv (+ norm) + ReLU with a max-pool after each, then 4096-4096-classes.

    ``features`` is a flat ``nn.Sequential`` (conv, [norm], act, ..., pool) and
    ``classifier`` is Linear-ReLU-Dropout ×2 + Linear, as torchvision's ``VGG``.
    ``avgpool`` (adaptive, 7×7) is the identity at 224×224 and lets 32×32 and up through.
    """

    def __init__(
        self,
        cfg: tuple[tuple[int | tuple[int, int], ...], ...],
        *,
        num_classes: int = 1000,
        in_chans: int = 3,
        dropout: float = 0.5,
        lrn: bool = False,
        norm_layer: Callable[[int], nn.Module] | None = None,
        act_layer: Callable[..., nn.Module] = _RELU,
    ) -> None:
        super().__init__(
            in_chans=in_chans, num_classes=num_classes, input_size=(in_chans, 224, 224), min_size=32
        )
        layers: list[nn.Module] = []
        self.feature_info = []
        chs = in_chans
        for i, widths in enumerate(cfg):
            for spec in widths:
                width, k = spec if isinstance(spec, tuple) else (spec, 3)
                layers.append(
                    nn.Conv2d(chs, width, k, padding=k // 2)
                )  # biased even before BN, as torchvision
                if norm_layer is not None:
                    layers.append(norm_layer(width))
                layers.append(act_layer())
                if lrn and len(layers) == 2:
                    # A-LRN: Krizhevsky's LRN (n = 5, alpha = 1e-4, beta = 0.75, k = 2) after the first layer (§2.2)
                    layers.append(krizhevsky_lrn())
                chs = width
            # each stage is recorded at its last activation, before the pool halves it
            self.feature_info.append(dict(module=f"features.{len(layers) - 1}", num_chs=chs, reduction=2**i))
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
        self.num_features = chs * 7 * 7
        self.classifier = nn.Sequential(
            nn.Linear(self.num_features, 4096), act_layer(), nn.Dropout(dropout),
            nn.Linear(4096, 4096), act_layer(), nn.Dropout(dropout),
            self._make_fc(num_classes),
        )  # fmt: skip
        self._init_weights()

    @staticmethod
    def _make_fc(num_classes: int) -> nn.Module:
        return nn.Linear(4096, num_classes) if num_classes > 0 else nn.Identity()

    def _init_weights(self) -> None:
        # The paper initialised from N(0, 0.01) and trained the deeper nets from net A's
        # weights, noting after submission that Glorot init works without it (§3.1); we use
        # torchvision's He init for the convolutions, which trains all depths from scratch.
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0.0, 0.01)
                nn.init.zeros_(m.bias)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = torch.flatten(self.avgpool(x), 1)  # (B, 512·7·7)
        if not pre_logits:
            return self.classifier(x)  # one call, as torchvision: a slice would build a new Sequential
        return self.classifier[:-1](x)

    def get_classifier(self) -> nn.Module:
        return self.classifier[-1]

    def reset_classifier(self, num_classes: int) -> None:
        self.num_classes = num_classes
        self.classifier[-1] = self._make_fc(num_classes)


_VGG = dict(
    family="vgg",
    year=2014,
    paper="Very Deep Convolutional Networks for Large-Scale Image Recognition",
    authors=("Simonyan", "Zisserman"),
    venue="ICLR",
    venue_year=2015,
    arxiv="1409.1556",
    input_size=(3, 224, 224),
)


def _vgg(cfg: str, batch_norm: bool, num_classes: int, in_chans: int, dropout: float) -> VGG:
    norm = nn.BatchNorm2d if batch_norm else None
    return VGG(VGG_CFGS[cfg], num_classes=num_classes, in_chans=in_chans, dropout=dropout, norm_layer=norm)


def _card(name: str, cfg: str, depth: int, params: int, top1: float, batch_norm: bool = False) -> dict:
    weights = f"{name.upper()}_Weights.IMAGENET1K_V1"  # torchvision's enum, e.g. VGG16_BN_Weights
    idea = f"Configuration {cfg}: {depth} weight layers, all convolutions 3x3; depth is the design variable."
    if batch_norm:
        idea = f"VGG configuration {cfg} ({depth} layers) with BatchNorm after every convolution."
    return dict(
        **_VGG,
        key_idea=idea,
        ref_params=params,
        ref_params_source=f"torchvision {weights} meta num_params",
        ref_top1=top1,
        ref_top1_kind="recipe",
        ref_top1_source=f"torchvision {weights} (ImageNet-1K val, 224 crop)",
        torchvision=name,
        notes="BatchNorm is not in the paper (torchvision's variant)." if batch_norm else "",
    )


@register_model(**_card("vgg11", "A", 11, 132_863_336, 69.02))
def vgg11(*, num_classes: int = 1000, in_chans: int = 3, dropout: float = 0.5) -> VGG:
    """Return VGG-11 (configuration A)."""
    return _vgg("A", False, num_classes, in_chans, dropout)


@register_model(**_card("vgg13", "B", 13, 133_047_848, 69.928))
def vgg13(*, num_classes: int = 1000, in_chans: int = 3, dropout: float = 0.5) -> VGG:
    """Return VGG-13 (configuration B)."""
    return _vgg("B", False, num_classes, in_chans, dropout)


@register_model(**_card("vgg16", "D", 16, 138_357_544, 71.592))
def vgg16(*, num_classes: int = 1000, in_chans: int = 3, dropout: float = 0.5) -> VGG:
    """Return VGG-16 (configuration D)."""
    return _vgg("D", False, num_classes, in_chans, dropout)


@register_model(**_card("vgg19", "E", 19, 143_667_240, 72.376))
def vgg19(*, num_classes: int = 1000, in_chans: int = 3, dropout: float = 0.5) -> VGG:
    """Return VGG-19 (configuration E)."""
    return _vgg("E", False, num_classes, in_chans, dropout)


@register_model(**_card("vgg11_bn", "A", 11, 132_868_840, 70.37, batch_norm=True))
def vgg11_bn(*, num_classes: int = 1000, in_chans: int = 3, dropout: float = 0.5) -> VGG:
    """Return VGG-11 (configuration A) with BatchNorm."""
    return _vgg("A", True, num_classes, in_chans, dropout)


@register_model(**_card("vgg13_bn", "B", 13, 133_053_736, 71.586, batch_norm=True))
def vgg13_bn(*, num_classes: int = 1000, in_chans: int = 3, dropout: float = 0.5) -> VGG:
    """Return VGG-13 (configuration B) with BatchNorm."""
    return _vgg("B", True, num_classes, in_chans, dropout)


@register_model(**_card("vgg16_bn", "D", 16, 138_365_992, 73.36, batch_norm=True))
def vgg16_bn(*, num_classes: int = 1000, in_chans: int = 3, dropout: float = 0.5) -> VGG:
    """Return VGG-16 (configuration D) with BatchNorm."""
    return _vgg("D", True, num_classes, in_chans, dropout)


@register_model(**_card("vgg19_bn", "E", 19, 143_678_248, 74.218, batch_norm=True))
def vgg19_bn(*, num_classes: int = 1000, in_chans: int = 3, dropout: float = 0.5) -> VGG:
    """Return VGG-19 (configuration E) with BatchNorm."""
    return _vgg("E", True, num_classes, in_chans, dropout)


# ---------------------------------------------------------------------------------------- Table 3's other columns
def _paper_card(cfg: str, params: int, top1_error: float, idea: str) -> dict:
    return dict(
        **_VGG,
        key_idea=idea,
        ref_params=params,
        ref_params_source=f"hand count (tests/models/test_vgg.py); Table 2 rounds it to {round(params / 1e6)}M",
        ref_top1=round(100 - top1_error, 1),
        ref_top1_kind="paper",
        ref_top1_source=f"Simonyan & Zisserman, Table 3: configuration {cfg}, train and test scale 256, "
        f"{top1_error}% top-1 error (single scale)",
        notes="No torchvision weights: the configuration exists only in the paper.",
    )


@register_model(
    **_paper_card("A-LRN", 132_863_336, 29.7, "Configuration A with local response normalisation after the "
                  "first layer: LRN does not improve accuracy (Table 3)."),
)  # fmt: skip
def vgg11_lrn(*, num_classes: int = 1000, in_chans: int = 3, dropout: float = 0.5) -> VGG:
    """Return VGG configuration A-LRN (11 layers, LRN after the first)."""
    return VGG(VGG_CFGS["A"], num_classes=num_classes, in_chans=in_chans, dropout=dropout, lrn=True)


@register_model(
    **_paper_card("C", 133_638_952, 28.1, "Configuration C: 16 layers, three of them 1x1 convolutions; beats B "
                  "(added non-linearity) but loses to D's 3x3 (spatial context matters)."),
)  # fmt: skip
def vgg16_c(*, num_classes: int = 1000, in_chans: int = 3, dropout: float = 0.5) -> VGG:
    """Return VGG configuration C (16 layers with 1×1 convolutions in the last three stages)."""
    return VGG(VGG_CFGS["C"], num_classes=num_classes, in_chans=in_chans, dropout=dropout)
