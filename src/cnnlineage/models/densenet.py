"""DenseNet — Huang, Liu, van der Maaten & Weinberger, "Densely Connected Convolutional
Networks", CVPR 2017, arXiv:1608.06993.

Inside a dense block every layer receives the concatenation of the feature maps of all
layers before it, ``x_l = H_l([x_0, x_1, ..., x_{l-1}])``, and adds only ``k`` (the growth
rate) new maps: a block of ``L`` layers turns ``c`` channels into ``c + L·k``. Reusing
features instead of re-learning them makes the networks narrow and parameter-efficient.

All models here are DenseNet-BC (§3): each ``H_l`` is a bottleneck BN-ReLU-Conv1×1(4k)-
BN-ReLU-Conv3×3(k), and the transition layers between blocks (BN-ReLU-Conv1×1-AvgPool2×2)
compress the channels by θ = 0.5. ``densenet121/169/201`` are the ImageNet networks of
Table 1 (k = 32, a 7×7 stride-2 stem and max-pool), with torchvision's module names so
its state_dicts load as they are. ``densenet_bc_100_12`` is the CIFAR network of §4
(L = 100, k = 12: three blocks of 16 bottleneck layers after a 3×3 convolution to 2k maps).

``memory_efficient=True`` recomputes the concatenation and bottleneck during the backward
pass instead of storing them (Pleiss et al. 2017, arXiv:1707.06990), trading compute for
memory that otherwise grows quadratically with depth.
"""

from __future__ import annotations

import contextlib
import math
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.utils.checkpoint as cp

from ..registry import register_model
from ._base import LineageModel

__all__ = ["DenseLayer", "DenseBlock", "Transition", "DenseNet", "DenseNetConfig"]


@contextlib.contextmanager
def _restoring_buffers(module: nn.Module) -> Iterator[None]:
    # The checkpoint recomputes the bottleneck in the backward pass; without this, a
    # BatchNorm would update its running statistics a second time for the same batch.
    saved = [b.clone() for b in module.buffers()]
    try:
        yield
    finally:
        with torch.no_grad():
            for b, s in zip(module.buffers(), saved):
                b.copy_(s)


class DenseLayer(nn.Module):
    """Return the k new maps of one bottleneck layer H_l: BN-ReLU-Conv1×1(bn_size·k)-BN-ReLU-Conv3×3(k).

    Takes the list of all earlier feature maps of the block and concatenates them itself,
    so that with ``memory_efficient`` the concatenation is recomputed in the backward pass
    rather than stored. ``act_layer`` must accept ``inplace``.
    """

    def __init__(
        self,
        in_chs: int,
        growth_rate: int,
        bn_size: int = 4,
        *,
        drop_rate: float = 0.0,
        memory_efficient: bool = False,
        norm_layer: Callable[[int], nn.Module] = nn.BatchNorm2d,
        act_layer: Callable[..., nn.Module] = nn.ReLU,
    ) -> None:
        super().__init__()
        mid_chs = (
            bn_size * growth_rate
        )  # "each 1×1 convolution produce 4k feature-maps" (§3, Bottleneck layers)
        self.norm1 = norm_layer(in_chs)
        self.relu1 = act_layer(inplace=True)
        self.conv1 = nn.Conv2d(in_chs, mid_chs, kernel_size=1, bias=False)
        self.norm2 = norm_layer(mid_chs)
        self.relu2 = act_layer(inplace=True)
        self.conv2 = nn.Conv2d(mid_chs, growth_rate, kernel_size=3, padding=1, bias=False)
        self.drop_rate = float(drop_rate)
        self.memory_efficient = memory_efficient

    def bottleneck(self, *features: torch.Tensor) -> torch.Tensor:
        """Return Conv1×1(ReLU(BN(concat(features)))), the part recomputed when memory_efficient."""
        return self.conv1(self.relu1(self.norm1(torch.cat(features, 1))))

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        if self.memory_efficient and torch.is_grad_enabled() and any(f.requires_grad for f in features):
            out = cp.checkpoint(
                self.bottleneck,
                *features,
                use_reentrant=False,
                context_fn=lambda: (contextlib.nullcontext(), _restoring_buffers(self.norm1)),
            )
        else:
            out = self.bottleneck(*features)
        out = self.conv2(self.relu2(self.norm2(out)))
        if self.drop_rate > 0:
            out = F.dropout(out, p=self.drop_rate, training=self.training)
        return out


