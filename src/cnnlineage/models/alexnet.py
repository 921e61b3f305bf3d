"""AlexNet and ZFNet: the two ImageNet winners that started the deep-learning era.

AlexNet — Krizhevsky, Sutskever & Hinton, "ImageNet Classification with Deep Convolutional
Neural Networks", NIPS 2012. Five convolutional and three fully connected layers, ReLU
instead of saturating units, local response normalisation (LRN), overlapping max-pooling
and dropout, trained on two GTX 580 GPUs: the network was split into two "towers" that
exchange activations only at conv3 and the fully connected layers.

ZFNet — Zeiler & Fergus, "Visualizing and Understanding Convolutional Networks", ECCV 2014,
arXiv:1311.2901. Deconvnet visualisations showed AlexNet's first layer wasting filters
(aliasing from the 11×11 stride-4 convolution, dead filters), so conv1 became 7×7 stride 2,
conv2 stride 2, and the network a single dense tower.

Three variants share one class, each a row table (``ConvSpec``):

- ``alexnet``: torchvision's single-tower layout (64-192-384-256-256, from Krizhevsky's
  "One weird trick" 2014 version, no LRN), with torchvision's state_dict keys.
- ``alexnet_original``: the 2012 paper. 96-256-384-384-256 kernels; the two towers are
  grouped convolutions (conv2, conv4, conv5 ``groups=2``; conv3 sees both towers); LRN
  after conv1 and conv2, within each tower; input 227×227 — the paper says 224, but
  (224 − 11) / 4 + 1 = 54.25 is not an integer, while 227 gives the paper's 55×55 maps.
- ``zfnet``: Fig. 3 of Zeiler & Fergus, 224×224 input.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn as nn

from ..registry import register_model
from ._base import LineageModel

__all__ = ["AlexNet", "ConvSpec", "TowerLRN", "krizhevsky_lrn"]


@dataclass(frozen=True)
class ConvSpec:
    """One convolutional layer of an AlexNet-style network and what follows its ReLU."""

    out_chs: int
    kernel: int
    stride: int
    padding: int
    groups: int = 1  # 2 = the paper's two GPU towers as a grouped convolution
    norm: bool = False  # response normalisation after the ReLU
    pool: bool = False  # 3×3 stride-2 max-pool (overlapping pooling, Krizhevsky 2012 §3.4)


# torchvision's AlexNet (single tower, no LRN), keys features.0/3/6/8/10, classifier.1/4/6.
TORCHVISION_ALEXNET = (
    ConvSpec(64, 11, 4, 2, pool=True),
    ConvSpec(192, 5, 1, 2, pool=True),
    ConvSpec(384, 3, 1, 1),
    ConvSpec(256, 3, 1, 1),
    ConvSpec(256, 3, 1, 1, pool=True),
)  # fmt: skip

# Krizhevsky 2012 §3.5 / Fig. 2: 96, 256, 384, 384, 256 kernels; 227×227 → 55 → 27 → 13 → 6.
KRIZHEVSKY_2012 = (
    ConvSpec(96, 11, 4, 0, norm=True, pool=True),
    ConvSpec(256, 5, 1, 2, groups=2, norm=True, pool=True),
    ConvSpec(384, 3, 1, 1),  # "the kernels of the third layer are connected to all kernel maps of the second"
    ConvSpec(384, 3, 1, 1, groups=2),
    ConvSpec(256, 3, 1, 1, groups=2, pool=True),
)  # fmt: skip

# Zeiler & Fergus 2014 Fig. 3: 224 → 110 (conv1, pad 1) → 55 (pool) → 26 (conv2) → 13 (pool) → 6.
ZEILER_FERGUS_2014 = (
    ConvSpec(96, 7, 2, 1, norm=True, pool=True),
    ConvSpec(256, 5, 2, 0, norm=True, pool=True),
    ConvSpec(384, 3, 1, 1),
    ConvSpec(384, 3, 1, 1),
    ConvSpec(256, 3, 1, 1, pool=True),
)  # fmt: skip


_RELU = functools.partial(nn.ReLU, inplace=True)


class TowerLRN(nn.Module):
    """LRN over each tower's maps separately: in the paper each GPU normalised its own half (§3.2-3.3)."""

    def __init__(self, lrn: nn.Module, towers: int) -> None:
        super().__init__()
        # one instance per tower: a module called twice in a forward breaks PT2E quantization
        self.lrns = nn.ModuleList([lrn] + [copy.deepcopy(lrn) for _ in range(towers - 1)])
        self.towers = towers

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([f(t) for f, t in zip(self.lrns, x.chunk(self.towers, dim=1))], dim=1)


