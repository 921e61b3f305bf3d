"""Highway networks — Srivastava, Greff & Schmidhuber, "Training Very Deep Networks", NeurIPS 2015,
arXiv:1507.06228 (first as "Highway Networks", arXiv:1505.00387).

A highway layer computes ``y = H(x)·T(x) + x·(1 − T(x))``: a learned transform gate
``T(x) = sigmoid(W_T x + b_T)`` decides, unit by unit, how much of the layer's transform H
to emit and how much of its input to carry through unchanged (the carry gate ``1 − T``).
With ``b_T`` negative at initialisation (§2.2: "e.g. −1, −3") the gates start nearly
closed, each layer starts close to the identity, and information and gradients cross a
hundred layers; plain networks of the same depth stall. It is the gated precursor of the
residual connection (ResNet's ``y = H(x) + x``, same year).

- ``highway_mlp`` is §3.1's optimisation experiment on MNIST: a fully connected plain
  layer 784 → 50, then ``depth − 1`` fully connected highway layers of 50 blocks, then a
  linear (softmax) output; ``depth`` (1..100) counts the hidden layers, as the paper's
  depths 10, 20, 50 and 100 do. Default depth 10, the shallowest of those.
- ``plain_mlp`` is its plain baseline: the same depth, plain layers of 71 units, the
  width §3.1 uses so that a plain layer (5,112 parameters) costs what a highway layer
  (5,100) does.
- ``highway_cnn`` / ``plain_cnn``: a simplified convolutional network for 3x32x32 CIFAR-10.
  The paper's CIFAR networks follow FitNet designs with growing widths; here one plain 3x3
  convolution maps the image to ``width`` (32) channels, then ``depth − 1`` 3x3 highway
  (or plain) layers at that width run in three stages at 32, 16 and 8 pixels separated by
  2x2 max-pooling, then global average pooling and a linear classifier. Default depth 19,
  the depth of the paper's CIFAR-10/100 highway network; the classifier is not counted.

H is an affine map followed by ReLU (§3.1 searched ReLU and tanh). Weights start from
Glorot & Bengio's "normalized initialization" (§3.1: the plain baselines' scheme) with zero
biases, except the gate biases ``b_T = gate_bias`` (−2 by default, inside §2.2's range).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn as nn

from ..layers.conv_norm_act import ConvNormAct
from ..registry import register_model
from ._base import LineageModel

__all__ = ["HighwayLayer", "HighwayMLP", "HighwayCNN", "highway_fc", "highway_conv", "MAX_DEPTH"]

Layer = Callable[..., nn.Module]
MAX_DEPTH = 100


class HighwayLayer(nn.Module):
    """Return ``H(x)·T(x) + x·(1 − T(x))`` with ``T(x) = sigmoid(gate(x))`` (Srivastava 2015, eq. 3).

    ``transform`` (H) and ``gate`` (the affine map W_T x + b_T) must keep x's shape. The gate
    bias starts at ``gate_bias``: negative biases the layer towards carrying its input (§2.2).
    """

    def __init__(self, transform: nn.Module, gate: nn.Module, *, gate_bias: float = -2.0) -> None:
        super().__init__()
        self.transform = transform
        self.gate = gate
        self.gate_bias = gate_bias
        self.reset_gate()

    def reset_gate(self) -> None:
        """Set the gate bias back to ``gate_bias``."""
        nn.init.constant_(self.gate.bias, self.gate_bias)

    def transform_gate(self, x: torch.Tensor) -> torch.Tensor:
        """Return T(x), the share of each unit's output that comes from H."""
        return torch.sigmoid(self.gate(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = self.transform_gate(x)
        return self.transform(x) * t + x * (1.0 - t)  # carry gate C = 1 − T


def highway_fc(width: int, *, act_layer: Layer = nn.ReLU, gate_bias: float = -2.0) -> HighwayLayer:
    """Return a fully connected highway layer of ``width`` blocks (H = act(W_H x + b_H))."""
    return HighwayLayer(
        nn.Sequential(nn.Linear(width, width), act_layer()), nn.Linear(width, width), gate_bias=gate_bias
    )


def plain_fc(in_features: int, width: int, *, act_layer: Layer = nn.ReLU) -> nn.Sequential:
    """Return a plain fully connected layer, act(W x + b)."""
    return nn.Sequential(nn.Linear(in_features, width), act_layer())


def highway_conv(
    channels: int, *, norm_layer: Layer | None = None, act_layer: Layer = nn.ReLU, gate_bias: float = -2.0
) -> HighwayLayer:
    """Return a 3x3 convolutional highway layer: H a conv-(norm)-act, T a 3x3 conv (one gate per unit)."""
    transform = ConvNormAct(channels, channels, 3, norm_layer=norm_layer, act_layer=act_layer)
    return HighwayLayer(transform, nn.Conv2d(channels, channels, 3, padding=1), gate_bias=gate_bias)


def _check_depth(depth: int) -> None:
    if not isinstance(depth, int) or isinstance(depth, bool) or not 1 <= depth <= MAX_DEPTH:
        raise ValueError(
            f"depth must be an integer from 1 to {MAX_DEPTH} (layers before the classifier), got {depth!r}"
        )


def _init_weights(model: nn.Module) -> None:
    # Glorot-uniform weights, zero biases (§3.1's "normalized initialization"); then b_T.
    for m in model.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d)):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    for m in model.modules():
        if isinstance(m, HighwayLayer):
            m.reset_gate()


