"""Pre-activation ResNets — He, Zhang, Ren & Sun, "Identity Mappings in Deep Residual Networks",
ECCV 2016, arXiv:1603.05027; and Wide ResNets — Zagoruyko & Komodakis, "Wide Residual
Networks", BMVC 2016, arXiv:1605.07146.

He et al. move BN and ReLU in front of each convolution (BN-ReLU-conv, Fig. 1b) and leave
nothing after the addition, so the shortcut path is a clean identity from any unit to any
later one and the signal propagates directly forwards and backwards (Eqs. 4-5): a 1001-layer
network trains better than a 164-layer one. Two consequences fixed in the Appendix: the first
unit takes its activation right after the stand-alone conv1, *before* splitting into the two
paths; the last unit is followed by one extra BN-ReLU before pooling. Units that change shape
project the activated input with a 1×1 convolution (the "common BN, ReLU" of the authors'
resnet-1k-layers code).

Zagoruyko & Komodakis keep these pre-activation units but make them shallow and wide: WRN-d-k
has (d-4)/6 basic units per stage with 16k, 32k, 64k filters, and optional dropout between
the two convolutions of a unit (§2.4).

``PreActResNet`` builds all of them from a ``PreActConfig``: basic or bottleneck units, units
and widths per stage, an ImageNet stem (7×7/2 conv + 3×3/2 max-pool) or a CIFAR one (3×3 conv).
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn as nn

from ..registry import register_model
from ._base import LineageModel

__all__ = [
    "PreActBasic",
    "PreActBottleneck",
    "PreActConfig",
    "PreActResNet",
    "preact_cifar_config",
    "wrn_config",
]


def _conv(in_chs: int, out_chs: int, kernel_size: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_chs, out_chs, kernel_size, stride, padding=kernel_size // 2, bias=False)


class PreActBasic(nn.Module):
    """Two 3×3 convolutions, each preceded by BN-ReLU; nothing after the addition (He 2016, Fig. 1b).

    The shortcut is an identity, or a 1×1 projection where the shape changes. ``shared_preact``
    feeds the shortcut the activated input (always so for a projection); ``drop_rate`` puts
    dropout between the two convolutions (WRN §2.4).
    """

    def __init__(
        self,
        in_chs: int,
        out_chs: int,
        stride: int = 1,
        *,
        shared_preact: bool = False,
        drop_rate: float = 0.0,
        norm_layer: Callable[[int], nn.Module] = nn.BatchNorm2d,
        act_layer: Callable[..., nn.Module] = nn.ReLU,
    ) -> None:
        super().__init__()
        self.norm1, self.act1 = norm_layer(in_chs), act_layer()
        self.conv1 = _conv(in_chs, out_chs, 3, stride)
        self.norm2, self.act2 = norm_layer(out_chs), act_layer()
        self.drop = nn.Dropout(drop_rate) if drop_rate > 0 else nn.Identity()
        self.conv2 = _conv(out_chs, out_chs, 3)
        project = stride != 1 or in_chs != out_chs
        self.downsample = _conv(in_chs, out_chs, 1, stride) if project else None
        self.shared_preact = shared_preact or project

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pre = self.act1(self.norm1(x))
        shortcut = pre if self.shared_preact else x
        if self.downsample is not None:
            shortcut = self.downsample(shortcut)
        out = self.conv1(pre)
        out = self.conv2(self.drop(self.act2(self.norm2(out))))
        return out + shortcut


class PreActBottleneck(nn.Module):
    """1×1 reduce, 3×3, 1×1 expand (×4), each preceded by BN-ReLU (He 2016, Fig. 1b with a bottleneck).

    ``stride_in_1x1`` puts the stride on the first 1×1 convolution, as the authors' CIFAR code
    (resnet-1k-layers) does; otherwise it is on the 3×3, as in fb.resnet.torch's ImageNet
    pre-activation ResNet. The parameters are the same either way.
    """

    def __init__(
        self,
        in_chs: int,
        out_chs: int,
        stride: int = 1,
        *,
        shared_preact: bool = False,
        drop_rate: float = 0.0,
        stride_in_1x1: bool = False,
        norm_layer: Callable[[int], nn.Module] = nn.BatchNorm2d,
        act_layer: Callable[..., nn.Module] = nn.ReLU,
    ) -> None:
        super().__init__()
        mid = out_chs // 4
        s1, s3 = (stride, 1) if stride_in_1x1 else (1, stride)
        self.norm1, self.act1 = norm_layer(in_chs), act_layer()
        self.conv1 = _conv(in_chs, mid, 1, s1)
        self.norm2, self.act2 = norm_layer(mid), act_layer()
        self.conv2 = _conv(mid, mid, 3, s3)
        self.norm3, self.act3 = norm_layer(mid), act_layer()
        self.drop = nn.Dropout(drop_rate) if drop_rate > 0 else nn.Identity()
        self.conv3 = _conv(mid, out_chs, 1)
        project = stride != 1 or in_chs != out_chs
        self.downsample = _conv(in_chs, out_chs, 1, stride) if project else None
        self.shared_preact = shared_preact or project

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pre = self.act1(self.norm1(x))
        shortcut = pre if self.shared_preact else x
        if self.downsample is not None:
            shortcut = self.downsample(shortcut)
        out = self.conv1(pre)
        out = self.conv2(self.act2(self.norm2(out)))
        out = self.conv3(self.drop(self.act3(self.norm3(out))))
        return out + shortcut


_BLOCKS = {"basic": PreActBasic, "bottleneck": PreActBottleneck}


@dataclass(frozen=True)
class PreActConfig:
    """One pre-activation network: its units, their widths and its stem."""

    block: str  # "basic" (two 3×3) or "bottleneck" (1×1, 3×3, 1×1 with 4× expansion)
    depths: tuple[int, ...]  # units per stage
    widths: tuple[int, ...]  # output channels per stage (stride 1 for the first stage, 2 after)
    stem: str  # "imagenet": 7×7/2 conv + 3×3/2 max-pool, 224×224, 1000 classes; "cifar": 3×3 conv, 32×32, 10
    stem_width: int  # filters of the stem convolution
    stride_in_1x1: bool = False  # bottleneck only: stride on the first 1×1 (resnet-1k-layers) or the 3×3


def preact_cifar_config(depth: int) -> PreActConfig:
    """Return the CIFAR bottleneck network of depth 9n+2 (164, 1001 in He 2016)."""
    if not isinstance(depth, int) or depth < 11 or (depth - 2) % 9:
        raise ValueError(f"a pre-activation CIFAR ResNet has depth 9n+2 (164, 1001, ...), got {depth!r}")
    n = (depth - 2) // 9
    return PreActConfig("bottleneck", (n,) * 3, (64, 128, 256), "cifar", 16, stride_in_1x1=True)


def wrn_config(depth: int, widen: int) -> PreActConfig:
    """Return WRN-depth-widen: (depth-4)/6 basic units per stage with 16k, 32k, 64k filters (WRN Table 1)."""
    if not isinstance(depth, int) or depth < 10 or (depth - 4) % 6:
        raise ValueError(f"a wide ResNet has depth 6n+4 (16, 22, 28, 40, ...), got {depth!r}")
    if not isinstance(widen, int) or widen < 1:
        raise ValueError(f"widen factor must be a positive integer, got {widen!r}")
    n = (depth - 4) // 6
    return PreActConfig("basic", (n,) * 3, (16 * widen, 32 * widen, 64 * widen), "cifar", 16)


class PreActResNet(LineageModel):
    """A pre-activation residual network (ImageNet or CIFAR stem, basic or bottleneck units)."""

    def __init__(
        self,
        cfg: PreActConfig,
        *,
        num_classes: int | None = None,
        in_chans: int = 3,
        drop_rate: float = 0.0,
        norm_layer: Callable[[int], nn.Module] = nn.BatchNorm2d,
        act_layer: Callable[..., nn.Module] = nn.ReLU,
    ) -> None:
        if cfg.block not in _BLOCKS:
            raise ValueError(f"block must be one of {sorted(_BLOCKS)}, got {cfg.block!r}")
        if cfg.stem not in ("imagenet", "cifar"):
            raise ValueError(f"stem must be 'imagenet' or 'cifar', got {cfg.stem!r}")
        if len(cfg.depths) != len(cfg.widths):
            raise ValueError(f"depths {cfg.depths} and widths {cfg.widths} must have one entry per stage")
        imagenet = cfg.stem == "imagenet"
        size, default_classes = (224, 1000) if imagenet else (32, 10)
        num_classes = default_classes if num_classes is None else num_classes
        super().__init__(
            in_chans=in_chans, num_classes=num_classes, input_size=(in_chans, size, size), min_size=1
        )
        self.cfg = cfg
        stem: OrderedDict[str, nn.Module] = OrderedDict()
        if imagenet:
            stem["conv"] = nn.Conv2d(in_chans, cfg.stem_width, 7, 2, padding=3, bias=False)
            stem["pool"] = nn.MaxPool2d(3, 2, padding=1)
        else:
            stem["conv"] = _conv(in_chans, cfg.stem_width, 3)
        self.stem = nn.Sequential(stem)  # no BN-ReLU here: the first unit's own pre-activation follows

        block_fn = _BLOCKS[cfg.block]
        block_kwargs = dict(stride_in_1x1=cfg.stride_in_1x1) if cfg.block == "bottleneck" else {}
        prev, reduction = cfg.stem_width, 4 if imagenet else 1
        stages = []
        for i, (depth, width) in enumerate(zip(cfg.depths, cfg.widths)):
            stride = 1 if i == 0 else 2
            units = [
                block_fn(
                    prev if j == 0 else width,
                    width,
                    stride if j == 0 else 1,
                    # Appendix: the first unit activates right after conv1, before splitting into two paths
                    shared_preact=(i == 0 and j == 0),
                    drop_rate=drop_rate,
                    **block_kwargs,
                    norm_layer=norm_layer,
                    act_layer=act_layer,
                )
                for j in range(depth)
            ]
            stages.append(nn.Sequential(*units))
            prev, reduction = width, reduction * stride
            self.feature_info.append(dict(module=f"stages.{i}", num_chs=width, reduction=reduction))
        self.stages = nn.Sequential(*stages)
        # Appendix: an extra activation after the last unit's addition
        self.norm, self.act = norm_layer(prev), act_layer()
        self.num_features = prev
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(prev, num_classes) if num_classes > 0 else nn.Identity()
        self._init_weights()

    def _init_weights(self) -> None:
        # As the authors' code: conv weights N(0, 2/(k·k·C_out)), BN to identity, fc bias zero.
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.zeros_(m.bias)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stages(self.stem(x))
        return self.act(self.norm(x))  # (B, C, H/r, W/r)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = self.pool(x).flatten(1)  # (B, C)
        return x if pre_logits else self.fc(x)

    def get_classifier(self) -> nn.Module:
        return self.fc

    def reset_classifier(self, num_classes: int) -> None:
        self.num_classes = num_classes
        self.fc = nn.Linear(self.num_features, num_classes) if num_classes > 0 else nn.Identity()

    def remap_timm(self, state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Return a timm ``resnetv2_*`` state_dict renamed to ours (same layout, other names)."""
        out = {}
        for k, v in state_dict.items():
            k = re.sub(r"^stages\.(\d+)\.blocks\.", r"stages.\1.", k)
            k = k.replace(".downsample.conv.", ".downsample.")
            if k == "head.fc.weight":
                v = v.flatten(1)  # timm's classifier is a 1×1 conv: (classes, C, 1, 1) → (classes, C)
            out[k.replace("head.fc.", "fc.")] = v
        return out