def krizhevsky_lrn(
    size: int = 5, alpha: float = 1e-4, beta: float = 0.75, k: float = 2.0, *, towers: int = 1
) -> nn.Module:
    """Return LRN with the paper's formula b = a / (k + alpha·Σ a²)^beta over ``size`` adjacent maps (§3.3).

    ``torch.nn.LocalResponseNorm`` divides ``alpha`` by ``size``, so it is given
    ``alpha·size`` (5e-4 for the paper's alpha = 1e-4, n = 5). With ``towers > 1`` the
    sum runs only over the maps of the same tower.
    """
    lrn = nn.LocalResponseNorm(size, alpha=alpha * size, beta=beta, k=k)
    return lrn if towers == 1 else TowerLRN(lrn, towers)


class AlexNet(LineageModel):
    """Five convolutions (ReLU, optional normalisation and max-pool) and a 4096-4096 classifier.

    ``features`` and ``classifier`` are flat ``nn.Sequential``s, so with the torchvision
    table the state_dict keys are torchvision's. ``avgpool`` (adaptive, 6×6) is the
    identity at the paper's input size; it lets other sizes through.
    """

    def __init__(
        self,
        convs: tuple[ConvSpec, ...],
        *,
        num_classes: int = 1000,
        in_chans: int = 3,
        img_size: int = 224,
        min_size: int = 63,
        dropout: float = 0.5,
        dropout_first: bool = True,
        norm_before_pool: bool = True,
        ceil_mode: bool = False,
        act_layer: Callable[..., nn.Module] = _RELU,
        norm_layer: Callable[..., nn.Module] = krizhevsky_lrn,
    ) -> None:
        super().__init__(
            in_chans=in_chans,
            num_classes=num_classes,
            input_size=(in_chans, img_size, img_size),
            min_size=min_size,
        )
        layers: list[nn.Module] = []
        self.feature_info = []
        chs, reduction = in_chans, 1
        for spec in convs:
            conv = nn.Conv2d(chs, spec.out_chs, spec.kernel, spec.stride, spec.padding, groups=spec.groups)
            layers += [conv, act_layer()]
            reduction *= spec.stride
            post = []
            if spec.norm:
                post.append(norm_layer())
            if spec.pool:
                post.append(nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=ceil_mode))
            if not norm_before_pool:  # Zeiler & Fergus pool first, then normalise (Fig. 3)
                post.reverse()
            if spec.pool:
                # record the stage before its pool, at the resolution it computes on
                self.feature_info.append(
                    dict(module=f"features.{len(layers) - 1}", num_chs=spec.out_chs, reduction=reduction)
                )
                reduction *= 2
            layers += post
            chs = spec.out_chs
        self.feature_info.append(dict(module=f"features.{len(layers) - 1}", num_chs=chs, reduction=reduction))
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d((6, 6))
        self.num_features = chs * 6 * 6
        self.dropout_first = dropout_first
        if dropout_first:  # torchvision: dropout on the inputs of fc6 and fc7
            hidden = [
                nn.Dropout(dropout),
                nn.Linear(self.num_features, 4096),
                act_layer(),
                nn.Dropout(dropout),
                nn.Linear(4096, 4096),
                act_layer(),
            ]
        else:  # the papers: dropout on the outputs of fc6 and fc7 (Krizhevsky 2012 §4.2)
            hidden = [
                nn.Linear(self.num_features, 4096),
                act_layer(),
                nn.Dropout(dropout),
                nn.Linear(4096, 4096),
                act_layer(),
                nn.Dropout(dropout),
            ]
        self.classifier = nn.Sequential(*hidden, self._make_fc(num_classes))

    @staticmethod
    def _make_fc(num_classes: int) -> nn.Module:
        return nn.Linear(4096, num_classes) if num_classes > 0 else nn.Identity()

    def init_gaussian(self, *, std: float = 0.01, one_bias: tuple[str, ...] = ()) -> None:
        """Initialise weights from N(0, std²) and biases to 0, or to 1 in the layers named in ``one_bias``."""
        for name, m in self.named_modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.normal_(m.weight, 0.0, std)
                nn.init.constant_(m.bias, 1.0 if name in one_bias else 0.0)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = torch.flatten(self.avgpool(x), 1)  # (B, C·6·6)
        if not pre_logits:
            return self.classifier(x)  # one call, as torchvision: a slice would build a new Sequential
        return self.classifier[:-1](x)

    def get_classifier(self) -> nn.Module:
        return self.classifier[-1]

    def reset_classifier(self, num_classes: int) -> None:
        self.num_classes = num_classes
        self.classifier[-1] = self._make_fc(num_classes)


