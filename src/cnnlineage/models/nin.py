"""Network in Network — Lin, Chen & Yan, ICLR 2014, arXiv:1312.4400.

Two ideas. The *mlpconv* layer replaces a linear filter by a small multilayer perceptron
slid over the input: a convolution followed by 1×1 convolutions ("cascaded cross channel
parametric pooling"), each with ReLU (§3.1). And *global average pooling* replaces the
fully connected classifier: the last mlpconv produces one feature map per class, and the
class score is its spatial mean (§3.2) — no parameters to overfit, and maps that read as
class confidence maps.

``nin`` is the paper's CIFAR-10 network as the authors released it (Caffe model zoo,
``cifar10_nin``): three mlpconv blocks 192-160-96 (5×5) / 192-192-192 (5×5) /
192-192-10 (3×3), 3×3 stride-2 max-pool then average-pool, dropout 0.5 after the first two
blocks, 3×32×32 input. Pools round up as Caffe does (32 → 16 → 8). The released model
keeps a ReLU on the class maps before the average; so does ours. The paper's four-block
ImageNet network is not built here.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import torch
import torch.nn as nn

from ..registry import register_model
from ._base import LineageModel

__all__ = ["MlpConv", "NiN", "NIN_CIFAR10"]


_RELU = functools.partial(nn.ReLU, inplace=True)


class MlpConv(nn.Sequential):
    """A k×k convolution followed by 1×1 convolutions, each with ``act_layer``: the paper's mlpconv (§3.1).

    Keys ``0`` (the k×k conv), ``2``, ``4``, ... (the 1×1 convs); ``widths[0]`` is the
    k×k conv's width and the rest the 1×1 layers'.
    """

    def __init__(
        self,
        in_chs: int,
        widths: tuple[int, ...],
        kernel_size: int,
        *,
        act_layer: Callable[..., nn.Module] = _RELU,
    ) -> None:
        layers: list[nn.Module] = []
        for i, width in enumerate(widths):
            k = kernel_size if i == 0 else 1
            layers += [nn.Conv2d(in_chs, width, k, padding=k // 2), act_layer()]
            in_chs = width
        super().__init__(*layers)
        self.out_channels = in_chs


# The authors' cifar10_nin, one row per mlpconv block: kernel, widths, pooling after it.
# The last row's final 1×1 layer is the classifier (num_classes wide), added by the model.
#         k, widths,            pool
NIN_CIFAR10 = (
    (5, (192, 160, 96), "max"),
    (5, (192, 192, 192), "avg"),
    (3, (192, 192), None),
)  # fmt: skip


class NiN(LineageModel):
    """Stacked mlpconv blocks ending in one map per class, then global average pooling.

    ``forward_features`` returns the 192-channel maps before the class layer;
    ``class_maps`` the per-class confidence maps (B, num_classes, H, W) whose spatial mean
    are the logits. ``classifier`` (the last 1×1 conv of the third mlpconv) is what
    ``reset_classifier`` replaces.
    """

    def __init__(
        self,
        cfg: tuple[tuple[int, tuple[int, ...], str | None], ...] = NIN_CIFAR10,
        *,
        num_classes: int = 10,
        in_chans: int = 3,
        img_size: int = 32,
        dropout: float = 0.5,
        act_layer: Callable[..., nn.Module] = _RELU,
    ) -> None:
        super().__init__(
            in_chans=in_chans, num_classes=num_classes, input_size=(in_chans, img_size, img_size), min_size=4
        )
        self.act_layer = act_layer
        blocks: list[nn.Module] = []
        self.feature_info = []
        if cfg[-1][2] is not None:
            raise ValueError(
                f"the last mlpconv block feeds the class layer directly; got pool={cfg[-1][2]!r}"
            )
        chs, reduction = in_chans, 1
        for k, widths, pool in cfg:
            block = MlpConv(chs, widths, k, act_layer=act_layer)
            blocks.append(block)
            chs = block.out_channels
            self.feature_info.append(
                dict(module=f"blocks.{len(blocks) - 1}", num_chs=chs, reduction=reduction)
            )
            if pool is not None:
                # 3×3 stride 2, rounding up as Caffe's pooling does (32 → 16 → 8)
                pool_cls = nn.MaxPool2d if pool == "max" else nn.AvgPool2d
                blocks += [pool_cls(kernel_size=3, stride=2, ceil_mode=True), nn.Dropout(dropout)]
                reduction *= 2
        self.blocks = nn.Sequential(*blocks)
        self.num_features = chs
        self.classifier = self._make_classifier(num_classes)
        self.global_pool = nn.AdaptiveAvgPool2d(1)  # the 8×8 average pool at 32×32

    def _make_classifier(self, num_classes: int) -> nn.Module:
        if num_classes == 0:
            return nn.Identity()
        # the class layer is the third mlpconv's last 1×1 conv, ReLU and all (cccp6 + relu in the release)
        return nn.Sequential(nn.Conv2d(self.num_features, num_classes, 1), self.act_layer())

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(x)

    def class_maps(self, x: torch.Tensor) -> torch.Tensor:
        """Return the per-class confidence maps (B, num_classes, H, W) of §3.2 for an input batch."""
        if self.num_classes == 0:
            raise ValueError(f"{self.model_name or 'NiN'} has no class layer (num_classes=0)")
        self.check_input(x)
        return self.classifier(self.forward_features(x))

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        if pre_logits:  # the pooled features the class layer sees
            return torch.flatten(self.global_pool(x), 1)  # (B, C)
        return torch.flatten(self.global_pool(self.classifier(x)), 1)  # (B, num_classes)

    def get_classifier(self) -> nn.Module:
        return self.classifier

    def reset_classifier(self, num_classes: int) -> None:
        self.num_classes = num_classes
        self.classifier = self._make_classifier(num_classes)


@register_model(
    family="nin",
    year=2013,
    paper="Network In Network",
    authors=("Lin", "Chen", "Yan"),
    venue="ICLR",
    venue_year=2014,
    arxiv="1312.4400",
    key_idea="Micro-MLPs (1x1 convolutions) inside each conv layer; global average pooling, no FC layers.",
    input_size=(3, 32, 32),
    num_classes=10,
    ref_params=966_986,
    ref_params_source="hand count (tests/models/test_nin.py) of the authors' released cifar10_nin model",
    notes="CIFAR-10 configuration of the authors' release (192-160-96 / 192-192-192 / 192-192-10); "
    "the paper reports 10.41% test error without, 8.81% with data augmentation. PyTorch default init.",
)
def nin(*, num_classes: int = 10, in_chans: int = 3, dropout: float = 0.5) -> NiN:
    """Return Network in Network, CIFAR-10 configuration (3×32×32 input)."""
    return NiN(NIN_CIFAR10, num_classes=num_classes, in_chans=in_chans, dropout=dropout)