# ---------------------------------------------------------------------------------- variants
CONFIGS: dict[str, PreActConfig] = {
    # block, units per stage, widths, stem, stem width
    "preact_resnet18": PreActConfig("basic", (2, 2, 2, 2), (64, 128, 256, 512), "imagenet", 64),
    "preact_resnet34": PreActConfig("basic", (3, 4, 6, 3), (64, 128, 256, 512), "imagenet", 64),
    "preact_resnet50": PreActConfig("bottleneck", (3, 4, 6, 3), (256, 512, 1024, 2048), "imagenet", 64),
    "preact_resnet164": preact_cifar_config(164),  # n = 18
    "preact_resnet1001": preact_cifar_config(1001),  # n = 111
    "wrn_16_8": wrn_config(16, 8),
    "wrn_28_10": wrn_config(28, 10),
}

_PREACT = dict(
    family="preact_resnet",
    year=2016,
    paper="Identity Mappings in Deep Residual Networks",
    authors=("He", "Zhang", "Ren", "Sun"),
    venue="ECCV",
    venue_year=2016,
    arxiv="1603.05027",
)
_IMAGENET = dict(**_PREACT, input_size=(3, 224, 224), num_classes=1000)
_CIFAR = dict(**_PREACT, input_size=(3, 32, 32), num_classes=10)
_WRN = dict(
    family="preact_resnet",
    year=2016,
    paper="Wide Residual Networks",
    authors=("Zagoruyko", "Komodakis"),
    venue="BMVC",
    venue_year=2016,
    arxiv="1605.07146",
    input_size=(3, 32, 32),
    num_classes=10,
)
_IMAGENET_NOTE = (
    "The paper trains ResNet-152/200 on ImageNet; 18/34/50 use its units on the standard ResNet layout "
    "(fb.resnet.torch preresnet.lua). timm's resnetv2 has the same parameters; its first unit's identity "
    "shortcut skips the pre-activation, ours follows the paper's Appendix."
)


