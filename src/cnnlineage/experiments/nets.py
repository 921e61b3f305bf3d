"""Small networks that the experiments vary one part of, and their scoped registration for the trainer.

The registry's models fix their activation, normalisation and widths as the papers did; an
experiment needs the *same* network with one part swapped (ReLU for tanh, LRN for BN, one
5×5 for two 3×3s, a third of the widths). These builders take those parts as plain keyword
values (strings and numbers, so the trainer's YAML config can hold them).

The trainer builds models by registered name only, so :func:`experiment_models` registers
these builders for the duration of a run and removes them afterwards: they never show up
in ``cnnlineage list`` or in the walk over all registered models.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
import torch.nn as nn

from ..models._base import LineageModel
from ..models.alexnet import krizhevsky_lrn
from ..models.resnet_cifar import CifarResNet
from ..registry import register_model

__all__ = [
    "ACTIVATIONS",
    "ConvNet",
    "FilterNet",
    "ResidualMLP",
    "ScaleNet",
    "build",
    "experiment_models",
    "make_norm",
]

ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid}


def make_norm(kind: str, channels: int) -> nn.Module:
    """Return the normalisation layer ``kind`` ("none", "bn", "lrn") for ``channels`` maps."""
    if kind == "none":
        return nn.Identity()
    if kind == "bn":
        return nn.BatchNorm2d(channels)
    if kind == "lrn":  # AlexNet §3.3: k=2, n=5, alpha=1e-4, beta=0.75
        return krizhevsky_lrn()
    raise ValueError(f"norm must be 'none', 'bn' or 'lrn', got {kind!r}")


def _act(name: str) -> nn.Module:
    if name not in ACTIVATIONS:
        raise ValueError(f"act must be one of {', '.join(ACTIVATIONS)}, got {name!r}")
    return ACTIVATIONS[name]()


class ConvNet(LineageModel):
    """An AlexNet-shaped small net: 5×5 conv → pool → 5×5 conv → pool → 3×3 conv → pool → FC → FC.

    Each conv is conv → norm → act for BatchNorm (Ioffe & Szegedy 2015 §3.2 normalise before
    the nonlinearity) and conv → act → LRN for LRN (AlexNet §3.3 normalises after ReLU).
    Dropout before both fully connected layers, as AlexNet §4.2.
    """

    def __init__(
        self,
        *,
        num_classes: int = 10,
        in_chans: int = 3,
        widths: tuple[int, ...] = (32, 64, 64),
        hidden: int = 128,
        act: str = "relu",
        norm: str = "none",
        dropout: float = 0.0,
    ) -> None:
        super().__init__(
            in_chans=in_chans, num_classes=num_classes, input_size=(in_chans, 32, 32), min_size=8
        )
        layers: list[nn.Module] = []
        prev = in_chans
        for i, w in enumerate(widths):
            k = 5 if i < 2 else 3
            conv = nn.Conv2d(prev, w, k, padding=k // 2)
            if norm == "lrn":
                layers += [conv, _act(act), make_norm("lrn", w)]
            else:
                layers += [conv, make_norm(norm, w), _act(act)]
            layers.append(nn.MaxPool2d(2) if i < 2 else nn.AdaptiveMaxPool2d(2))
            prev = w
        self.features = nn.Sequential(*layers)
        self.num_features = hidden
        self.pre = nn.Sequential(nn.Flatten(1), nn.Dropout(dropout), nn.Linear(prev * 4, hidden), _act(act))
        self.fc = nn.Sequential(nn.Dropout(dropout), nn.Linear(hidden, num_classes))
        self.feature_info = [dict(module="features", num_chs=prev, reduction=16)]

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.pre(self.features(x))  # (B, hidden)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        return x if pre_logits else self.fc(x)

    def get_classifier(self) -> nn.Module:
        return self.fc

    def reset_classifier(self, num_classes: int) -> None:
        self.num_classes = num_classes
        self.fc = nn.Sequential(nn.Dropout(0.0), nn.Linear(self.num_features, num_classes))


class FilterNet(LineageModel):
    """3×3 stem, then stages of either one k×k conv or a stack of 3×3s with the same receptive field.

    ``block="single"`` puts one k×k convolution (with its ReLU) in each stage; ``"stack"``
    puts (k−1)/2 3×3 convolutions, each followed by ReLU (Simonyan & Zisserman 2015 §2.3:
    two 3×3s see 5×5, three see 7×7, with more nonlinearities and fewer weights).
    """

    def __init__(
        self,
        *,
        num_classes: int = 10,
        in_chans: int = 3,
        width: int = 32,
        kernel: int = 5,
        block: str = "single",
        stages: int = 2,
    ) -> None:
        super().__init__(
            in_chans=in_chans, num_classes=num_classes, input_size=(in_chans, 32, 32), min_size=8
        )
        if block not in ("single", "stack") or kernel < 3 or kernel % 2 == 0:
            raise ValueError(
                f"block must be 'single' or 'stack' and kernel odd >= 3; got {block!r}, {kernel}"
            )
        layers: list[nn.Module] = [nn.Conv2d(in_chans, width, 3, padding=1), nn.ReLU()]
        for _ in range(stages):
            layers.append(nn.MaxPool2d(2))
            if block == "single":
                layers += [nn.Conv2d(width, width, kernel, padding=kernel // 2), nn.ReLU()]
            else:
                for _ in range((kernel - 1) // 2):
                    layers += [nn.Conv2d(width, width, 3, padding=1), nn.ReLU()]
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.num_features = width
        self.fc = nn.Linear(width, num_classes)
        self.feature_info = [dict(module="features", num_chs=width, reduction=2**stages)]

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)  # (B, width, H/4, W/4)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = self.pool(x).flatten(1)
        return x if pre_logits else self.fc(x)

    def get_classifier(self) -> nn.Module:
        return self.fc

    def reset_classifier(self, num_classes: int) -> None:
        self.num_classes = num_classes
        self.fc = nn.Linear(self.num_features, num_classes)


class ResidualMLP(LineageModel):
    """A deep fully connected net of one width: plain, with BatchNorm, or with identity shortcuts.

    ``kind``: "plain" (Linear → act), "bn" (Linear → BN → act), "residual" (act(x + BN(Linear x)), He et
    al. 2015's block with one layer in the branch: BN in the branch keeps the sum from growing with depth).
    Used by the gradient-flow experiment to compare how gradients cross depth.
    """

    def __init__(
        self,
        *,
        num_classes: int = 10,
        in_chans: int = 1,
        img_size: int = 28,
        depth: int = 20,
        width: int = 64,
        act: str = "relu",
        kind: str = "plain",
    ) -> None:
        super().__init__(
            in_chans=in_chans,
            num_classes=num_classes,
            input_size=(in_chans, img_size, img_size),
            fixed_size=True,
        )
        if kind not in ("plain", "bn", "residual"):
            raise ValueError(f"kind must be 'plain', 'bn' or 'residual', got {kind!r}")
        self.kind = kind
        self.stem = nn.Sequential(nn.Flatten(1), nn.Linear(in_chans * img_size * img_size, width), _act(act))
        norm, inner_act = kind in ("bn", "residual"), kind != "residual"
        self.layers = nn.ModuleList(
            nn.Sequential(
                nn.Linear(width, width),
                nn.BatchNorm1d(width) if norm else nn.Identity(),
                _act(act) if inner_act else nn.Identity(),
            )
            for _ in range(depth - 1)
        )
        self.act = _act(act)
        self.num_features = width
        self.fc = nn.Linear(width, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for layer in self.layers:
            x = self.act(x + layer(x)) if self.kind == "residual" else layer(x)
        return x

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        return x if pre_logits else self.fc(x)

    def get_classifier(self) -> nn.Module:
        return self.fc

    def reset_classifier(self, num_classes: int) -> None:
        self.num_classes = num_classes
        self.fc = nn.Linear(self.num_features, num_classes)


class ScaleNet(LineageModel):
    """A 3×3 stem, three stages of ``layers`` conv-BN-ReLU layers (stride 2 between stages), pool, FC.

    The small base that the compound-scaling experiment scales by depth (``layers``), width
    (``widths``) and resolution (the input size, any size >= 4).
    """

    def __init__(
        self,
        *,
        num_classes: int = 10,
        in_chans: int = 3,
        layers: int = 4,
        widths: tuple[int, ...] = (8, 16, 32),
    ) -> None:
        super().__init__(
            in_chans=in_chans, num_classes=num_classes, input_size=(in_chans, 16, 16), min_size=4
        )
        from ..layers.conv_norm_act import ConvNormAct

        mods: list[nn.Module] = [ConvNormAct(in_chans, widths[0], 3)]
        prev = widths[0]
        for i, w in enumerate(widths):
            for j in range(layers):
                mods.append(ConvNormAct(prev, w, 3, 2 if (i > 0 and j == 0) else 1))
                prev = w
        self.features = nn.Sequential(*mods)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.num_features = prev
        self.fc = nn.Linear(prev, num_classes)
        self.feature_info = [dict(module="features", num_chs=prev, reduction=4)]

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = self.pool(x).flatten(1)
        return x if pre_logits else self.fc(x)

    def get_classifier(self) -> nn.Module:
        return self.fc

    def reset_classifier(self, num_classes: int) -> None:
        self.num_classes = num_classes
        self.fc = nn.Linear(self.num_features, num_classes)


# ---------------------------------------------------------------------------- builders
def exp_scalenet(
    *, num_classes: int = 10, in_chans: int = 3, layers: int = 4, widths: tuple[int, ...] = (8, 16, 32)
) -> ScaleNet:
    """Return the small conv-BN-ReLU base of the compound-scaling experiment at the given depth and widths."""
    return ScaleNet(num_classes=num_classes, in_chans=in_chans, layers=layers, widths=tuple(widths))


def exp_convnet(
    *,
    num_classes: int = 10,
    in_chans: int = 3,
    widths: tuple[int, ...] = (32, 64, 64),
    hidden: int = 128,
    act: str = "relu",
    norm: str = "none",
    dropout: float = 0.0,
) -> ConvNet:
    """Return the small AlexNet-shaped net with the given activation, normalisation and dropout."""
    return ConvNet(
        num_classes=num_classes, in_chans=in_chans, widths=tuple(widths), hidden=hidden, act=act, norm=norm,
        dropout=dropout,
    )  # fmt: skip


def exp_filternet(
    *,
    num_classes: int = 10,
    in_chans: int = 3,
    width: int = 32,
    kernel: int = 5,
    block: str = "single",
    stages: int = 2,
) -> FilterNet:
    """Return the single-k×k or stacked-3×3 network."""
    return FilterNet(
        num_classes=num_classes, in_chans=in_chans, width=width, kernel=kernel, block=block, stages=stages
    )


def exp_cifar_resnet(
    *,
    num_classes: int = 10,
    in_chans: int = 3,
    depth: int = 20,
    residual: bool = True,
    widths: tuple[int, int, int] = (16, 32, 64),
) -> CifarResNet:
    """Return He et al.'s CIFAR ResNet or its plain twin at any 6n+2 depth and stage widths (option A)."""
    return CifarResNet(
        depth=depth, num_classes=num_classes, in_chans=in_chans, residual=residual, widths=tuple(widths)
    )


_CARD = dict(
    family="experiment",
    year=2026,
    paper="cnnlineage experiment network (not a published model)",
    authors=("cnnlineage",),
    venue="-",
    venue_year=2026,
    input_size=(3, 32, 32),
    ref_params=0,
    ref_params_source="varies with its settings",
    num_classes=10,
)
_NETS = {
    "exp_convnet": (exp_convnet, "Small AlexNet-shaped net with a swappable activation, norm and dropout."),
    "exp_filternet": (exp_filternet, "One k x k conv per stage, or a stack of 3x3s with the same field."),
    "exp_cifar_resnet": (exp_cifar_resnet, "He et al.'s CIFAR ResNet or plain twin at any depth and width."),
    "exp_scalenet": (exp_scalenet, "A small conv-BN-ReLU base to scale by depth, width and resolution."),
}


@contextlib.contextmanager
def experiment_models() -> Iterator[None]:
    """Register the experiment networks for the duration of the block, then remove them again.

    The trainer builds models by registered name; these networks must not join the public
    registry, so they are registered here and taken out afterwards (registry has no public
    unregister, hence the two private dicts).
    """
    from .. import registry

    registry._ensure_models_loaded()
    added = []
    for name, (fn, idea) in _NETS.items():
        if name not in registry._BUILDERS:
            register_model(name=name, key_idea=idea, **_CARD)(fn)
            added.append(name)
    try:
        yield
    finally:
        for name in added:
            registry._BUILDERS.pop(name, None)
            registry._CARDS.pop(name, None)


def build(name: str, **kwargs) -> nn.Module:  # noqa: ANN003
    """Return experiment network ``name`` (or a registered model) built with ``kwargs``."""
    from ..registry import create_model

    with experiment_models():
        return create_model(name, **kwargs)