class DenseBlock(nn.ModuleDict):
    """Return the block input concatenated with every layer's new maps: c_in + num_layers·k channels."""

    def __init__(
        self,
        num_layers: int,
        in_chs: int,
        growth_rate: int,
        bn_size: int = 4,
        *,
        drop_rate: float = 0.0,
        memory_efficient: bool = False,
        norm_layer: Callable[[int], nn.Module] = nn.BatchNorm2d,
        act_layer: Callable[..., nn.Module] = nn.ReLU,
    ) -> None:
        super().__init__()
        for i in range(num_layers):
            layer = DenseLayer(
                in_chs + i * growth_rate,
                growth_rate,
                bn_size,
                drop_rate=drop_rate,
                memory_efficient=memory_efficient,
                norm_layer=norm_layer,
                act_layer=act_layer,
            )
            self.add_module(f"denselayer{i + 1}", layer)
        self.out_chs = in_chs + num_layers * growth_rate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = [x]
        for layer in self.values():
            features.append(layer(features))
        return torch.cat(features, 1)  # (B, c_in + L·k, H, W)


class Transition(nn.Sequential):
    """BN-ReLU-Conv1×1-AvgPool2×2 between dense blocks: halves the resolution, maps in_chs to out_chs."""

    def __init__(
        self,
        in_chs: int,
        out_chs: int,
        *,
        norm_layer: Callable[[int], nn.Module] = nn.BatchNorm2d,
        act_layer: Callable[..., nn.Module] = nn.ReLU,
    ) -> None:
        super().__init__()
        self.norm = norm_layer(in_chs)
        self.relu = act_layer(inplace=True)
        self.conv = nn.Conv2d(in_chs, out_chs, kernel_size=1, bias=False)
        self.pool = nn.AvgPool2d(kernel_size=2, stride=2)