def _build(name: str, **kwargs) -> PreActResNet:
    return PreActResNet(CONFIGS[name], **kwargs)


@register_model(
    **_IMAGENET,
    key_idea="ResNet-18 with BN-ReLU before each convolution and a clean identity path.",
    ref_params=11_687_720,
    ref_params_source="hand count (= timm resnetv2_18): tv resnet18 11,689,512 - 1,792 projection BN "
    "- 896 narrower first-unit BN - 128 stem BN + 1,024 final BN",
    notes=_IMAGENET_NOTE,
    default_kwargs=dict(block="basic", depths=(2, 2, 2, 2)),
)
def preact_resnet18(*, num_classes: int = 1000, in_chans: int = 3) -> PreActResNet:
    """Return the pre-activation ResNet-18 (ImageNet)."""
    return _build("preact_resnet18", num_classes=num_classes, in_chans=in_chans)


@register_model(
    **_IMAGENET,
    key_idea="ResNet-34 with pre-activation units: identity paths carry signal both ways unchanged.",
    ref_params=21_795_880,
    ref_params_source="hand count (= timm resnetv2_34): tv resnet34 21,797,672 - 1,792 projection BN "
    "- 896 narrower first-unit BN - 128 stem BN + 1,024 final BN",
    notes=_IMAGENET_NOTE,
    default_kwargs=dict(block="basic", depths=(3, 4, 6, 3)),
)
def preact_resnet34(*, num_classes: int = 1000, in_chans: int = 3) -> PreActResNet:
    """Return the pre-activation ResNet-34 (ImageNet)."""
    return _build("preact_resnet34", num_classes=num_classes, in_chans=in_chans)


