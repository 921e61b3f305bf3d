"""ResNets for CIFAR-10 — He, Zhang, Ren & Sun, "Deep Residual Learning for Image Recognition",
CVPR 2016, arXiv:1512.03385, §4.2.

The networks with which the paper showed on CIFAR-10 that a deeper plain stack trains *worse*
(the degradation problem, Fig. 6 left) and that identity shortcuts cure it (Fig. 6 middle).
A 3×3 convolution with 16 filters, three stages of n basic blocks (two 3×3 convolutions each)
on 32×32, 16×16 and 8×8 maps with 16, 32 and 64 filters, global average pooling and a 10-way
fully connected layer: 6n + 2 weighted layers.

Every shortcut is an identity (option A, §3.3): where the maps halve and the filters double,
the identity takes every other pixel and pads the new channels with zeros, so a residual net
has exactly the parameters of its plain twin (Table 6: 0.27M for ResNet-20 ... 1.7M for
ResNet-110). ``shortcut="B"`` puts a 1×1 projection + BN where the dimensions grow instead (the
paper's option B, used on ImageNet), and ``plain*`` drops the shortcuts altogether.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..layers.conv_norm_act import ConvNormAct
from ..registry import register_model
from ._base import LineageModel

__all__ = ["CifarResNet", "CifarBasicBlock", "ZeroPadShortcut", "STAGE_WIDTHS"]

STAGE_WIDTHS: tuple[int, int, int] = (16, 32, 64)  # filters of the three stages, §4.2


class ZeroPadShortcut(nn.Module):
    """Option A identity shortcut: subsample by ``stride`` and append zero channels (no parameters).

    The zeros go after the original channels, as in fb.resnet.torch's CIFAR ResNet
    (``Concat(Identity, MulConstant(0))`` after a strided 1×1 average pooling).
    """

    def __init__(self, in_chs: int, out_chs: int, stride: int) -> None:
        super().__init__()
        if out_chs < in_chs:
            raise ValueError(f"zero-padding shortcut cannot shrink channels: {in_chs} -> {out_chs}")
        self.pad = out_chs - in_chs
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride > 1:
            x = x[:, :, :: self.stride, :: self.stride]  # (B, C, ceil(H/s), ceil(W/s)), as the strided conv
        if self.pad:
            x = F.pad(x, (0, 0, 0, 0, 0, self.pad))  # (B, C + pad, H, W)
        return x


class CifarBasicBlock(nn.Module):
    """Two 3×3 conv-BN layers, ReLU after the first and after the addition (He 2015, Fig. 2).

    ``shortcut`` is ``"A"`` (zero-padded identity), ``"B"`` (1×1 projection + BN where the
    shape changes, identity elsewhere) or ``None`` (no shortcut: a plain network's block).
    """

    def __init__(
        self,
        in_chs: int,
        out_chs: int,
        stride: int = 1,
        *,
        shortcut: str | None = "A",
        norm_layer: Callable[[int], nn.Module] = nn.BatchNorm2d,
        act_layer: Callable[..., nn.Module] = nn.ReLU,
    ) -> None:
        super().__init__()
        self.conv1 = ConvNormAct(in_chs, out_chs, 3, stride, norm_layer=norm_layer, act_layer=act_layer)
        self.conv2 = ConvNormAct(out_chs, out_chs, 3, norm_layer=norm_layer, act_layer=None)
        self.act = act_layer()
        reshape = stride != 1 or in_chs != out_chs
        if shortcut is None:
            self.shortcut = None
        elif shortcut == "B" and reshape:
            self.shortcut = ConvNormAct(in_chs, out_chs, 1, stride, norm_layer=norm_layer, act_layer=None)
        elif shortcut in ("A", "B"):
            self.shortcut = ZeroPadShortcut(in_chs, out_chs, stride) if reshape else nn.Identity()
        else:
            raise ValueError(f"shortcut must be 'A', 'B' or None, got {shortcut!r}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv2(self.conv1(x))
        if self.shortcut is not None:
            out = out + self.shortcut(x)
        return self.act(out)


class CifarResNet(LineageModel):
    """The 6n+2-layer CIFAR-10 network of §4.2, residual (option A or B shortcuts) or plain."""

    def __init__(
        self,
        *,
        depth: int,
        num_classes: int = 10,
        in_chans: int = 3,
        residual: bool = True,
        shortcut: str = "A",
        widths: tuple[int, int, int] = STAGE_WIDTHS,
        norm_layer: Callable[[int], nn.Module] = nn.BatchNorm2d,
        act_layer: Callable[..., nn.Module] = nn.ReLU,
    ) -> None:
        if not isinstance(depth, int) or depth < 8 or (depth - 2) % 6:
            raise ValueError(f"depth must be 6n+2 with n >= 1 (20, 32, 44, 56, 110, ...), got {depth!r}")
        if shortcut not in ("A", "B"):
            raise ValueError(
                f"shortcut must be 'A' (zero-padded identity) or 'B' (projection), got {shortcut!r}"
            )
        super().__init__(
            in_chans=in_chans, num_classes=num_classes, input_size=(in_chans, 32, 32), min_size=1
        )
        n = (depth - 2) // 6
        self.depth, self.blocks_per_stage, self.residual = depth, n, residual
        self.shortcut_type = shortcut if residual else None
        self.stem = ConvNormAct(in_chans, widths[0], 3, norm_layer=norm_layer, act_layer=act_layer)
        prev, reduction = widths[0], 1
        for i, width in enumerate(widths):
            stride = 1 if i == 0 else 2  # 32×32 → 16×16 → 8×8
            blocks = [
                CifarBasicBlock(
                    prev if j == 0 else width,
                    width,
                    stride if j == 0 else 1,
                    shortcut=self.shortcut_type,
                    norm_layer=norm_layer,
                    act_layer=act_layer,
                )
                for j in range(n)
            ]
            self.add_module(f"layer{i + 1}", nn.Sequential(*blocks))
            prev, reduction = width, reduction * stride
            self.feature_info.append(dict(module=f"layer{i + 1}", num_chs=width, reduction=reduction))
        self.num_features = prev
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(prev, num_classes) if num_classes > 0 else nn.Identity()
        self._init_weights()

    def _init_weights(self) -> None:
        # §3.4: "We initialize the weights as in [13]" (He et al. 2015, std sqrt(2/n)), BN to identity.
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        return self.layer3(self.layer2(self.layer1(x)))  # (B, 64, H/4, W/4)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = self.pool(x).flatten(1)  # (B, 64)
        return x if pre_logits else self.fc(x)

    def get_classifier(self) -> nn.Module:
        return self.fc

    def reset_classifier(self, num_classes: int) -> None:
        self.num_classes = num_classes
        self.fc = nn.Linear(self.num_features, num_classes) if num_classes > 0 else nn.Identity()


# ---------------------------------------------------------------------------------- variants
# depth 6n+2 → CIFAR-10 test error (%) of the residual net, Table 6 (ResNet-110: best of 5 runs).
TABLE6_ERROR: dict[int, float] = {20: 8.75, 32: 7.51, 44: 7.17, 56: 6.97, 110: 6.43}

_PAPER = dict(
    family="resnet_cifar",
    year=2015,
    paper="Deep Residual Learning for Image Recognition",
    authors=("He", "Zhang", "Ren", "Sun"),
    venue="CVPR",
    venue_year=2016,
    arxiv="1512.03385",
    input_size=(3, 32, 32),
    num_classes=10,
)
_RECIPE = (
    "Paper recipe (§4.2): SGD momentum 0.9, weight decay 1e-4, batch 128, lr 0.1 divided by 10 at 32k "
    "and 48k iterations, stop at 64k; 4-pixel padding + random 32x32 crop + horizontal flip."
)


def _residual_card(depth: int, ref_params: int, count: str) -> dict:
    n = (depth - 2) // 6
    return dict(
        **_PAPER,
        key_idea=f"{depth} layers (n={n}) trained easily thanks to parameter-free identity shortcuts.",
        ref_params=ref_params,
        ref_params_source=f"hand count {count}; paper Table 6 rounds it",
        notes=f"CIFAR-10 test error {TABLE6_ERROR[depth]}% (Table 6). Option A shortcuts; shortcut='B' "
        f"adds 1x1 projections. {_RECIPE}",
        default_kwargs=dict(depth=depth),
    )


def _plain_card(depth: int, ref_params: int) -> dict:
    return dict(
        **_PAPER,
        key_idea=f"The {depth}-layer network without shortcuts: deeper plain nets train worse (degradation).",
        ref_params=ref_params,
        ref_params_source=f"hand count: as resnet{depth}, whose option-A shortcuts add no parameters",
        notes=f"No CIFAR-10 table figure; Fig. 6 (left) shows its training curve. {_RECIPE}",
        default_kwargs=dict(depth=depth, residual=False),
    )


# Hand counts: stem 464 (432 conv + 32 BN), fc 650, 4,672 per 16-filter block, 18,560 per 32-filter
# block (13,952 for the first), 73,984 per 64-filter block (55,552 for the first).
_C20, _C32, _C44, _C56, _C110 = 269_722, 464_154, 658_586, 853_018, 1_727_962
_COUNT = "464 + 4,672n + 13,952 + 18,560(n-1) + 55,552 + 73,984(n-1) + 650"


@register_model(**_residual_card(20, _C20, _COUNT))
def resnet20(*, num_classes: int = 10, in_chans: int = 3, shortcut: str = "A") -> CifarResNet:
    """Return ResNet-20 for CIFAR-10 (n = 3)."""
    return CifarResNet(depth=20, num_classes=num_classes, in_chans=in_chans, shortcut=shortcut)


@register_model(**_residual_card(32, _C32, _COUNT))
def resnet32(*, num_classes: int = 10, in_chans: int = 3, shortcut: str = "A") -> CifarResNet:
    """Return ResNet-32 for CIFAR-10 (n = 5)."""
    return CifarResNet(depth=32, num_classes=num_classes, in_chans=in_chans, shortcut=shortcut)


@register_model(**_residual_card(44, _C44, _COUNT))
def resnet44(*, num_classes: int = 10, in_chans: int = 3, shortcut: str = "A") -> CifarResNet:
    """Return ResNet-44 for CIFAR-10 (n = 7)."""
    return CifarResNet(depth=44, num_classes=num_classes, in_chans=in_chans, shortcut=shortcut)


@register_model(**_residual_card(56, _C56, _COUNT))
def resnet56(*, num_classes: int = 10, in_chans: int = 3, shortcut: str = "A") -> CifarResNet:
    """Return ResNet-56 for CIFAR-10 (n = 9)."""
    return CifarResNet(depth=56, num_classes=num_classes, in_chans=in_chans, shortcut=shortcut)


@register_model(**_residual_card(110, _C110, _COUNT))
def resnet110(*, num_classes: int = 10, in_chans: int = 3, shortcut: str = "A") -> CifarResNet:
    """Return ResNet-110 for CIFAR-10 (n = 18); the paper warms up at lr 0.01 for ~400 iterations."""
    return CifarResNet(depth=110, num_classes=num_classes, in_chans=in_chans, shortcut=shortcut)


@register_model(**_plain_card(20, _C20))
def plain20(*, num_classes: int = 10, in_chans: int = 3) -> CifarResNet:
    """Return the 20-layer plain CIFAR-10 network (ResNet-20 without shortcuts)."""
    return CifarResNet(depth=20, num_classes=num_classes, in_chans=in_chans, residual=False)


@register_model(**_plain_card(32, _C32))
def plain32(*, num_classes: int = 10, in_chans: int = 3) -> CifarResNet:
    """Return the 32-layer plain CIFAR-10 network (ResNet-32 without shortcuts)."""
    return CifarResNet(depth=32, num_classes=num_classes, in_chans=in_chans, residual=False)


@register_model(**_plain_card(44, _C44))
def plain44(*, num_classes: int = 10, in_chans: int = 3) -> CifarResNet:
    """Return the 44-layer plain CIFAR-10 network (ResNet-44 without shortcuts)."""
    return CifarResNet(depth=44, num_classes=num_classes, in_chans=in_chans, residual=False)


@register_model(**_plain_card(56, _C56))
def plain56(*, num_classes: int = 10, in_chans: int = 3) -> CifarResNet:
    """Return the 56-layer plain CIFAR-10 network (ResNet-56 without shortcuts)."""
    return CifarResNet(depth=56, num_classes=num_classes, in_chans=in_chans, residual=False)


@register_model(**_plain_card(110, _C110))
def plain110(*, num_classes: int = 10, in_chans: int = 3) -> CifarResNet:
    """Return the 110-layer plain CIFAR-10 network (ResNet-110 without shortcuts)."""
    return CifarResNet(depth=110, num_classes=num_classes, in_chans=in_chans, residual=False)
