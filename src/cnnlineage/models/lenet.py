"""LeNet-5 — LeCun, Bottou, Bengio & Haffner, "Gradient-Based Learning Applied to Document
Recognition", Proc. IEEE 86(11), 1998.

The network that fixed the pattern of every CNN after it: local receptive fields, shared
weights and spatial subsampling, alternating convolution (C) and subsampling (S) layers
ending in fully connected layers, trained end to end by back-propagation.

``lenet5`` follows the paper: 32×32 input, scaled tanh ``1.7159·tanh(2a/3)`` (Appendix A),
trainable subsampling S2/S4 (sum of a 2×2 window times one coefficient plus one bias per
map), C3's partial connection table (Table I), C5 with 120 maps and F6 with 84 units; its
60,000 trainable parameters match the paper's count. One simplification: the paper's
output layer is 10 Euclidean RBF units with fixed, hand-drawn 7×12 codes; we use a
trainable 84→10 linear layer (850 parameters) so that the model trains with
cross-entropy like every other model here.

``lenet5_modern`` is the version most courses teach: ReLU, max-pooling and a full C3.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..registry import register_model
from ._base import LineageModel

__all__ = ["LeNet5", "ScaledTanh", "TrainableSubsample", "PartialConv"]


class ScaledTanh(nn.Module):
    """Return ``A·tanh(S·x)`` with A = 1.7159 and S = 2/3 (LeCun 1998, Appendix A): f(±1) = ±1."""

    def __init__(self, amplitude: float = 1.7159, slope: float = 2.0 / 3.0) -> None:
        super().__init__()
        self.amplitude = amplitude
        self.slope = slope

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.amplitude * torch.tanh(self.slope * x)


class TrainableSubsample(nn.Module):
    """Return ``w_c · sum(2×2 window) + b_c`` per channel: LeNet-5's S2/S4 (two parameters per map)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = F.avg_pool2d(x, 2) * 4.0  # sum of each non-overlapping 2×2 window
        return s * self.weight.view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1)


# LeNet-5 Table I: which S2 maps (0-5) feed each C3 map (0-15). The first six take three
# contiguous maps, the next nine four (six contiguous, three not), the last all six.
C3_TABLE: tuple[tuple[int, ...], ...] = (
    (0, 1, 2), (1, 2, 3), (2, 3, 4), (3, 4, 5), (4, 5, 0), (5, 0, 1),
    (0, 1, 2, 3), (1, 2, 3, 4), (2, 3, 4, 5), (3, 4, 5, 0), (4, 5, 0, 1), (5, 0, 1, 2),
    (0, 1, 3, 4), (1, 2, 4, 5), (0, 2, 3, 5),
    (0, 1, 2, 3, 4, 5),
)  # fmt: skip


