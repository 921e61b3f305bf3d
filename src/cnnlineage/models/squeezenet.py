"""SqueezeNet — Iandola, Han, Moskewicz, Ashraf, Dally & Keutzer, "SqueezeNet: AlexNet-level
accuracy with 50x fewer parameters and <0.5MB model size", arXiv:1602.07360 (2016).

Three strategies shrink the parameters (§3.1): replace most 3×3 filters by 1×1, feed the
remaining 3×3 filters fewer input channels, and downsample late so the convolutions see
large maps. The *Fire module* (§3.2) does the first two: a 1×1 *squeeze* layer narrows
the input to ``s`` channels, then an *expand* layer of ``e1`` 1×1 and ``e3`` 3×3 filters
runs side by side and concatenates (``s < e1 + e3``). There is no fully connected layer:
a 1×1 convolution to one map per class and global average pooling classify, as in NiN.

``squeezenet1_0`` is Table 1's network (1,248,424 parameters, 57.5% top-1, Table 2).
``squeezenet1_1`` is the authors' v1.1 from their repository (github.com/forresti/SqueezeNet):
a 3×3 stem of 64 filters and the pools moved earlier, 2.4× less computation at the same
accuracy. Module names are torchvision's, so its weights load as they are.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import torch
import torch.nn as nn

from ..registry import register_model
from ._base import LineageModel

__all__ = ["Fire", "SqueezeNet", "SQUEEZENET_CONFIGS"]

_RELU = functools.partial(nn.ReLU, inplace=True)


class Fire(nn.Module):
    """A Fire module: ``cat(act(e1x1(s)), act(e3x3(s)))`` with ``s = act(squeeze(x))`` (§3.2)."""

    def __init__(
        self,
        in_chs: int,
        squeeze: int,
        expand1x1: int,
        expand3x3: int,
        *,
        act_layer: Callable[..., nn.Module] = _RELU,
    ) -> None:
        super().__init__()
        self.squeeze = nn.Conv2d(in_chs, squeeze, 1)
        self.squeeze_activation = act_layer()
        self.expand1x1 = nn.Conv2d(squeeze, expand1x1, 1)
        self.expand1x1_activation = act_layer()
        self.expand3x3 = nn.Conv2d(squeeze, expand3x3, 3, padding=1)
        self.expand3x3_activation = act_layer()
        self.out_chs = expand1x1 + expand3x3

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.squeeze_activation(self.squeeze(x))
        return torch.cat(
            [self.expand1x1_activation(self.expand1x1(x)), self.expand3x3_activation(self.expand3x3(x))], 1
        )


# Each configuration: the stem conv (width, kernel, stride), then a sequence of "pool" (3×3/2
# max-pool, rounding up as Caffe does) and Fire rows (s, e1, e3).
SQUEEZENET_CONFIGS: dict[str, tuple[tuple[int, int, int], tuple]] = {
    # Table 1: conv1 96 7×7/2; fire2-4, pool, fire5-8, pool, fire9
    "1_0": ((96, 7, 2), ("pool", (16, 64, 64), (16, 64, 64), (32, 128, 128), "pool", (32, 128, 128),
                         (48, 192, 192), (48, 192, 192), (64, 256, 256), "pool", (64, 256, 256))),
    # v1.1 (the authors' repository): conv1 64 3×3/2, pools after conv1, fire3 and fire5
    "1_1": ((64, 3, 2), ("pool", (16, 64, 64), (16, 64, 64), "pool", (32, 128, 128), (32, 128, 128), "pool",
                         (48, 192, 192), (48, 192, 192), (64, 256, 256), (64, 256, 256))),
}  # fmt: skip


class SqueezeNet(LineageModel):
    """SqueezeNet: a stem conv, Fire modules between three max-pools, a 1×1 class conv, global average pooling.

    The classifier is torchvision's ``Sequential(Dropout, Conv2d 1×1, ReLU, AdaptiveAvgPool2d)``:
    dropout 0.5 after fire9 (§3.3.1) and a ReLU on the class maps before the average, as in
    the authors' Caffe model.
    """

    def __init__(
        self,
        version: str = "1_0",
        *,
        num_classes: int = 1000,
        in_chans: int = 3,
        dropout: float = 0.5,
        act_layer: Callable[..., nn.Module] = _RELU,
    ) -> None:
        if version not in SQUEEZENET_CONFIGS:
            raise ValueError(
                f"SqueezeNet version must be one of {', '.join(SQUEEZENET_CONFIGS)}, got {version!r}"
            )
        (stem, k, s), rows = SQUEEZENET_CONFIGS[version]
        # smallest input whose last pool still has a row: torchvision's meta min_size (21 for 1.0, 17 for 1.1)
        super().__init__(
            in_chans=in_chans, num_classes=num_classes, input_size=(in_chans, 224, 224),
            min_size=21 if version == "1_0" else 17,
        )  # fmt: skip
        self.act_layer = act_layer
        layers: list[nn.Module] = [nn.Conv2d(in_chans, stem, k, stride=s), act_layer()]
        chs, reduction = stem, 2
        self.feature_info = [dict(module="features.1", num_chs=chs, reduction=reduction)]
        for row in rows:
            if row == "pool":
                layers.append(nn.MaxPool2d(3, stride=2, ceil_mode=True))
                reduction *= 2
                continue
            layers.append(Fire(chs, *row, act_layer=act_layer))
            chs = layers[-1].out_chs
            entry = dict(module=f"features.{len(layers) - 1}", num_chs=chs, reduction=reduction)
            if self.feature_info[-1]["reduction"] == reduction:
                self.feature_info[-1] = entry  # the last module at each scale
            else:
                self.feature_info.append(entry)
        self.features = nn.Sequential(*layers)
        self.num_features = chs
        self.dropout = dropout
        self.classifier = self._make_classifier(num_classes)
        # torchvision's initialisation: Kaiming uniform, the class conv N(0, 0.01) (the authors' Caffe: xavier/gaussian)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                if m is self.get_classifier():
                    nn.init.normal_(m.weight, std=0.01)
                else:
                    nn.init.kaiming_uniform_(m.weight)
                nn.init.zeros_(m.bias)

    def _make_classifier(self, num_classes: int) -> nn.Sequential:
        conv = nn.Conv2d(self.num_features, num_classes, 1) if num_classes > 0 else nn.Identity()
        act = self.act_layer() if num_classes > 0 else nn.Identity()
        return nn.Sequential(nn.Dropout(self.dropout), conv, act, nn.AdaptiveAvgPool2d(1))

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        if pre_logits:  # the pooled fire9 features the class conv would see
            return torch.flatten(self.classifier[3](self.classifier[0](x)), 1)  # (B, 512)
        return torch.flatten(self.classifier(x), 1)  # (B, num_classes)

    def get_classifier(self) -> nn.Module:
        return self.classifier[1]

    def reset_classifier(self, num_classes: int) -> None:
        self.num_classes = num_classes
        self.classifier = self._make_classifier(num_classes)


# ---------------------------------------------------------------------------------------- registry
_PAPER = dict(
    family="squeezenet",
    year=2016,
    paper="SqueezeNet: AlexNet-level accuracy with 50x fewer parameters and <0.5MB model size",
    authors=("Iandola", "Han", "Moskewicz", "Ashraf", "Dally", "Keutzer"),
    venue="arXiv",
    venue_year=2016,
    arxiv="1602.07360",
    input_size=(3, 224, 224),
)


@register_model(
    **_PAPER,
    key_idea="Fire modules (1x1 squeeze, then 1x1 and 3x3 expand) and late downsampling: AlexNet accuracy, "
    "1.2M parameters.",
    ref_params=1_248_424,
    ref_params_source="Iandola et al. 2016, Table 1 total; equal to torchvision SqueezeNet1_0_Weights meta num_params",
    ref_top1=57.5,
    ref_top1_kind="paper",
    ref_top1_source="Iandola et al. 2016, Table 2: SqueezeNet (uncompressed, 32 bit) 57.5% top-1",
    torchvision="squeezenet1_0",
    notes="No batch normalisation (as the paper). Dropout 0.5 after fire9; a ReLU on the class maps before "
    "the average pool, as the authors' Caffe model and torchvision.",
)
def squeezenet1_0(*, num_classes: int = 1000, in_chans: int = 3, dropout: float = 0.5) -> SqueezeNet:
    """Return SqueezeNet 1.0, the network of Table 1."""
    return SqueezeNet("1_0", num_classes=num_classes, in_chans=in_chans, dropout=dropout)


@register_model(
    **_PAPER,
    key_idea="SqueezeNet v1.1: a 3x3 stem of 64 filters and earlier pools, 2.4x less computation, same accuracy.",
    ref_params=1_235_496,
    ref_params_source="torchvision SqueezeNet1_1_Weights meta num_params (hand count in tests/models/test_squeezenet.py)",
    ref_top1=58.178,
    ref_top1_kind="recipe",
    ref_top1_source="torchvision SqueezeNet1_1_Weights.IMAGENET1K_V1 meta acc@1",
    torchvision="squeezenet1_1",
    notes="v1.1 is not in the paper: it is the authors' later model (github.com/forresti/SqueezeNet, "
    "SqueezeNet_v1.1), 0.35 GMACs against 1.0's 0.82.",
)
def squeezenet1_1(*, num_classes: int = 1000, in_chans: int = 3, dropout: float = 0.5) -> SqueezeNet:
    """Return SqueezeNet 1.1, the authors' cheaper revision."""
    return SqueezeNet("1_1", num_classes=num_classes, in_chans=in_chans, dropout=dropout)
