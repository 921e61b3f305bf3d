"""ResNet — He, Zhang, Ren & Sun, "Deep Residual Learning for Image Recognition", CVPR 2016,
arXiv:1512.03385; and the variants built on its bottleneck.

Each block learns a residual F(x) added to an identity shortcut, y = relu(F(x) + x), so
that a deep stack is at worst the identity and 152 layers train better than 34. Stages
of BasicBlocks (two 3x3) or Bottlenecks (1x1 reduce, 3x3, 1x1 expand by 4) follow a
7x7 stem and a max-pool; each later stage halves the resolution and doubles the width.

Faithfulness notes:

- Striding is torchvision's "v1.5": a downsampling Bottleneck strides in its 3x3
  convolution, where the paper (and Caffe's ResNet-50) strides in the first 1x1. v1.5 is
  what torchvision's weights use (more FLOPs, ~0.5% better top-1);
  ``stride_in_1x1=True`` gives the paper's v1 placement, whose FLOPs match Table 1.
- Projection shortcuts (1x1 conv + BN) only where shape changes: the paper's option B.

Variants of the same class: Wide ResNet (Zagoruyko & Komodakis 2016, arXiv:1605.07146)
doubles the bottleneck's inner width; ResNeXt (Xie et al. 2017, arXiv:1611.05431) splits
the 3x3 into ``cardinality`` groups; SE-ResNet (Hu et al. 2018, arXiv:1709.01507) and
ECA-ResNet (Wang et al. 2020, arXiv:1910.03151) gate the channels of each residual
branch; ResNeSt (Zhang et al. 2020, arXiv:2004.08955) replaces the 3x3 by split
attention, with a deep stem and average-pool downsampling (the ResNet-D tweaks).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn as nn

from ..layers.drop_path import DropPath
from ..layers.eca import EfficientChannelAttention
from ..layers.se import SqueezeExcite
from ..layers.split_attn import SplitAttention
from ..registry import register_model
from ._base import LineageModel

__all__ = ["ResNet", "BasicBlock", "Bottleneck", "se_layer", "VARIANTS"]

Layer = Callable[..., nn.Module]


def se_layer(channels: int, *, reduction: int = 16) -> SqueezeExcite:
    """Return an SE block squeezing ``channels`` to ``channels // reduction`` (Hu et al. 2018, r = 16)."""
    return SqueezeExcite(channels, max(channels // reduction, 1))


# channel attention placed after the last BN of the residual branch, before the addition
ATTN_LAYERS: dict[str, Callable[[int], nn.Module]] = {"se": se_layer, "eca": EfficientChannelAttention}


_RELU = functools.partial(nn.ReLU, inplace=True)  # in place, as torchvision: no new tensor per activation


class BasicBlock(nn.Module):
    """Return relu(x' + bn(conv3x3(relu(bn(conv3x3(x)))))), x' the shortcut: ResNet-18/34's block."""

    expansion = 1

    def __init__(
        self,
        in_chs: int,
        planes: int,
        stride: int = 1,
        downsample: nn.Module | None = None,
        *,
        attn_layer: Callable[[int], nn.Module] | None = None,
        drop_path: float = 0.0,
        norm_layer: Layer = nn.BatchNorm2d,
        act_layer: Layer = nn.ReLU,
    ) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_chs, planes, 3, stride, 1, bias=False)
        self.bn1 = norm_layer(planes)
        self.act1 = act_layer()
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = norm_layer(planes)
        # absent parts are None, not nn.Identity: a module call costs a few microseconds, 60 of
        # them in resnet50's forward, and torchvision's blocks make none
        self.se = attn_layer(planes) if attn_layer is not None else None
        self.drop_path = DropPath(drop_path) if drop_path > 0 else None
        self.downsample = downsample
        self.act2 = act_layer()

    def zero_init_last(self) -> None:
        """Zero the last BN's scale so the block starts as the identity (Goyal et al. 2017)."""
        nn.init.zeros_(self.bn2.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn2(self.conv2(self.act1(self.bn1(self.conv1(x)))))
        out = _attend_and_drop(self, out)
        out += x if self.downsample is None else self.downsample(x)  # in place, as torchvision
        return self.act2(out)  # (no new activation-sized tensor per block)


class Bottleneck(nn.Module):
    """Return relu(x' + F(x)), F = 1x1 reduce → 3x3 (grouped or split attention) → 1x1 expand ×4 → attention.

    ``width = int(planes * base_width / 64) * cardinality`` is the inner width: ``planes``
    for ResNet, ``2 * planes`` for Wide ResNet-50-2 (base_width 128), 32 groups of 4 for
    ResNeXt-50 32x4d. ``radix > 0`` makes the 3x3 a split-attention convolution
    (ResNeSt), ``avd`` moves its stride to a 3x3 average pool after it (ResNeSt §3.2),
    ``stride_in_1x1`` puts the stride on the first 1x1 (the paper's v1; default v1.5).
    The attention module is named ``se`` whatever it is, as in timm, so that timm's
    SE-ResNet weights load.
    """

    expansion = 4

    def __init__(
        self,
        in_chs: int,
        planes: int,
        stride: int = 1,
        downsample: nn.Module | None = None,
        *,
        cardinality: int = 1,
        base_width: int = 64,
        radix: int = 0,
        avd: bool = False,
        stride_in_1x1: bool = False,
        attn_layer: Callable[[int], nn.Module] | None = None,
        drop_path: float = 0.0,
        norm_layer: Layer = nn.BatchNorm2d,
        act_layer: Layer = nn.ReLU,
    ) -> None:
        super().__init__()
        if radix < 0:
            raise ValueError(f"radix must be >= 0 (0: a plain 3x3), got {radix}")
        if stride_in_1x1 and avd:
            raise ValueError("stride_in_1x1 and avd both move the 3x3's stride; choose one")
        width = int(planes * base_width / 64) * cardinality
        out_chs = planes * self.expansion
        avd = avd and stride > 1
        s1 = stride if stride_in_1x1 else 1
        s2 = 1 if (stride_in_1x1 or avd) else stride

        self.conv1 = nn.Conv2d(in_chs, width, 1, s1, bias=False)
        self.bn1 = norm_layer(width)
        self.act1 = act_layer()
        if radix > 0:  # split attention carries its own norm and activation
            norms = dict(norm_layer=norm_layer, act_layer=act_layer)
            self.conv2 = SplitAttention(width, width, 3, s2, groups=cardinality, radix=radix, **norms)
            self.bn2, self.act2 = nn.Identity(), nn.Identity()
        else:
            self.conv2 = nn.Conv2d(width, width, 3, s2, 1, groups=cardinality, bias=False)
            self.bn2, self.act2 = norm_layer(width), act_layer()
        self.avd = nn.AvgPool2d(3, stride, padding=1) if avd else None
        self.conv3 = nn.Conv2d(width, out_chs, 1, bias=False)
        self.bn3 = norm_layer(out_chs)
        self.se = attn_layer(out_chs) if attn_layer is not None else None  # None: no call (see BasicBlock)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else None
        self.downsample = downsample
        self.act3 = act_layer()

    def zero_init_last(self) -> None:
        """Zero the last BN's scale so the block starts as the identity (Goyal et al. 2017)."""
        nn.init.zeros_(self.bn3.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.act2(self.bn2(self.conv2(self.act1(self.bn1(self.conv1(x))))))
        if self.avd is not None:
            out = self.avd(out)
        out = _attend_and_drop(self, self.bn3(self.conv3(out)))
        out += x if self.downsample is None else self.downsample(x)  # in place, as torchvision
        return self.act3(out)


def _attend_and_drop(block: nn.Module, out: torch.Tensor) -> torch.Tensor:
    """Return the residual branch after the block's attention module and stochastic depth, where it has them."""
    if block.se is not None:
        out = block.se(out)
    if block.drop_path is not None:
        out = block.drop_path(out)
    return out


BLOCKS: dict[str, type[BasicBlock] | type[Bottleneck]] = {"basic": BasicBlock, "bottleneck": Bottleneck}


def _downsample(in_chs: int, out_chs: int, stride: int, *, avg_down: bool, norm_layer: Layer) -> nn.Module:
    """Return the projection shortcut: 1x1 conv (strided) + norm, or avg-pool → 1x1 conv + norm (ResNet-D)."""
    if not avg_down:
        return nn.Sequential(nn.Conv2d(in_chs, out_chs, 1, stride, bias=False), norm_layer(out_chs))
    # keys 1.* and 2.* as timm's downsample_avg; the pool sees every input pixel, unlike a strided 1x1
    pool = nn.AvgPool2d(2, stride, ceil_mode=True, count_include_pad=False) if stride > 1 else nn.Identity()
    return nn.Sequential(pool, nn.Conv2d(in_chs, out_chs, 1, bias=False), norm_layer(out_chs))


class ResNet(LineageModel):
    """ResNet and its descendants: stem → four stages of residual blocks → global average pool → fc.

    ``layers`` counts blocks per stage, ``widths`` the stages' ``planes`` (outputs are
    ``planes * block.expansion``). ``stem_type="deep"`` replaces the 7x7 by three 3x3s
    (widths ``stem_width``, ``stem_width``, ``2 * stem_width``); ``avg_down`` pools in
    the projection shortcuts. ``drop_path_rate`` is stochastic depth, rising linearly from
    0 at the first block to the rate at the last; ``zero_init_residual`` zeroes each
    branch's last BN scale.
    """

    def __init__(
        self,
        *,
        layers: Sequence[int],
        block: str = "bottleneck",
        widths: Sequence[int] = (64, 128, 256, 512),
        num_classes: int = 1000,
        in_chans: int = 3,
        cardinality: int = 1,
        base_width: int = 64,
        radix: int = 0,
        avd: bool = False,
        stride_in_1x1: bool = False,
        attn_layer: str | Callable[[int], nn.Module] | None = None,
        stem_type: str = "",
        stem_width: int = 64,
        avg_down: bool = False,
        norm_layer: Layer = nn.BatchNorm2d,
        act_layer: Layer = _RELU,
        zero_init_residual: bool = False,
        drop_path_rate: float = 0.0,
    ) -> None:
        # min_size 1: every layer pads, so even a 1x1 input runs through
        super().__init__(in_chans=in_chans, num_classes=num_classes, input_size=(3, 224, 224), min_size=1)
        if block not in BLOCKS:
            raise ValueError(f"block must be one of {sorted(BLOCKS)}, got {block!r}")
        if len(layers) != len(widths):
            raise ValueError(f"layers and widths must have one entry per stage, got {layers} and {widths}")
        if stem_type not in ("", "deep"):
            raise ValueError(f"stem_type must be '' (7x7) or 'deep' (three 3x3), got {stem_type!r}")
        if isinstance(attn_layer, str):
            if attn_layer not in ATTN_LAYERS:
                raise ValueError(
                    f"attn_layer must be one of {sorted(ATTN_LAYERS)} or a callable, got {attn_layer!r}"
                )
            attn_layer = ATTN_LAYERS[attn_layer]
        block_fn = BLOCKS[block]
        block_args: dict[str, Any] = dict(attn_layer=attn_layer, norm_layer=norm_layer, act_layer=act_layer)
        if block_fn is Bottleneck:
            block_args.update(cardinality=cardinality, base_width=base_width, radix=radix, avd=avd)
            block_args.update(stride_in_1x1=stride_in_1x1)
        elif (cardinality, base_width, radix, avd, stride_in_1x1) != (1, 64, 0, False, False):
            raise ValueError("BasicBlock takes no cardinality, base_width, radix, avd or stride_in_1x1")

        # stem: 7x7/2 conv (paper) or three 3x3 convs, the first /2 (ResNet-C/D, ResNeSt); then 3x3/2 max-pool
        if stem_type == "deep":
            c, stem_out = stem_width, 2 * stem_width
            self.conv1: nn.Module = nn.Sequential(  # flat Sequential: keys conv1.0/1/3/4/6, as timm
                nn.Conv2d(in_chans, c, 3, 2, 1, bias=False), norm_layer(c), act_layer(),
                nn.Conv2d(c, c, 3, 1, 1, bias=False), norm_layer(c), act_layer(),
                nn.Conv2d(c, stem_out, 3, 1, 1, bias=False),
            )  # fmt: skip
        else:
            stem_out = stem_width
            self.conv1 = nn.Conv2d(in_chans, stem_out, 7, 2, 3, bias=False)
        self.bn1 = norm_layer(stem_out)
        self.act1 = act_layer()
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.feature_info = [dict(module="act1", num_chs=stem_out, reduction=2)]

        in_chs, reduction = stem_out, 4
        n_blocks, idx = sum(layers), 0
        self.stage_names: list[str] = []
        for i, (n, planes) in enumerate(zip(layers, widths)):
            stride = 1 if i == 0 else 2
            reduction *= stride
            out_chs = planes * block_fn.expansion
            blocks = []
            for j in range(n):
                s = stride if j == 0 else 1
                down = None
                if s != 1 or in_chs != out_chs:
                    down = _downsample(in_chs, out_chs, s, avg_down=avg_down, norm_layer=norm_layer)
                dpr = drop_path_rate * idx / max(n_blocks - 1, 1)
                blocks.append(block_fn(in_chs, planes, s, down, drop_path=dpr, **block_args))
                in_chs, idx = out_chs, idx + 1
            self.add_module(f"layer{i + 1}", nn.Sequential(*blocks))  # torchvision's stage names
            self.stage_names.append(f"layer{i + 1}")
            self.feature_info.append(dict(module=f"layer{i + 1}", num_chs=out_chs, reduction=reduction))

        self.num_features = in_chs
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc: nn.Module = nn.Linear(in_chs, num_classes) if num_classes > 0 else nn.Identity()
        self._init_weights(zero_init_residual)

    def _init_weights(self, zero_init_residual: bool) -> None:
        # He et al. 2015 ("Delving deep into rectifiers") init for convolutions, as torchvision
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        if zero_init_residual:
            for m in self.modules():
                if isinstance(m, (BasicBlock, Bottleneck)):
                    m.zero_init_last()

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.act1(self.bn1(self.conv1(x))))
        for name in self.stage_names:
            x = getattr(self, name)(x)
        return x

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = torch.flatten(self.avgpool(x), 1)  # (B, num_features)
        return x if pre_logits else self.fc(x)

    def get_classifier(self) -> nn.Module:
        return self.fc

    def reset_classifier(self, num_classes: int) -> None:
        self.num_classes = num_classes
        self.fc = nn.Linear(self.num_features, num_classes) if num_classes > 0 else nn.Identity()


# name: block, blocks per stage (He et al. Table 1), then what the variant changes
VARIANTS: dict[str, dict[str, Any]] = {
    "resnet18": dict(block="basic", layers=(2, 2, 2, 2)),
    "resnet34": dict(block="basic", layers=(3, 4, 6, 3)),
    "resnet50": dict(block="bottleneck", layers=(3, 4, 6, 3)),
    "resnet101": dict(block="bottleneck", layers=(3, 4, 23, 3)),
    "resnet152": dict(block="bottleneck", layers=(3, 8, 36, 3)),
    "wide_resnet50_2": dict(block="bottleneck", layers=(3, 4, 6, 3), base_width=128),
    "resnext50_32x4d": dict(block="bottleneck", layers=(3, 4, 6, 3), cardinality=32, base_width=4),
    "resnext101_32x8d": dict(block="bottleneck", layers=(3, 4, 23, 3), cardinality=32, base_width=8),
    "seresnet50": dict(block="bottleneck", layers=(3, 4, 6, 3), attn_layer="se"),
    "ecaresnet50": dict(block="bottleneck", layers=(3, 4, 6, 3), attn_layer="eca"),
    "resnest50": dict(
        block="bottleneck",
        layers=(3, 4, 6, 3),
        radix=2,
        avd=True,
        stem_type="deep",
        stem_width=32,
        avg_down=True,
    ),
}


def _create(name: str, num_classes: int, in_chans: int, kwargs: dict[str, Any]) -> ResNet:
    # the variant's table row, overridable by keyword (e.g. drop_path_rate, zero_init_residual, stride_in_1x1)
    return ResNet(**{**VARIANTS[name], **kwargs}, num_classes=num_classes, in_chans=in_chans)


def _tv(name: str, **card: Any) -> dict[str, Any]:
    # card fields of a model whose weights torchvision has: counts and top-1 from its IMAGENET1K_V1 metadata
    return dict(
        ref_params_source=f"torchvision {name} IMAGENET1K_V1 meta num_params",
        ref_top1_kind="recipe",
        ref_top1_source=f"torchvision {name} IMAGENET1K_V1 meta acc@1 (single 224 crop)",
        torchvision=name,
        default_kwargs=VARIANTS[name],
        **card,
    )


def _paper(title: str) -> dict[str, Any]:
    # card fields naming a paper; every model here takes the ImageNet 224x224 crop
    year, authors, venue, venue_year, arxiv = _PAPERS[title]
    card = dict(family="resnet", year=year, paper=title, authors=authors, venue=venue, venue_year=venue_year)
    return dict(card, arxiv=arxiv, input_size=(3, 224, 224))


_PAPERS = {
    # title: (first public appearance, authors, venue, venue year, arXiv id)
    "Deep Residual Learning for Image Recognition": (
        2015,
        ("He", "Zhang", "Ren", "Sun"),
        "CVPR",
        2016,
        "1512.03385",
    ),
    "Wide Residual Networks": (2016, ("Zagoruyko", "Komodakis"), "BMVC", 2016, "1605.07146"),
    "Aggregated Residual Transformations for Deep Neural Networks": (
        2016,
        ("Xie", "Girshick", "Dollár", "Tu", "He"),
        "CVPR",
        2017,
        "1611.05431",
    ),
    "Squeeze-and-Excitation Networks": (2017, ("Hu", "Shen", "Sun"), "CVPR", 2018, "1709.01507"),
    "ECA-Net: Efficient Channel Attention for Deep Convolutional Neural Networks": (
        2019,
        ("Wang", "Wu", "Zhu", "Li", "Zuo", "Hu"),
        "CVPR",
        2020,
        "1910.03151",
    ),
    "ResNeSt: Split-Attention Networks": (
        2020,
        ("Zhang", "Wu", "Zhang", "Zhu", "Lin", "Zhang", "Sun", "He", "Mueller", "Manmatha", "Li", "Smola"),
        "CVPR Workshops",
        2022,
        "2004.08955",
    ),
}
_HE = _paper("Deep Residual Learning for Image Recognition")
_WRN = _paper("Wide Residual Networks")
_RESNEXT = _paper("Aggregated Residual Transformations for Deep Neural Networks")
_SE = _paper("Squeeze-and-Excitation Networks")
_ECA = _paper("ECA-Net: Efficient Channel Attention for Deep Convolutional Neural Networks")
_RESNEST = _paper("ResNeSt: Split-Attention Networks")
_V15 = "torchvision's v1.5 striding (stride on the 3x3); stride_in_1x1=True gives the paper's v1."


@register_model(
    **_tv("resnet18", **_HE),
    key_idea="Identity shortcuts: each block learns a residual, so depth no longer degrades training.",
    ref_params=11_689_512,
    ref_top1=69.758,
)
def resnet18(*, num_classes: int = 1000, in_chans: int = 3, **kwargs: Any) -> ResNet:
    """Return ResNet-18: BasicBlocks 2-2-2-2."""
    return _create("resnet18", num_classes, in_chans, kwargs)


@register_model(
    **_tv("resnet34", **_HE),
    key_idea="Thirty-four layers of two-3x3 residual blocks beat the plain 34-layer net they extend.",
    ref_params=21_797_672,
    ref_top1=73.314,
)
def resnet34(*, num_classes: int = 1000, in_chans: int = 3, **kwargs: Any) -> ResNet:
    """Return ResNet-34: BasicBlocks 3-4-6-3."""
    return _create("resnet34", num_classes, in_chans, kwargs)


@register_model(
    **_tv("resnet50", **_HE),
    key_idea="Bottleneck blocks (1x1 reduce, 3x3, 1x1 expand) make 50 layers cost about as much as 34.",
    ref_params=25_557_032,
    ref_top1=76.13,
    notes=_V15,
)
def resnet50(*, num_classes: int = 1000, in_chans: int = 3, **kwargs: Any) -> ResNet:
    """Return ResNet-50: Bottlenecks 3-4-6-3."""
    return _create("resnet50", num_classes, in_chans, kwargs)


@register_model(
    **_tv("resnet101", **_HE),
    key_idea="Deeper bottleneck stack (23 blocks in stage 3): accuracy still rises with depth.",
    ref_params=44_549_160,
    ref_top1=77.374,
    notes=_V15,
)
def resnet101(*, num_classes: int = 1000, in_chans: int = 3, **kwargs: Any) -> ResNet:
    """Return ResNet-101: Bottlenecks 3-4-23-3."""
    return _create("resnet101", num_classes, in_chans, kwargs)


@register_model(
    **_tv("resnet152", **_HE),
    key_idea="152 layers, still fewer FLOPs than VGG-16/19: the ILSVRC 2015 winner's backbone.",
    ref_params=60_192_808,
    ref_top1=78.312,
    notes=_V15,
)
def resnet152(*, num_classes: int = 1000, in_chans: int = 3, **kwargs: Any) -> ResNet:
    """Return ResNet-152: Bottlenecks 3-8-36-3."""
    return _create("resnet152", num_classes, in_chans, kwargs)


@register_model(
    **_tv("wide_resnet50_2", **_WRN),
    key_idea="Widen rather than deepen: twice the bottleneck's inner width, faster to train, as accurate.",
    ref_params=68_883_240,
    ref_top1=78.468,
    notes="torchvision's ImageNet WRN-50-2: ResNet-50 with the inner width doubled. " + _V15,
)
def wide_resnet50_2(*, num_classes: int = 1000, in_chans: int = 3, **kwargs: Any) -> ResNet:
    """Return Wide ResNet-50-2: ResNet-50 with inner widths doubled."""
    return _create("wide_resnet50_2", num_classes, in_chans, kwargs)


@register_model(
    **_tv("resnext50_32x4d", **_RESNEXT),
    key_idea="Cardinality: 32 parallel 4-wide paths (a grouped 3x3) beat deeper or wider at equal cost.",
    ref_params=25_028_904,
    ref_top1=77.618,
    notes=_V15,
)
def resnext50_32x4d(*, num_classes: int = 1000, in_chans: int = 3, **kwargs: Any) -> ResNet:
    """Return ResNeXt-50 (32x4d): ResNet-50 with a 32-group 3x3 of 4 channels per group in stage 1."""
    return _create("resnext50_32x4d", num_classes, in_chans, kwargs)


@register_model(
    **_tv("resnext101_32x8d", **_RESNEXT),
    key_idea="ResNeXt-101 with 32 groups of 8 channels: cardinality scaled to a large model.",
    ref_params=88_791_336,
    ref_top1=79.312,
    notes=_V15,
)
def resnext101_32x8d(*, num_classes: int = 1000, in_chans: int = 3, **kwargs: Any) -> ResNet:
    """Return ResNeXt-101 (32x8d)."""
    return _create("resnext101_32x8d", num_classes, in_chans, kwargs)


@register_model(
    **_SE,
    key_idea="Squeeze (global pool) and excite (bottleneck MLP + sigmoid): each block reweights channels.",
    ref_params=28_088_024,
    ref_params_source="timm seresnet50 parameter count; = resnet50 + 2,530,992 SE parameters (hand count)",
    ref_top1=76.71,
    ref_top1_kind="paper",
    ref_top1_source="Hu et al. 2018, Table 2: SE-ResNet-50 top-1 error 23.29% (single 224 crop)",
    timm="seresnet50",
    notes="SE (r = 16) after the last BN of every bottleneck, before the addition. " + _V15,
    default_kwargs=VARIANTS["seresnet50"],
)
def seresnet50(*, num_classes: int = 1000, in_chans: int = 3, **kwargs: Any) -> ResNet:
    """Return SE-ResNet-50: ResNet-50 with squeeze-and-excitation (reduction 16) in every bottleneck."""
    return _create("seresnet50", num_classes, in_chans, kwargs)


@register_model(
    **_ECA,
    key_idea="Channel attention without reduction: a 1-D conv of adaptive size k over the pooled channels.",
    ref_params=25_557_118,
    ref_params_source="hand count: resnet50 25,557,032 + ECA kernels 3x5 + 4x5 + 6x5 + 3x7 = 86",
    ref_top1=77.48,
    ref_top1_kind="paper",
    ref_top1_source="Wang et al. 2020, Table 2: ECA-Net50 top-1 77.48% (single 224 crop)",
    notes="k = psi(C) by eca_kernel_size (the reference code's rounding: an even t goes up), giving k = 7 at "
    "C = 2048 and 86 ECA parameters; the paper reports 80 (k = 5 everywhere). " + _V15,
    default_kwargs=VARIANTS["ecaresnet50"],
)
def ecaresnet50(*, num_classes: int = 1000, in_chans: int = 3, **kwargs: Any) -> ResNet:
    """Return ECA-ResNet-50: ResNet-50 with efficient channel attention in every bottleneck."""
    return _create("ecaresnet50", num_classes, in_chans, kwargs)


@register_model(
    **_RESNEST,
    key_idea="Split attention: a softmax across radix feature-map splits of the 3x3 conv, per channel.",
    ref_params=27_483_240,
    ref_params_source="timm resnest50d parameter count (the paper: 27.5M)",
    ref_top1=81.13,
    ref_top1_kind="paper",
    ref_top1_source="Zhang et al. 2020, abstract: ResNeSt-50 81.13% top-1 at a single 224 crop",
    timm="resnest50d",
    notes="Radix 2, cardinality 1, deep stem (32-32-64), average-pool shortcuts and avd (stride as a 3x3 "
    "average pool after the split-attention conv). Trained with heavy augmentation (AutoAugment, mixup, "
    "label smoothing, DropBlock) for its top-1.",
    default_kwargs=VARIANTS["resnest50"],
)
def resnest50(*, num_classes: int = 1000, in_chans: int = 3, **kwargs: Any) -> ResNet:
    """Return ResNeSt-50: split-attention bottlenecks (radix 2) on a ResNet-D body."""
    return _create("resnest50", num_classes, in_chans, kwargs)