class PartialConv(nn.Module):
    """A convolution in which each output map sees only the input maps its table row names.

    Output maps with the same number of inputs form one grouped convolution over the
    gathered input channels, so the parameters are exactly those of the table
    (1,516 for C3: 6·(3·25+1) + 9·(4·25+1) + 1·(6·25+1)).
    """

    def __init__(self, table: tuple[tuple[int, ...], ...], kernel_size: int) -> None:
        super().__init__()
        sizes = sorted({len(row) for row in table})
        self.sizes = sizes
        self.convs = nn.ModuleList()
        order = []
        for n in sizes:
            rows = [i for i, row in enumerate(table) if len(row) == n]
            order += rows
            index = torch.tensor([c for i in rows for c in table[i]])
            self.register_buffer(f"index_{n}", index, persistent=False)
            self.convs.append(nn.Conv2d(n * len(rows), len(rows), kernel_size, groups=len(rows)))
        # position of each output map in the concatenation of the groups
        self.register_buffer("inverse", torch.argsort(torch.tensor(order)), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outs = [
            conv(x.index_select(1, getattr(self, f"index_{n}"))) for n, conv in zip(self.sizes, self.convs)
        ]
        return torch.cat(outs, dim=1).index_select(1, self.inverse)


class LeNet5(LineageModel):
    """LeNet-5: C1-S2-C3-S4-C5-F6-output, classic (paper) or modern (ReLU, max-pool)."""

    def __init__(
        self,
        *,
        num_classes: int = 10,
        in_chans: int = 1,
        act_layer: Callable[[], nn.Module] = ScaledTanh,
        classic: bool = True,
        pad_input: bool = False,
    ) -> None:
        # With pad_input the model takes 28×28 digits and pads them to 32×32 itself, as the
        # paper did with the 20×20 MNIST digits centred in a 32×32 field.
        size = 28 if pad_input else 32
        super().__init__(
            in_chans=in_chans, num_classes=num_classes, input_size=(in_chans, size, size), fixed_size=True
        )
        self.pad_input = pad_input
        self.classic = classic
        self.c1 = nn.Conv2d(in_chans, 6, 5)  # 32 → 28
        self.act1 = act_layer()
        self.s2 = TrainableSubsample(6) if classic else nn.MaxPool2d(2)  # 28 → 14
        self.act2 = act_layer() if classic else nn.Identity()
        self.c3 = PartialConv(C3_TABLE, 5) if classic else nn.Conv2d(6, 16, 5)  # 14 → 10
        self.act3 = act_layer()
        self.s4 = TrainableSubsample(16) if classic else nn.MaxPool2d(2)  # 10 → 5
        self.act4 = act_layer() if classic else nn.Identity()
        self.c5 = nn.Conv2d(16, 120, 5)  # 5 → 1: a convolution, fully connected only at 32×32 input
        self.act5 = act_layer()
        self.f6 = nn.Linear(120, 84)
        self.act6 = act_layer()
        self.fc = nn.Linear(84, num_classes) if num_classes > 0 else nn.Identity()
        self.feature_info = [
            dict(module="c1", num_chs=6, reduction=1),
            dict(module="s2", num_chs=6, reduction=2),
            dict(module="c3", num_chs=16, reduction=2),
            dict(module="s4", num_chs=16, reduction=4),
            dict(module="c5", num_chs=120, reduction=32),  # one position seeing the whole 32×32 input
        ]
        if classic:
            self._lecun_init()

    def _lecun_init(self) -> None:
        # Appendix C: weights uniform in ±2.4/F_i, F_i the fan-in of the unit.
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                fan_in = m.weight[0].numel()
                nn.init.uniform_(m.weight, -2.4 / fan_in, 2.4 / fan_in)
                nn.init.zeros_(m.bias)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        if self.pad_input:
            x = F.pad(x, (2, 2, 2, 2), mode="replicate")  # 28 → 32, padded with the border (background)
        x = self.act2(self.s2(self.act1(self.c1(x))))
        x = self.act4(self.s4(self.act3(self.c3(x))))
        return self.act5(self.c5(x))  # (B, 120, 1, 1)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = self.act6(self.f6(torch.flatten(x, 1)))
        return x if pre_logits else self.fc(x)

    def get_classifier(self) -> nn.Module:
        return self.fc

    def reset_classifier(self, num_classes: int) -> None:
        self.num_classes = num_classes
        self.fc = nn.Linear(84, num_classes) if num_classes > 0 else nn.Identity()


_LENET = dict(
    family="lenet",
    year=1998,
    paper="Gradient-Based Learning Applied to Document Recognition",
    authors=("LeCun", "Bottou", "Bengio", "Haffner"),
    venue="Proc. IEEE 86(11)",
    venue_year=1998,
    input_size=(1, 32, 32),
    num_classes=10,
)


@register_model(
    **_LENET,
    key_idea="Shared-weight convolutions and trainable subsampling learn features end to end from pixels.",
    ref_params=60_850,
    ref_params_source="hand count: the paper's 60,000 trainable parameters + 850 for the linear output layer",
    notes="Output layer is a trainable linear layer instead of the paper's fixed RBF codes. "
    "pad_input=True takes 1x28x28 MNIST digits and pads them to 32x32.",
)
def lenet5(*, num_classes: int = 10, in_chans: int = 1, pad_input: bool = False) -> LeNet5:
    """Return LeNet-5 as in the paper (scaled tanh, trainable subsampling, C3 connection table)."""
    return LeNet5(num_classes=num_classes, in_chans=in_chans, pad_input=pad_input)


@register_model(
    **_LENET,
    key_idea="LeNet-5 as taught today: ReLU, max-pooling and a fully connected C3.",
    ref_params=61_706,
    ref_params_source="hand count: 156 + 2,416 + 48,120 + 10,164 + 850",
    notes="Not in the paper: the common modern re-implementation. pad_input=True takes 1x28x28.",
)
def lenet5_modern(*, num_classes: int = 10, in_chans: int = 1, pad_input: bool = False) -> LeNet5:
    """Return LeNet-5 with ReLU, max-pooling and a full C3."""
    return LeNet5(
        num_classes=num_classes, in_chans=in_chans, act_layer=nn.ReLU, classic=False, pad_input=pad_input
    )