_KRIZHEVSKY = dict(
    family="alexnet",
    year=2012,
    paper="ImageNet Classification with Deep Convolutional Neural Networks",
    authors=("Krizhevsky", "Sutskever", "Hinton"),
    venue="NIPS",
    venue_year=2012,
)


@register_model(
    **_KRIZHEVSKY,
    key_idea="A large ReLU convnet with dropout, trained on GPUs, wins ImageNet by a wide margin.",
    input_size=(3, 224, 224),
    ref_params=61_100_840,
    ref_params_source="torchvision AlexNet_Weights.IMAGENET1K_V1 meta num_params",
    ref_top1=56.522,
    ref_top1_kind="recipe",
    ref_top1_source="torchvision AlexNet_Weights.IMAGENET1K_V1 (ImageNet-1K val, 224 crop)",
    torchvision="alexnet",
    notes="torchvision's single-tower variant (64-192-384-256-256, no LRN; Krizhevsky's 2014 "
    "'One weird trick' layout), not the 2012 paper's: see alexnet_original.",
)
def alexnet(*, num_classes: int = 1000, in_chans: int = 3, dropout: float = 0.5) -> AlexNet:
    """Return torchvision's AlexNet (state_dict keys identical to ``torchvision.models.alexnet``)."""
    return AlexNet(TORCHVISION_ALEXNET, num_classes=num_classes, in_chans=in_chans, dropout=dropout)


@register_model(
    **_KRIZHEVSKY,
    key_idea="Two-GPU AlexNet as published: grouped conv2/4/5, LRN after conv1-2, overlapping pooling.",
    input_size=(3, 227, 227),
    ref_params=60_965_224,
    ref_params_source="hand count (tests/models/test_alexnet.py); the paper says 60 million",
    ref_top1=59.3,
    ref_top1_kind="paper",
    ref_top1_source="Krizhevsky 2012 Table 2: one CNN, 40.7% top-1 error on ILSVRC-2012 val",
    notes="227x227 input (the paper's 224 does not divide: (224-11)/4+1 = 54.25). The two GPU towers "
    "are groups=2 convolutions, LRN normalises within a tower; fc6-fc8 see both towers, as in the paper. "
    "Init as §5: N(0, 0.01) weights, bias 1 in conv2, conv4, conv5 and fc6-7.",
)
def alexnet_original(*, num_classes: int = 1000, in_chans: int = 3, dropout: float = 0.5) -> AlexNet:
    """Return AlexNet as in the 2012 paper (two towers as groups=2, LRN, 227×227 input, paper init)."""
    model = AlexNet(
        KRIZHEVSKY_2012,
        num_classes=num_classes,
        in_chans=in_chans,
        img_size=227,
        min_size=67,
        norm_layer=functools.partial(krizhevsky_lrn, towers=2),
        dropout=dropout,
        dropout_first=False,
    )
    # §5: bias 1 in conv2, conv4, conv5 and the hidden fc layers ("accelerates the early stages of learning")
    model.init_gaussian(one_bias=("features.4", "features.10", "features.12", "classifier.0", "classifier.3"))
    return model


@register_model(
    family="alexnet",
    year=2013,
    paper="Visualizing and Understanding Convolutional Networks",
    authors=("Zeiler", "Fergus"),
    venue="ECCV",
    venue_year=2014,
    arxiv="1311.2901",
    key_idea="Deconvnet visualisations guide a fix of AlexNet: 7x7 stride-2 conv1, stride-2 conv2.",
    input_size=(3, 224, 224),
    ref_params=62_357_608,
    ref_params_source="hand count (tests/models/test_alexnet.py)",
    ref_top1=61.7,
    ref_top1_kind="paper",
    ref_top1_source="Zeiler & Fergus Table 2: 1 convnet as per Fig. 3, 38.3% top-1 error on ILSVRC-2012 val "
    "(arXiv version; one value the published text may round differently)",
    notes="Fig. 3: conv1 padded by 1 (224 -> 110) and max-pooling rounding up as in Caffe (110 -> 55, "
    "26 -> 13); pooling precedes the contrast normalisation, which uses AlexNet's LRN constants "
    "(the paper gives none). Init §3.1: weights N(0, 0.01), biases 0.",
)
def zfnet(*, num_classes: int = 1000, in_chans: int = 3, dropout: float = 0.5) -> AlexNet:
    """Return ZFNet (Zeiler & Fergus 2014, Fig. 3): single-tower AlexNet with 7×7/2 conv1 and 5×5/2 conv2."""
    model = AlexNet(
        ZEILER_FERGUS_2014,
        num_classes=num_classes,
        in_chans=in_chans,
        min_size=47,
        dropout=dropout,
        dropout_first=False,
        norm_before_pool=False,
        ceil_mode=True,
    )
    model.init_gaussian()
    return model
