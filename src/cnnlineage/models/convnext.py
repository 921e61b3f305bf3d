"""ConvNeXt — Liu, Mao, Wu, Feichtenhofer, Darrell & Xie, "A ConvNet for the 2020s",
CVPR 2022, arXiv:2201.03545.

A ResNet-50 "modernised" one step at a time towards a Swin Transformer, without any
attention: the stage compute ratio of Swin (1:1:3:1), a 4x4 stride-4 "patchify" stem,
depthwise convolutions and an inverted bottleneck, a 7x7 kernel placed before the 1x1
layers, a single GELU and a single LayerNorm per block, and separate downsampling layers
(LayerNorm + 2x2 stride-2 convolution). Training uses layer scale (initial value 1e-6)
and stochastic depth that grows linearly with the block index.

Module names are torchvision's, so its state_dicts load as they are. The two 1x1
convolutions are linear layers on a channels-last tensor, as in the paper's code.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import torch
import torch.nn as nn

from ..layers.conv_norm_act import ConvNormAct
from ..layers.drop_path import DropPath
from ..layers.norm import LayerNorm2d
from ..registry import register_model
from ._base import LineageModel

__all__ = ["ConvNeXt", "ConvNeXtBlock", "ConvNeXtStage", "CONVNEXT_STAGES", "Permute", "drop_path_rates"]

# LayerNorm with the paper's eps, channels-last (inside blocks) and channels-first (stem, downsampling, head).
LayerNormEps6 = partial(nn.LayerNorm, eps=1e-6)
LayerNorm2dEps6 = partial(LayerNorm2d, eps=1e-6)


class Permute(nn.Module):
    """Return ``x.permute(*dims)``: switches between channels-first and channels-last."""

    def __init__(self, dims: Sequence[int]) -> None:
        super().__init__()
        self.dims = tuple(dims)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.permute(*self.dims)

    def extra_repr(self) -> str:
        return f"dims={self.dims}"


class ConvNeXtBlock(nn.Module):
    """Return ``x + drop_path(gamma · pwconv2(act(pwconv1(norm(dwconv7x7(x))))))`` (paper Fig. 4).

    ``gamma`` is the per-channel layer scale (stored as ``layer_scale``, shape (C, 1, 1)),
    initialised to ``layer_scale`` (1e-6, Touvron et al. 2021) so every block starts close
    to the identity. The inverted bottleneck is ``expansion`` (4) times wider than the block.
    """

    def __init__(
        self,
        dim: int,
        *,
        layer_scale: float = 1e-6,
        drop_path: float = 0.0,
        expansion: int = 4,
        kernel_size: int = 7,
        norm_layer: Callable[[int], nn.Module] = LayerNormEps6,
        act_layer: Callable[[], nn.Module] = nn.GELU,
    ) -> None:
        super().__init__()
        self.block = nn.Sequential(
            nn.Conv2d(dim, dim, kernel_size, padding=kernel_size // 2, groups=dim),  # depthwise: space
            Permute((0, 2, 3, 1)),  # (B, H, W, C)
            norm_layer(dim),
            nn.Linear(dim, expansion * dim),  # 1x1 conv = linear over channels
            act_layer(),
            nn.Linear(expansion * dim, dim),
            Permute((0, 3, 1, 2)),  # (B, C, H, W)
        )
        self.layer_scale = nn.Parameter(torch.full((dim, 1, 1), float(layer_scale)))
        self.drop_path = DropPath(drop_path)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.drop_path(self.layer_scale * self.block(x))
        out += x  # in place, as torchvision: no new activation-sized tensor per block
        return out


@dataclass(frozen=True)
class ConvNeXtStage:
    """One stage of the variant table: channels C_i and number of blocks B_i (paper §3, "Model variants")."""

    width: int
    depth: int


def drop_path_rates(depths: Sequence[int], max_rate: float) -> list[float]:
    """Return one stochastic-depth rate per block, rising linearly from 0 to ``max_rate`` over all blocks."""
    n = sum(depths)
    return [max_rate * i / (n - 1) if n > 1 else 0.0 for i in range(n)]


class ConvNeXt(LineageModel):
    """ConvNeXt: patchify stem, stages joined by LayerNorm + 2x2 stride-2 convs; pool, LayerNorm, linear."""

    def __init__(
        self,
        stages: Sequence[ConvNeXtStage],
        *,
        num_classes: int = 1000,
        in_chans: int = 3,
        drop_path_rate: float = 0.0,
        layer_scale: float = 1e-6,
        norm_layer: Callable[[int], nn.Module] = LayerNorm2dEps6,
    ) -> None:
        # The stem (stride 4) and three downsampling layers (stride 2) reduce by 32 in all.
        super().__init__(
            in_chans=in_chans, num_classes=num_classes, input_size=(in_chans, 224, 224), min_size=32
        )
        if not stages:
            raise ValueError("ConvNeXt needs at least one stage, got an empty stage table")
        self.stage_table = tuple(stages)
        rates = iter(drop_path_rates([s.depth for s in stages], drop_path_rate))

        # Stem: non-overlapping 4x4 patches, like a ViT's patch embedding (§2.2 "patchify").
        layers: list[nn.Module] = [
            ConvNormAct(
                in_chans, stages[0].width, 4, 4, padding=0, bias=True, norm_layer=norm_layer, act_layer=None
            )
        ]
        self.feature_info = []
        reduction = 4
        for i, stage in enumerate(stages):
            if i > 0:  # separate downsampling layer (§2.6): LayerNorm, then 2x2 stride-2 conv
                prev = stages[i - 1].width
                layers.append(nn.Sequential(norm_layer(prev), nn.Conv2d(prev, stage.width, 2, stride=2)))
                reduction *= 2
            layers.append(
                nn.Sequential(
                    *[
                        ConvNeXtBlock(stage.width, layer_scale=layer_scale, drop_path=next(rates))
                        for _ in range(stage.depth)
                    ]
                )
            )
            self.feature_info.append(
                dict(module=f"features.{len(layers) - 1}", num_chs=stage.width, reduction=reduction)
            )
        self.features = nn.Sequential(*layers)
        self.num_features = stages[-1].width
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(
            norm_layer(self.num_features),
            nn.Flatten(1),
            nn.Linear(self.num_features, num_classes) if num_classes > 0 else nn.Identity(),
        )
        for m in self.modules():  # the paper's code: truncated normal, std 0.02; zero biases
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = self.classifier[1](self.classifier[0](self.avgpool(x)))  # pool, LayerNorm, flatten: (B, C)
        return x if pre_logits else self.classifier[2](x)

    def get_classifier(self) -> nn.Module:
        return self.classifier[2]

    def reset_classifier(self, num_classes: int) -> None:
        self.num_classes = num_classes
        self.classifier[2] = nn.Linear(self.num_features, num_classes) if num_classes > 0 else nn.Identity()


# --------------------------------------------------------------------------- variants
def _stages(widths: tuple[int, ...], depths: tuple[int, ...]) -> tuple[ConvNeXtStage, ...]:
    return tuple(ConvNeXtStage(w, d) for w, d in zip(widths, depths, strict=True))


# Paper §3 "Model variants"; stochastic depth rates of Appendix A.1 (ImageNet-1K training).
CONVNEXT_STAGES: dict[str, tuple[tuple[ConvNeXtStage, ...], float]] = {
    # name: ((C_i, B_i) per stage, stochastic depth rate)
    "convnext_tiny": (_stages((96, 192, 384, 768), (3, 3, 9, 3)), 0.1),
    "convnext_small": (_stages((96, 192, 384, 768), (3, 3, 27, 3)), 0.4),
    "convnext_base": (_stages((128, 256, 512, 1024), (3, 3, 27, 3)), 0.5),
    "convnext_large": (_stages((192, 384, 768, 1536), (3, 3, 27, 3)), 0.5),
}


def _card(name: str, *, ref_params: int, top1: float) -> dict:
    return dict(
        family="convnext",
        year=2022,
        paper="A ConvNet for the 2020s",
        authors=("Liu", "Mao", "Wu", "Feichtenhofer", "Darrell", "Xie"),
        venue="CVPR",
        venue_year=2022,
        arxiv="2201.03545",
        input_size=(3, 224, 224),
        key_idea="A ResNet modernised towards Swin: patchify stem, 7x7 depthwise conv, inverted bottleneck, "
        "LayerNorm, GELU.",
        ref_params=ref_params,
        ref_params_source=f"torchvision {name} IMAGENET1K_V1 meta['num_params']",
        ref_top1=top1,
        ref_top1_kind="paper",
        ref_top1_source="Liu et al. 2022, Table 1 (ImageNet-1K, 224x224)",
        torchvision=name,
        notes="Trained with AdamW for 300 epochs, layer scale 1e-6 and stochastic depth (the builder's "
        "drop_path_rate default is the paper's rate for this size).",
        default_kwargs=dict(drop_path_rate=CONVNEXT_STAGES[name][1]),
    )


def _convnext(name: str, *, drop_path_rate: float | None, **kwargs: Any) -> ConvNeXt:
    stages, paper_rate = CONVNEXT_STAGES[name]
    return ConvNeXt(stages, drop_path_rate=paper_rate if drop_path_rate is None else drop_path_rate, **kwargs)


@register_model(**_card("convnext_tiny", ref_params=28_589_128, top1=82.1))
def convnext_tiny(
    *,
    num_classes: int = 1000,
    in_chans: int = 3,
    drop_path_rate: float | None = None,
    layer_scale: float = 1e-6,
) -> ConvNeXt:
    """Return ConvNeXt-T: C = (96, 192, 384, 768), B = (3, 3, 9, 3); drop path 0.1 unless given."""
    return _convnext(
        "convnext_tiny",
        num_classes=num_classes,
        in_chans=in_chans,
        drop_path_rate=drop_path_rate,
        layer_scale=layer_scale,
    )


@register_model(**_card("convnext_small", ref_params=50_223_688, top1=83.1))
def convnext_small(
    *,
    num_classes: int = 1000,
    in_chans: int = 3,
    drop_path_rate: float | None = None,
    layer_scale: float = 1e-6,
) -> ConvNeXt:
    """Return ConvNeXt-S: C = (96, 192, 384, 768), B = (3, 3, 27, 3); drop path 0.4 unless given."""
    return _convnext(
        "convnext_small",
        num_classes=num_classes,
        in_chans=in_chans,
        drop_path_rate=drop_path_rate,
        layer_scale=layer_scale,
    )


@register_model(**_card("convnext_base", ref_params=88_591_464, top1=83.8))
def convnext_base(
    *,
    num_classes: int = 1000,
    in_chans: int = 3,
    drop_path_rate: float | None = None,
    layer_scale: float = 1e-6,
) -> ConvNeXt:
    """Return ConvNeXt-B: C = (128, 256, 512, 1024), B = (3, 3, 27, 3); drop path 0.5 unless given."""
    return _convnext(
        "convnext_base",
        num_classes=num_classes,
        in_chans=in_chans,
        drop_path_rate=drop_path_rate,
        layer_scale=layer_scale,
    )


@register_model(**_card("convnext_large", ref_params=197_767_336, top1=84.3))
def convnext_large(
    *,
    num_classes: int = 1000,
    in_chans: int = 3,
    drop_path_rate: float | None = None,
    layer_scale: float = 1e-6,
) -> ConvNeXt:
    """Return ConvNeXt-L: C = (192, 384, 768, 1536), B = (3, 3, 27, 3); drop path 0.5 unless given."""
    return _convnext(
        "convnext_large",
        num_classes=num_classes,
        in_chans=in_chans,
        drop_path_rate=drop_path_rate,
        layer_scale=layer_scale,
    )