class DenseNet(LineageModel):
    """DenseNet-BC: a stem, dense blocks separated by compressing transitions, BN-ReLU, global pool, linear.

    ``stem="imagenet"`` is Conv7×7/2-BN-ReLU-MaxPool3×3/2 (Table 1); ``stem="cifar"`` a
    single Conv3×3 to 2k maps before the first block (§3, Implementation Details).
    """

    def __init__(
        self,
        *,
        growth_rate: int = 32,
        block_config: tuple[int, ...] = (6, 12, 24, 16),
        num_init_features: int = 64,
        bn_size: int = 4,
        compression: float = 0.5,
        stem: str = "imagenet",
        drop_rate: float = 0.0,
        memory_efficient: bool = False,
        num_classes: int = 1000,
        in_chans: int = 3,
        norm_layer: Callable[[int], nn.Module] = nn.BatchNorm2d,
        act_layer: Callable[..., nn.Module] = nn.ReLU,
    ) -> None:
        if stem not in ("imagenet", "cifar"):
            raise ValueError(f"stem must be 'imagenet' or 'cifar', got {stem!r}")
        if not 0.0 < compression <= 1.0:
            raise ValueError(f"compression θ must be in (0, 1], got {compression}")
        n_trans = len(block_config) - 1
        # Each transition's 2×2 average pool floors the size, so the last block needs the stem to
        # leave at least 2**n_trans rows: the ImageNet stem gives ceil(H / 4), hence torchvision's 29.
        if stem == "imagenet":
            size, min_size, stem_red = 224, 4 * 2**n_trans - 3, 4
        else:
            size, min_size, stem_red = 32, 2**n_trans, 1
        super().__init__(
            in_chans=in_chans, num_classes=num_classes, input_size=(in_chans, size, size), min_size=min_size
        )
        self.growth_rate = growth_rate
        self.block_config = tuple(block_config)

        if stem == "imagenet":
            layers = [
                (
                    "conv0",
                    nn.Conv2d(in_chans, num_init_features, kernel_size=7, stride=2, padding=3, bias=False),
                ),
                ("norm0", norm_layer(num_init_features)),
                ("relu0", act_layer(inplace=True)),
                ("pool0", nn.MaxPool2d(kernel_size=3, stride=2, padding=1)),
            ]
        else:
            layers = [("conv0", nn.Conv2d(in_chans, num_init_features, kernel_size=3, padding=1, bias=False))]
        self.features = nn.Sequential(OrderedDict(layers))

        chs, red = num_init_features, stem_red
        for i, num_layers in enumerate(block_config):
            block = DenseBlock(
                num_layers,
                chs,
                growth_rate,
                bn_size,
                drop_rate=drop_rate,
                memory_efficient=memory_efficient,
                norm_layer=norm_layer,
                act_layer=act_layer,
            )
            self.features.add_module(f"denseblock{i + 1}", block)
            chs = block.out_chs
            if i < n_trans:
                self.feature_info.append(
                    dict(module=f"features.denseblock{i + 1}", num_chs=chs, reduction=red)
                )
                out_chs = math.floor(compression * chs)  # ⌊θm⌋ maps out of a block's m (§3, Compression)
                self.features.add_module(
                    f"transition{i + 1}", Transition(chs, out_chs, norm_layer=norm_layer, act_layer=act_layer)
                )
                chs, red = out_chs, red * 2
        self.features.add_module("norm5", norm_layer(chs))
        self.features.add_module("relu5", act_layer(inplace=True))  # no parameters: keys stay torchvision's
        self.feature_info.append(dict(module="features.relu5", num_chs=chs, reduction=red))
        self.num_features = chs

        self.global_pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(chs, num_classes) if num_classes > 0 else nn.Identity()
        self._init_weights()

    def _init_weights(self) -> None:
        # He initialisation for the convolutions, as torchvision does.
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.zeros_(m.bias)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = torch.flatten(self.global_pool(x), 1)  # (B, C)
        return x if pre_logits else self.classifier(x)

    def get_classifier(self) -> nn.Module:
        return self.classifier

    def reset_classifier(self, num_classes: int) -> None:
        self.num_classes = num_classes
        self.classifier = nn.Linear(self.num_features, num_classes) if num_classes > 0 else nn.Identity()


@dataclass(frozen=True)
class DenseNetConfig:
    """One DenseNet-BC variant: growth rate k, layers per dense block, stem width and stem kind."""

    growth_rate: int  # k, the maps each layer adds
    block_config: tuple[int, ...]  # bottleneck layers per dense block
    num_init_features: int  # stem width: 2k (§3 and Table 1)
    stem: str  # "imagenet" (7×7/2 + max-pool) or "cifar" (3×3)


# Table 1 (ImageNet, k = 32) and §4.2 (CIFAR DenseNet-BC, L = 100, k = 12: (100 - 4) / 6 = 16 layers
# per block: 3 blocks of 2-conv bottleneck layers, the first conv, 2 transitions and the classifier).
VARIANTS: dict[str, DenseNetConfig] = {
    "densenet121": DenseNetConfig(32, (6, 12, 24, 16), 64, "imagenet"),
    "densenet169": DenseNetConfig(32, (6, 12, 32, 32), 64, "imagenet"),
    "densenet201": DenseNetConfig(32, (6, 12, 48, 32), 64, "imagenet"),
    "densenet_bc_100_12": DenseNetConfig(12, (16, 16, 16), 24, "cifar"),
}