class HighwayMLP(LineageModel):
    """A plain input layer, ``depth − 1`` highway (or plain) layers of one width, and a linear output."""

    def __init__(
        self,
        *,
        depth: int = 10,
        width: int = 50,
        highway: bool = True,
        num_classes: int = 10,
        in_chans: int = 1,
        img_size: int = 28,
        act_layer: Layer = nn.ReLU,
        gate_bias: float = -2.0,
    ) -> None:
        _check_depth(depth)
        super().__init__(
            in_chans=in_chans,
            num_classes=num_classes,
            input_size=(in_chans, img_size, img_size),
            fixed_size=True,
        )
        self.depth, self.width, self.highway = depth, width, highway
        # (B, C, H, W) → (B, C·H·W) → (B, width): the plain layer that sets the dimensionality (§3.1)
        self.stem = nn.Sequential(
            nn.Flatten(1), plain_fc(in_chans * img_size * img_size, width, act_layer=act_layer)
        )
        if highway:
            layers = [highway_fc(width, act_layer=act_layer, gate_bias=gate_bias) for _ in range(depth - 1)]
        else:
            layers = [plain_fc(width, width, act_layer=act_layer) for _ in range(depth - 1)]
        self.layers = nn.Sequential(*layers)
        self.fc = nn.Linear(width, num_classes) if num_classes > 0 else nn.Identity()
        # vectors: one position that sees the whole image, as LeNet-5's C5
        self.feature_info = [
            dict(module="stem", num_chs=width, reduction=img_size),
            dict(module="layers", num_chs=width, reduction=img_size),
        ]
        _init_weights(self)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(self.stem(x))  # (B, width)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        return x if pre_logits else self.fc(x)

    def get_classifier(self) -> nn.Module:
        return self.fc

    def reset_classifier(self, num_classes: int) -> None:
        self.num_classes = num_classes
        self.fc = nn.Linear(self.width, num_classes) if num_classes > 0 else nn.Identity()


