"""LeNet-1, LeNet-4 and LeNet-5 — the Bell Labs convolutional networks for digits.

LeNet-5: LeCun, Bottou, Bengio & Haffner, "Gradient-Based Learning Applied to Document
Recognition", Proc. IEEE 86(11), 1998, §II-B. LeNet-1 and LeNet-4: the same paper, §III-C,
which compares them with LeNet-5 on MNIST. LeNet-1 is the network of LeCun, Boser, Denker,
Henderson, Howard, Hubbard & Jackel, "Handwritten Digit Recognition with a Back-Propagation
Network", NIPS 1989, which gives its layers and connection table in full.

The networks that fixed the pattern of every CNN after them: local receptive fields, shared
weights and spatial subsampling, alternating convolution (C) and subsampling (S) layers
ending in fully connected layers, trained end to end by back-propagation. All three are one
class, :class:`LeNet`, built from a :class:`LeNetSpec`: 5×5 convolutions, scaled tanh
``1.7159·tanh(2a/3)`` (1998, Appendix A) and trainable subsampling (the sum of a 2×2 window
times one coefficient plus one bias per map), with partial connection tables between S2 and C3.

``lenet1`` follows the 1989 paper: a 28×28 input, H1 4 maps of 24×24, H2 4 of 12×12, H3 12
of 8×8 connected by Table 1 (each H3 map reads one or two H2 maps), H4 12 of 4×4, and 10
outputs fully connected to H4: 2,578 parameters and 98,442 connections, the paper's counts.

``lenet4`` follows 1998 §III-C: a 32×32 input, 4 C1 maps, 8 S2 maps "connected in pairs to
each first-layer feature map", 16 C3 maps, 16 S4 maps, a fully connected layer of 120 units and
10 outputs. The paper publishes no C3 table; ours is chosen so the connections match its
"about 260,000". Its "about 17,000 free parameters" cannot be matched by any table: the
120-unit layer fully connected to 16 maps of 5×5 alone has 48,120; ours has 50,698 in all.

``lenet5`` follows §II-B: 32×32 input, C3's partial connection table (Table I), C5 with 120
maps and F6 with 84 units; its 60,000 trainable parameters match the paper's count.

One simplification throughout: the papers' output units are squashed (LeNet-5's are 10
Euclidean RBF units with fixed, hand-drawn 7×12 codes); we use a trainable linear output
layer so that the models train with cross-entropy like every other model here (LeNet-1 and
LeNet-4 keep their parameter counts; LeNet-5's output layer has 850).

``lenet5_modern`` is the version most courses teach: ReLU, max-pooling and a full C3.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..registry import register_model
from ._base import LineageModel

__all__ = ["LeNet", "LeNetSpec", "ScaledTanh", "TrainableSubsample", "PartialConv"]


class ScaledTanh(nn.Module):
    """Return ``A·tanh(S·x)`` with A = 1.7159 and S = 2/3 (LeCun 1998, Appendix A): f(±1) = ±1."""

    def __init__(self, amplitude: float = 1.7159, slope: float = 2.0 / 3.0) -> None:
        super().__init__()
        self.amplitude = amplitude
        self.slope = slope

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.amplitude * torch.tanh(self.slope * x)


class TrainableSubsample(nn.Module):
    """Return ``w_m · sum(2×2 window) + b_m`` per output map m: LeNet's S-layers (two parameters per map).

    With ``copies > 1`` each input map feeds that many output maps, each with its own
    coefficient and bias: LeNet-4's S2, eight maps "connected in pairs" to four C1 maps.
    """

    def __init__(self, channels: int, copies: int = 1) -> None:
        super().__init__()
        self.copies = copies
        self.weight = nn.Parameter(torch.ones(channels * copies))
        self.bias = nn.Parameter(torch.zeros(channels * copies))
        # output map m reads input map m // copies
        self.register_buffer("source", torch.arange(channels).repeat_interleave(copies), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = F.avg_pool2d(x, 2) * 4.0  # sum of each non-overlapping 2×2 window
        if self.copies > 1:
            s = s.index_select(1, self.source)
        return s * self.weight.view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1)


class PartialConv(nn.Module):
    """A convolution in which each output map sees only the input maps its table row names.

    Output maps with the same number of inputs form one grouped convolution over the
    gathered input channels, so the parameters are exactly those of the table
    (1,516 for LeNet-5's C3: 6·(3·25+1) + 9·(4·25+1) + 1·(6·25+1)).
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


@dataclass(frozen=True)
class LeNetSpec:
    """One LeNet as data. Every convolution is 5×5 and every subsampling 2×2, as in all three papers."""

    input_side: int  # side of the paper's input field: 28 (LeNet-1) or 32 (LeNet-4, LeNet-5)
    c1: int  # first-layer feature maps
    s2_copies: int  # S2 maps per C1 map (LeNet-4: 2, "connected in pairs")
    c3: tuple[tuple[int, ...], ...]  # per C3 map, the S2 maps it reads (the S2-C3 connection table)
    c5: int = 0  # maps of a 5×5 convolution over S4 (LeNet-5's C5); 0: none
    hidden: tuple[int, ...] = ()  # widths of the fully connected layers before the output


# LeNet-1 (LeCun et al. 1989, Table 1): which H2 maps (0-3) feed each H3 map (0-11). Each H3 map
# reads one or two H2 maps, and the net is "two almost independent modules": H3 maps 0-5 read
# H2 maps 0-1, maps 6-11 read maps 2-3. 20 links: 20·25 weights + 12 biases = 512 parameters.
H3_TABLE: tuple[tuple[int, ...], ...] = (
    (0,), (0, 1), (0, 1), (1,), (0, 1), (0, 1),
    (2,), (2, 3), (2, 3), (3,), (2, 3), (2, 3),
)  # fmt: skip

# LeNet-4: the 1998 paper gives no C3 table, only the map counts. Ours: S2 maps 2k and 2k+1 are
# the two subsamplings of C1 map k; C3 maps 0-7 read three cyclically contiguous S2 maps, maps
# 8-15 every other one, so every S2 map feeds six C3 maps. 48 links make the network's
# connections 262,306, the paper's "about 260,000" (a full C3 alone would have 321,600).
LENET4_C3_TABLE: tuple[tuple[int, ...], ...] = (
    (0, 1, 2), (1, 2, 3), (2, 3, 4), (3, 4, 5), (4, 5, 6), (5, 6, 7), (6, 7, 0), (7, 0, 1),
    (0, 2, 4), (1, 3, 5), (2, 4, 6), (3, 5, 7), (4, 6, 0), (5, 7, 1), (6, 0, 2), (7, 1, 3),
)  # fmt: skip

# LeNet-5 Table I: which S2 maps (0-5) feed each C3 map (0-15). The first six take three
# contiguous maps, the next nine four (six contiguous, three not), the last all six.
C3_TABLE: tuple[tuple[int, ...], ...] = (
    (0, 1, 2), (1, 2, 3), (2, 3, 4), (3, 4, 5), (4, 5, 0), (5, 0, 1),
    (0, 1, 2, 3), (1, 2, 3, 4), (2, 3, 4, 5), (3, 4, 5, 0), (4, 5, 0, 1), (5, 0, 1, 2),
    (0, 1, 3, 4), (1, 2, 4, 5), (0, 2, 3, 5),
    (0, 1, 2, 3, 4, 5),
)  # fmt: skip

LENET1 = LeNetSpec(input_side=28, c1=4, s2_copies=1, c3=H3_TABLE)
LENET4 = LeNetSpec(input_side=32, c1=4, s2_copies=2, c3=LENET4_C3_TABLE, hidden=(120,))
LENET5 = LeNetSpec(input_side=32, c1=6, s2_copies=1, c3=C3_TABLE, c5=120, hidden=(84,))


class LeNet(LineageModel):
    """C1-S2-C3-S4 [-C5] [-F ...] -output from a :class:`LeNetSpec`: classic (the papers) or modern.

    Layers are named by their place, as LeNet-5's paper names them: c1, s2, c3, s4, then c5
    where the spec has one, then f5/f6 for the fully connected layers and fc for the output.
    LeNet-1's H1-H4 are c1-s4. ``classic=False`` is the modern reading: max-pooling for the
    subsampling layers and a full C3 (``act_layer`` then usually ReLU).
    """

    def __init__(
        self,
        spec: LeNetSpec,
        *,
        num_classes: int = 10,
        in_chans: int = 1,
        act_layer: Callable[[], nn.Module] = ScaledTanh,
        classic: bool = True,
        pad_input: bool = False,
    ) -> None:
        # With pad_input the model takes 28×28 digits and pads them to 32×32 itself, as the
        # 1998 paper did with the 20×20 MNIST digits centred in a 32×32 field.
        side = spec.input_side - 4 if pad_input else spec.input_side
        super().__init__(
            in_chans=in_chans, num_classes=num_classes, input_size=(in_chans, side, side), fixed_size=True
        )
        if not classic and spec.s2_copies != 1:
            raise ValueError(
                f"the modern reading (max-pooling) has one S2 map per C1 map, got s2_copies={spec.s2_copies}; "
                "use classic=True"
            )
        self.spec = spec
        self.pad_input = pad_input
        self.classic = classic
        n1, n2, n3 = spec.c1, spec.c1 * spec.s2_copies, len(spec.c3)
        self.c1 = nn.Conv2d(in_chans, n1, 5)  # 32 → 28 (LeNet-1: 28 → 24)
        self.act1 = act_layer()
        self.s2 = TrainableSubsample(n1, spec.s2_copies) if classic else nn.MaxPool2d(2)  # 28 → 14
        self.act2 = act_layer() if classic else nn.Identity()
        self.c3 = PartialConv(spec.c3, 5) if classic else nn.Conv2d(n2, n3, 5)  # 14 → 10
        self.act3 = act_layer()
        self.s4 = TrainableSubsample(n3) if classic else nn.MaxPool2d(2)  # 10 → 5 (LeNet-1: 8 → 4)
        self.act4 = act_layer() if classic else nn.Identity()
        s4_side = ((spec.input_side - 4) // 2 - 4) // 2
        width = n3 * s4_side**2
        self.feature_info = [
            dict(module="c1", num_chs=n1, reduction=1),
            dict(module="s2", num_chs=n2, reduction=2),
            dict(module="c3", num_chs=n3, reduction=2),
            dict(module="s4", num_chs=n3, reduction=4),
        ]
        layer = 5
        if spec.c5:
            self.c5 = nn.Conv2d(n3, spec.c5, 5)  # 5 → 1: a convolution, fully connected only at 32×32 input
            self.act5 = act_layer()
            width = spec.c5 * (s4_side - 4) ** 2
            # one position seeing the whole input
            self.feature_info.append(dict(module="c5", num_chs=spec.c5, reduction=spec.input_side))
            layer = 6
        self.hidden_layers: list[str] = []
        for n in spec.hidden:  # fully connected: LeNet-4's f5 (120), LeNet-5's f6 (84)
            setattr(self, f"f{layer}", nn.Linear(width, n))
            setattr(self, f"act{layer}", act_layer())
            self.hidden_layers.append(str(layer))
            width, layer = n, layer + 1
        self.num_features = width
        self.fc = nn.Linear(width, num_classes) if num_classes > 0 else nn.Identity()
        if classic:
            self._lecun_init()

    def _lecun_init(self) -> None:
        # 1998 Appendix C: weights uniform in ±2.4/F_i, F_i the fan-in of the unit.
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
        return self.act5(self.c5(x)) if self.spec.c5 else x  # (B, 120, 1, 1) for LeNet-5, else S4's maps

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = torch.flatten(x, 1)
        for i in self.hidden_layers:
            x = getattr(self, f"act{i}")(getattr(self, f"f{i}")(x))
        return x if pre_logits else self.fc(x)

    def get_classifier(self) -> nn.Module:
        return self.fc

    def reset_classifier(self, num_classes: int) -> None:
        self.num_classes = num_classes
        self.fc = nn.Linear(self.num_features, num_classes) if num_classes > 0 else nn.Identity()


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
    family="lenet",
    year=1989,
    paper="Handwritten Digit Recognition with a Back-Propagation Network",
    authors=("LeCun", "Boser", "Denker", "Henderson", "Howard", "Hubbard", "Jackel"),
    venue="NIPS",
    venue_year=1989,
    input_size=(1, 28, 28),
    num_classes=10,
    key_idea="Two shared-weight convolution-subsampling stages read digits from pixels with 2,578 weights.",
    ref_params=2_578,
    ref_params_source="LeCun et al. 1989, p. 402: 2578 independent parameters (hand count in tests/models/test_lenet.py)",
    notes="LeNet-1 of LeCun et al. 1998 §III-C: 1.7% MNIST test error (98.3% top-1) there, with the digits "
    "down-sampled to 16x16 and centred in the 28x28 input; on mnist5k we feed the 28x28 digits as they are. "
    "98,442 connections as the 1989 paper counts them (1998: about 2600 parameters, 100,000 multiply-adds). "
    "H3 follows the paper's Table 1. Output layer linear for cross-entropy (the paper's is squashed), same "
    "1,930 parameters. Shipped recipe (lenet1.yaml, lenet5's): 96.8% held-out top-1 on mnist5k, seed 0.",
)
def lenet1(*, num_classes: int = 10, in_chans: int = 1) -> LeNet:
    """Return LeNet-1 (LeCun et al. 1989): 28×28 input, 4 and 12 feature maps, H3 connected by Table 1."""
    return LeNet(LENET1, num_classes=num_classes, in_chans=in_chans)


@register_model(
    **_LENET,
    key_idea="LeNet-1 widened: paired subsampling maps, 16 C3 maps and a 120-unit hidden layer.",
    ref_params=50_698,
    ref_params_source="hand count (tests/models/test_lenet.py); the paper says about 17,000, which its own "
    "description cannot reach (see notes)",
    notes="1.1% MNIST test error (98.9% top-1) in §III-C. The paper states about 17,000 free parameters and "
    "260,000 connections, but a 120-unit layer fully connected to 16 maps of 5x5 alone has 48,120 parameters. "
    "The C3 table is not published: ours (three S2 maps per C3 map, 48 links) gives 262,306 connections, "
    "matching the stated count. pad_input=True takes 1x28x28 and pads it to 32x32. Shipped recipe "
    "(lenet4.yaml, lenet5's): 98.4% held-out top-1 on mnist5k, seed 0.",
)
def lenet4(*, num_classes: int = 10, in_chans: int = 1, pad_input: bool = False) -> LeNet:
    """Return LeNet-4 as 1998 §III-C describes it (scaled tanh, trainable and paired subsampling, 120 hidden units)."""
    return LeNet(LENET4, num_classes=num_classes, in_chans=in_chans, pad_input=pad_input)


@register_model(
    **_LENET,
    key_idea="Shared-weight convolutions and trainable subsampling learn features end to end from pixels.",
    ref_params=60_850,
    ref_params_source="hand count: the paper's 60,000 trainable parameters + 850 for the linear output layer",
    notes="Output layer is a trainable linear layer instead of the paper's fixed RBF codes. "
    "pad_input=True takes 1x28x28 MNIST digits and pads them to 32x32.",
)
def lenet5(*, num_classes: int = 10, in_chans: int = 1, pad_input: bool = False) -> LeNet:
    """Return LeNet-5 as in the paper (scaled tanh, trainable subsampling, C3 connection table)."""
    return LeNet(LENET5, num_classes=num_classes, in_chans=in_chans, pad_input=pad_input)


@register_model(
    **_LENET,
    key_idea="LeNet-5 as taught today: ReLU, max-pooling and a fully connected C3.",
    ref_params=61_706,
    ref_params_source="hand count: 156 + 2,416 + 48,120 + 10,164 + 850",
    notes="Not in the paper: the common modern re-implementation. pad_input=True takes 1x28x28.",
)
def lenet5_modern(*, num_classes: int = 10, in_chans: int = 1, pad_input: bool = False) -> LeNet:
    """Return LeNet-5 with ReLU, max-pooling and a full C3."""
    return LeNet(
        LENET5,
        num_classes=num_classes,
        in_chans=in_chans,
        act_layer=nn.ReLU,
        classic=False,
        pad_input=pad_input,
    )