def _densenet(variant: str, **kwargs) -> DenseNet:
    cfg = VARIANTS[variant]
    return DenseNet(
        growth_rate=cfg.growth_rate,
        block_config=cfg.block_config,
        num_init_features=cfg.num_init_features,
        stem=cfg.stem,
        **kwargs,
    )


_PAPER = dict(
    family="densenet",
    year=2016,
    paper="Densely Connected Convolutional Networks",
    authors=("Huang", "Liu", "van der Maaten", "Weinberger"),
    venue="CVPR",
    venue_year=2017,
    arxiv="1608.06993",
)
_IMAGENET = dict(
    **_PAPER,
    key_idea="Each layer takes the concatenated maps of all earlier layers and adds k new ones.",
    input_size=(3, 224, 224),
    ref_top1_kind="recipe",
    ref_top1_source="torchvision IMAGENET1K_V1 weights metadata (acc@1)",
    notes="DenseNet-BC, k=32, bottleneck 1x1 to 4k, compression 0.5. memory_efficient=True recomputes the "
    "bottlenecks in the backward pass (same outputs, gradients and BatchNorm statistics, less memory).",
)


@register_model(
    **_IMAGENET,
    ref_params=7_978_856,
    ref_params_source="torchvision DenseNet121_Weights meta num_params",
    ref_top1=74.434,
    torchvision="densenet121",
)
def densenet121(*, num_classes: int = 1000, in_chans: int = 3, memory_efficient: bool = False) -> DenseNet:
    """Return DenseNet-121 (blocks of 6-12-24-16 layers, k = 32)."""
    return _densenet(
        "densenet121", num_classes=num_classes, in_chans=in_chans, memory_efficient=memory_efficient
    )


@register_model(
    **_IMAGENET,
    ref_params=14_149_480,
    ref_params_source="torchvision DenseNet169_Weights meta num_params",
    ref_top1=75.6,
    torchvision="densenet169",
)
def densenet169(*, num_classes: int = 1000, in_chans: int = 3, memory_efficient: bool = False) -> DenseNet:
    """Return DenseNet-169 (blocks of 6-12-32-32 layers, k = 32)."""
    return _densenet(
        "densenet169", num_classes=num_classes, in_chans=in_chans, memory_efficient=memory_efficient
    )


@register_model(
    **_IMAGENET,
    ref_params=20_013_928,
    ref_params_source="torchvision DenseNet201_Weights meta num_params",
    ref_top1=76.896,
    torchvision="densenet201",
)
def densenet201(*, num_classes: int = 1000, in_chans: int = 3, memory_efficient: bool = False) -> DenseNet:
    """Return DenseNet-201 (blocks of 6-12-48-32 layers, k = 32)."""
    return _densenet(
        "densenet201", num_classes=num_classes, in_chans=in_chans, memory_efficient=memory_efficient
    )


@register_model(
    **_PAPER,
    key_idea="DenseNet-BC for CIFAR: 3 dense blocks of 16 bottleneck layers, k=12, 0.8M parameters.",
    input_size=(3, 32, 32),
    num_classes=10,
    ref_params=769_162,
    ref_params_source="hand count (tests/models/test_densenet.py); the paper's Table 2 gives 0.8M",
    notes="CIFAR-10 by default (num_classes=100 for CIFAR-100). The paper reports 4.51% error on C10+ "
    "(Table 2). drop_rate=0.2 is the paper's setting for training without data augmentation.",
)
def densenet_bc_100_12(
    *, num_classes: int = 10, in_chans: int = 3, drop_rate: float = 0.0, memory_efficient: bool = False
) -> DenseNet:
    """Return DenseNet-BC (L = 100, k = 12) for 32×32 inputs."""
    return _densenet(
        "densenet_bc_100_12",
        num_classes=num_classes,
        in_chans=in_chans,
        drop_rate=drop_rate,
        memory_efficient=memory_efficient,
    )