class HighwayCNN(LineageModel):
    """A plain 3x3 stem, ``depth − 1`` 3x3 highway (or plain) layers in three max-pooled stages, pool, FC."""

    def __init__(
        self,
        *,
        depth: int = 19,
        width: int = 32,
        highway: bool = True,
        num_classes: int = 10,
        in_chans: int = 3,
        norm_layer: Layer | None = None,
        act_layer: Layer = nn.ReLU,
        gate_bias: float = -2.0,
    ) -> None:
        _check_depth(depth)
        # two 2x2 max-pools: 4x4 is the smallest input that leaves one position
        super().__init__(
            in_chans=in_chans, num_classes=num_classes, input_size=(in_chans, 32, 32), min_size=4
        )
        self.depth, self.width, self.highway = depth, width, highway
        self.stem = ConvNormAct(in_chans, width, 3, norm_layer=norm_layer, act_layer=act_layer)
        n = depth - 1
        stages = []
        for i in range(3):  # n layers shared out as evenly as possible, earlier stages first
            layers: list[nn.Module] = [nn.MaxPool2d(2)] if i > 0 else []
            for _ in range(n // 3 + (i < n % 3)):
                if highway:
                    layers.append(
                        highway_conv(width, norm_layer=norm_layer, act_layer=act_layer, gate_bias=gate_bias)
                    )
                else:
                    layers.append(ConvNormAct(width, width, 3, norm_layer=norm_layer, act_layer=act_layer))
            stages.append(nn.Sequential(*layers))
        self.stages = nn.Sequential(*stages)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(width, num_classes) if num_classes > 0 else nn.Identity()
        self.feature_info = [
            dict(module="stem", num_chs=width, reduction=1),
            dict(module="stages.0", num_chs=width, reduction=1),
            dict(module="stages.1", num_chs=width, reduction=2),
            dict(module="stages.2", num_chs=width, reduction=4),
        ]
        _init_weights(self)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.stages(self.stem(x))  # (B, width, H/4, W/4)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = torch.flatten(self.pool(x), 1)  # (B, width)
        return x if pre_logits else self.fc(x)

    def get_classifier(self) -> nn.Module:
        return self.fc

    def reset_classifier(self, num_classes: int) -> None:
        self.num_classes = num_classes
        self.fc = nn.Linear(self.width, num_classes) if num_classes > 0 else nn.Identity()


_HIGHWAY = dict(
    family="highway",
    year=2015,
    paper="Training Very Deep Networks",
    authors=("Srivastava", "Greff", "Schmidhuber"),
    venue="NIPS",
    venue_year=2015,
    arxiv="1507.06228",
    num_classes=10,
)
_MLP = dict(_HIGHWAY, input_size=(1, 28, 28))
_CNN = dict(_HIGHWAY, input_size=(3, 32, 32))


@register_model(
    **_MLP,
    key_idea="Gated carry: y = H(x)T(x) + x(1-T(x)) lets information and gradients cross a hundred layers.",
    ref_params=85_660,
    ref_params_source="hand count at depth 10: 39,250 (784->50) + 9 x 5,100 (highway layers) + 510 (output)",
    notes="Fully connected, MNIST (§3.1): plain 784->50 layer, depth-1 highway layers of 50 blocks, ReLU, "
    "gate bias -2. depth (1..100) counts hidden layers; default 10.",
)
def highway_mlp(
    *, depth: int = 10, width: int = 50, gate_bias: float = -2.0, num_classes: int = 10, in_chans: int = 1
) -> HighwayMLP:
    """Return the fully connected highway network of §3.1 (MNIST, 50 blocks per layer)."""
    return HighwayMLP(
        depth=depth, width=width, gate_bias=gate_bias, num_classes=num_classes, in_chans=in_chans
    )


@register_model(
    **_MLP,
    key_idea="The plain baseline: the same depth without gates, which stops training as depth grows.",
    ref_params=102_463,
    ref_params_source="hand count at depth 10: 55,735 (784->71) + 9 x 5,112 (plain layers) + 720 (output)",
    notes="Plain counterpart of highway_mlp (§3.1): 71 units per layer for about the parameters of a "
    "50-block highway layer. depth (1..100) counts hidden layers; default 10.",
)
def plain_mlp(*, depth: int = 10, width: int = 71, num_classes: int = 10, in_chans: int = 1) -> HighwayMLP:
    """Return the plain fully connected network of §3.1 (71 units per layer)."""
    return HighwayMLP(depth=depth, width=width, highway=False, num_classes=num_classes, in_chans=in_chans)


@register_model(
    **_CNN,
    key_idea="Convolutional highway layers: one gate per position and channel between a 3x3 conv and x.",
    ref_params=334_154,
    ref_params_source="hand count at depth 19, width 32: 896 (stem) + 18 x 18,496 (highway) + 330 (FC)",
    notes="Simplified CIFAR-10 network (the paper's follow FitNets): 3x3 stem to 32 channels, depth-1 "
    "highway layers in three stages split by 2x2 max-pools, average pool, FC; gate bias -2. depth 1..100.",
)
def highway_cnn(
    *, depth: int = 19, width: int = 32, gate_bias: float = -2.0, num_classes: int = 10, in_chans: int = 3
) -> HighwayCNN:
    """Return a convolutional highway network for 32x32 images."""
    return HighwayCNN(
        depth=depth, width=width, gate_bias=gate_bias, num_classes=num_classes, in_chans=in_chans
    )


@register_model(
    **_CNN,
    key_idea="The plain baseline: the same convolutions without gates or carry.",
    ref_params=167_690,
    ref_params_source="hand count at depth 19, width 32: 896 (stem) + 18 x 9,248 (plain layers) + 330 (FC)",
    notes="Plain counterpart of highway_cnn: same layers and widths, no gates. depth 1..100.",
)
def plain_cnn(*, depth: int = 19, width: int = 32, num_classes: int = 10, in_chans: int = 3) -> HighwayCNN:
    """Return the plain convolutional network matching highway_cnn."""
    return HighwayCNN(depth=depth, width=width, highway=False, num_classes=num_classes, in_chans=in_chans)