@register_model(
    **_IMAGENET,
    key_idea="ResNet-50 with pre-activation bottleneck units (BN-ReLU-conv, no ReLU after the addition).",
    ref_params=25_549_352,
    ref_params_source="timm resnetv2_50 (weights=None) parameter count; hand count in tests",
    timm="resnetv2_50",
    notes=_IMAGENET_NOTE + " Stride on the 3x3 convolution.",
    default_kwargs=dict(block="bottleneck", depths=(3, 4, 6, 3)),
)
def preact_resnet50(*, num_classes: int = 1000, in_chans: int = 3) -> PreActResNet:
    """Return the pre-activation ResNet-50 (ImageNet); state_dict loads timm's resnetv2_50."""
    return _build("preact_resnet50", num_classes=num_classes, in_chans=in_chans)


@register_model(
    **_CIFAR,
    key_idea="164-layer bottleneck network: pre-activation lowers CIFAR-10 error from 5.93% to 5.46%.",
    ref_params=1_703_258,
    ref_params_source="hand count (tests); paper Table 5 rounds it to 1.7M",
    notes="CIFAR-10 test error 5.46%, CIFAR-100 24.33% (paper). 9n+2 layers, n=18; stride on the first 1x1 "
    "as in the authors' resnet-1k-layers code.",
    default_kwargs=dict(depth=164),
)
def preact_resnet164(*, num_classes: int = 10, in_chans: int = 3) -> PreActResNet:
    """Return the pre-activation ResNet-164 for CIFAR (n = 18 bottleneck units per stage)."""
    return _build("preact_resnet164", num_classes=num_classes, in_chans=in_chans)


@register_model(
    **_CIFAR,
    key_idea="1001 layers train and beat 164: the identity path makes depth an asset again.",
    ref_params=10_327_706,
    ref_params_source="hand count (tests). Paper Table 5's 10.2M matches the conv and fc weights alone "
    "(10,178,490); the 149,216 BN parameters bring the total to 10.3M",
    notes="CIFAR-10 test error 4.92% (4.62% with mini-batch 64), CIFAR-100 22.71% (paper). 9n+2 layers, "
    "n=111; stride on the first 1x1 as in resnet-1k-layers.",
    default_kwargs=dict(depth=1001),
)
def preact_resnet1001(*, num_classes: int = 10, in_chans: int = 3) -> PreActResNet:
    """Return the pre-activation ResNet-1001 for CIFAR (n = 111 bottleneck units per stage)."""
    return _build("preact_resnet1001", num_classes=num_classes, in_chans=in_chans)


@register_model(
    **_WRN,
    key_idea="16 layers, 8x wider: a shallow wide pre-activation network matches thin 1000-layer ones.",
    ref_params=10_961_370,
    ref_params_source="hand count (tests); WRN paper Table 4 rounds it to 11.0M",
    notes="CIFAR-10 test error 4.81%, CIFAR-100 22.07% (WRN Table 4). drop_rate sets dropout between the "
    "two convolutions of each unit (§2.4; the paper uses 0.3).",
    default_kwargs=dict(depth=16, widen=8),
)
def wrn_16_8(*, num_classes: int = 10, in_chans: int = 3, drop_rate: float = 0.0) -> PreActResNet:
    """Return WRN-16-8 for CIFAR (2 basic units per stage, 128/256/512 filters)."""
    return _build("wrn_16_8", num_classes=num_classes, in_chans=in_chans, drop_rate=drop_rate)


@register_model(
    **_WRN,
    key_idea="28 layers, 10x wider: width instead of depth, 36.5M parameters, fast on GPUs.",
    ref_params=36_479_194,
    ref_params_source="hand count (tests); WRN paper Table 4 rounds it to 36.5M",
    notes="CIFAR-10 test error 4.17%, CIFAR-100 20.50% (WRN Table 4); 3.89% / 18.85% with dropout 0.3. "
    "drop_rate sets dropout between the two convolutions of each unit (§2.4).",
    default_kwargs=dict(depth=28, widen=10),
)
def wrn_28_10(*, num_classes: int = 10, in_chans: int = 3, drop_rate: float = 0.0) -> PreActResNet:
    """Return WRN-28-10 for CIFAR (4 basic units per stage, 160/320/640 filters)."""
    return _build("wrn_28_10", num_classes=num_classes, in_chans=in_chans, drop_rate=drop_rate)
