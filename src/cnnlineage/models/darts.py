"""DARTS — Liu, Simonyan & Yang, "DARTS: Differentiable Architecture Search", ICLR 2019,
arXiv:1806.09055.

A network is a stack of two kinds of cell, *normal* (keeps the resolution) and
*reduction* (halves it, at 1/3 and 2/3 of the depth). A cell is a small directed
acyclic graph: two inputs (the outputs of the two previous cells), four intermediate
nodes, each the sum of two operations applied to earlier nodes, and an output that
concatenates the intermediate nodes. The search (``cnnlineage.search.darts``) relaxes
the choice of operation on every edge to a softmax mixture and learns the mixture
weights by gradient descent; the *genotype* kept afterwards names, for each node, its
two strongest incoming edges and their operations. This module holds the operation set
of the paper (§2.1, §3.1.1), the genotype, and the network built from a genotype.

``darts_v2`` is the paper's second-order CIFAR-10 cell (Fig. 4-5; Table 1: 3.3M
parameters, 2.76 ± 0.09% test error with cutout and auxiliary towers) at its evaluation
size: 20 cells, 36 initial channels.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from ..layers.drop_path import drop_path
from ..registry import register_model
from ._base import LineageModel

__all__ = [
    "PRIMITIVES",
    "DartsCell",
    "DartsNetwork",
    "FactorizedReduce",
    "Genotype",
    "GENOTYPES",
    "make_op",
]

# The operation set of §3.1.1, in the order of the authors' code ("none" is the zero op).
PRIMITIVES: tuple[str, ...] = (
    "none",
    "max_pool_3x3",
    "avg_pool_3x3",
    "skip_connect",
    "sep_conv_3x3",
    "sep_conv_5x5",
    "dil_conv_3x3",
    "dil_conv_5x5",
)


# --------------------------------------------------------------------------- operations
class ReLUConvBN(nn.Sequential):
    """ReLU → conv (no bias) → BN: the order DARTS uses for every convolution (§3.1.1)."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, padding: int, *, affine: bool = True):
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_out, kernel, stride, padding, bias=False),
            nn.BatchNorm2d(c_out, affine=affine),
        )


class DilConv(nn.Sequential):
    """ReLU → depthwise (optionally dilated) conv → pointwise 1x1 → BN."""

    def __init__(
        self, c_in: int, c_out: int, kernel: int, stride: int, padding: int, dilation: int, *, affine: bool
    ):
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_in, kernel, stride, padding, dilation=dilation, groups=c_in, bias=False),
            nn.Conv2d(c_in, c_out, 1, bias=False),
            nn.BatchNorm2d(c_out, affine=affine),
        )


class SepConv(nn.Sequential):
    """A separable convolution applied twice, as in NASNet's search space (the paper's "sep_conv")."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, padding: int, *, affine: bool):
        super().__init__(
            DilConv(c_in, c_in, kernel, stride, padding, 1, affine=affine),
            DilConv(c_in, c_out, kernel, 1, padding, 1, affine=affine),
        )


class Zero(nn.Module):
    """The "none" operation: zeros of the output's shape (strided when the edge reduces)."""

    def __init__(self, stride: int) -> None:
        super().__init__()
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride == 1:
            return x.mul(0.0)
        return x[:, :, :: self.stride, :: self.stride].mul(0.0)


class FactorizedReduce(nn.Module):
    """Halve the resolution without losing half the pixels: two 1x1 stride-2 convs, one shifted by a pixel.

    Their outputs (``c_out // 2`` channels each) are concatenated, then batch-normalised.
    The input's height and width must be even.
    """

    def __init__(self, c_in: int, c_out: int, *, affine: bool = True) -> None:
        super().__init__()
        if c_out % 2:
            raise ValueError(f"FactorizedReduce needs an even number of output channels, got {c_out}")
        self.relu = nn.ReLU(inplace=False)
        self.conv_1 = nn.Conv2d(c_in, c_out // 2, 1, stride=2, bias=False)
        self.conv_2 = nn.Conv2d(c_in, c_out // 2, 1, stride=2, bias=False)
        self.bn = nn.BatchNorm2d(c_out, affine=affine)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(x)
        return self.bn(torch.cat([self.conv_1(x), self.conv_2(x[:, :, 1:, 1:])], dim=1))


def make_op(name: str, channels: int, stride: int, *, affine: bool = True) -> nn.Module:
    """Return the operation ``name`` of :data:`PRIMITIVES` on ``channels`` channels with ``stride``."""
    c = channels
    if name == "none":
        return Zero(stride)
    if name == "max_pool_3x3":
        return nn.MaxPool2d(3, stride=stride, padding=1)
    if name == "avg_pool_3x3":
        return nn.AvgPool2d(3, stride=stride, padding=1, count_include_pad=False)
    if name == "skip_connect":
        return nn.Identity() if stride == 1 else FactorizedReduce(c, c, affine=affine)
    if name in ("sep_conv_3x3", "sep_conv_5x5"):
        k = int(name[-1])
        return SepConv(c, c, k, stride, k // 2, affine=affine)
    if name in ("dil_conv_3x3", "dil_conv_5x5"):
        k = int(name[-1])
        return DilConv(c, c, k, stride, 2 * (k // 2), 2, affine=affine)  # dilation 2: a 5x5 / 9x9 field
    raise ValueError(f"unknown DARTS operation {name!r}; expected one of {', '.join(PRIMITIVES)}")


# --------------------------------------------------------------------------- genotype
@dataclass(frozen=True)
class Genotype:
    """A derived cell pair: for each intermediate node, two (operation, input index) edges.

    Input indices: 0 and 1 are the cell's two inputs, 2.. the intermediate nodes in order.
    ``*_concat`` lists the nodes whose outputs are concatenated into the cell's output.
    """

    normal: tuple[tuple[str, int], ...]
    normal_concat: tuple[int, ...]
    reduce: tuple[tuple[str, int], ...]
    reduce_concat: tuple[int, ...]

    def __post_init__(self) -> None:
        for kind in ("normal", "reduce"):
            edges, concat = getattr(self, kind), getattr(self, f"{kind}_concat")
            if not edges or len(edges) % 2:
                raise ValueError(f"genotype {kind}: expected two edges per node, got {len(edges)} edges")
            for i, (op, src) in enumerate(edges):
                node = 2 + i // 2
                if op not in PRIMITIVES or op == "none":
                    raise ValueError(f"genotype {kind}: unknown operation {op!r} (edge {i})")
                if not 0 <= src < node:
                    raise ValueError(
                        f"genotype {kind}: edge {i} of node {node} reads node {src}, not < {node}"
                    )
            steps = len(edges) // 2
            if not concat or any(not 0 <= c < steps + 2 for c in concat):
                raise ValueError(f"genotype {kind}_concat {list(concat)} must name nodes 0..{steps + 1}")

    @property
    def steps(self) -> int:
        """Return the number of intermediate nodes per cell."""
        return len(self.normal) // 2

    def to_dict(self) -> dict[str, Any]:
        """Return the genotype as a JSON-serialisable dict."""
        return {
            "normal": [[op, i] for op, i in self.normal],
            "normal_concat": list(self.normal_concat),
            "reduce": [[op, i] for op, i in self.reduce],
            "reduce_concat": list(self.reduce_concat),
        }

    def to_json(self) -> str:
        """Return the genotype as one line of JSON (usable as ``model.kwargs.genotype``)."""
        return json.dumps(self.to_dict(), separators=(",", ":"))

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Genotype:
        """Return the genotype described by a dict with normal, normal_concat, reduce and reduce_concat."""
        try:
            return cls(
                normal=tuple((str(op), int(i)) for op, i in d["normal"]),
                normal_concat=tuple(int(i) for i in d["normal_concat"]),
                reduce=tuple((str(op), int(i)) for op, i in d["reduce"]),
                reduce_concat=tuple(int(i) for i in d["reduce_concat"]),
            )
        except (KeyError, TypeError, ValueError) as e:
            if isinstance(e, ValueError) and str(e).startswith("genotype"):
                raise
            raise ValueError(
                "a DARTS genotype needs normal, normal_concat, reduce and reduce_concat "
                f"(lists of [operation, input] pairs and of node indices); got {dict(d)!r:.200}"
            ) from None

    @classmethod
    def parse(cls, spec: Genotype | Mapping[str, Any] | str | Path) -> Genotype:
        """Return a genotype from a Genotype, a dict, a published name, a JSON string or a JSON file."""
        if isinstance(spec, Genotype):
            return spec
        if isinstance(spec, Mapping):
            return cls.from_dict(spec)
        text = str(spec).strip()
        if text in GENOTYPES:
            return GENOTYPES[text]
        if text.startswith("{"):
            try:
                return cls.from_dict(json.loads(text))
            except json.JSONDecodeError as e:
                raise ValueError(f"genotype is not valid JSON ({e.msg} at column {e.colno})") from None
        path = Path(text)
        if path.is_file():
            try:
                return cls.from_dict(json.loads(path.read_text()))
            except (json.JSONDecodeError, UnicodeDecodeError):
                raise ValueError(f"genotype file {path} is not JSON written by `cnnlineage search`") from None
        raise ValueError(
            f"genotype {text!r:.80} is neither a published name ({', '.join(GENOTYPES)}), "
            "a JSON genotype, nor an existing genotype.json file"
        )


def _g(normal: Sequence[tuple[str, int]], reduce: Sequence[tuple[str, int]]) -> Genotype:
    return Genotype(tuple(normal), (2, 3, 4, 5), tuple(reduce), (2, 3, 4, 5))


# The cells the paper reports (Fig. 4 and 5), as released with its code.
GENOTYPES: dict[str, Genotype] = {
    "darts_v1": _g(  # first-order search
        [
            ("sep_conv_3x3", 1),
            ("sep_conv_3x3", 0),
            ("skip_connect", 0),
            ("sep_conv_3x3", 1),
            ("skip_connect", 0),
            ("sep_conv_3x3", 1),
            ("sep_conv_3x3", 0),
            ("skip_connect", 2),
        ],
        [
            ("max_pool_3x3", 0),
            ("max_pool_3x3", 1),
            ("skip_connect", 2),
            ("max_pool_3x3", 0),
            ("max_pool_3x3", 0),
            ("skip_connect", 2),
            ("skip_connect", 2),
            ("avg_pool_3x3", 0),
        ],
    ),  # fmt: skip
    "darts_v2": _g(  # second-order search
        [
            ("sep_conv_3x3", 0),
            ("sep_conv_3x3", 1),
            ("sep_conv_3x3", 0),
            ("sep_conv_3x3", 1),
            ("sep_conv_3x3", 1),
            ("skip_connect", 0),
            ("skip_connect", 0),
            ("dil_conv_3x3", 2),
        ],
        [
            ("max_pool_3x3", 0),
            ("max_pool_3x3", 1),
            ("skip_connect", 2),
            ("max_pool_3x3", 1),
            ("max_pool_3x3", 0),
            ("skip_connect", 2),
            ("skip_connect", 2),
            ("max_pool_3x3", 1),
        ],
    ),  # fmt: skip
}


# --------------------------------------------------------------------------- network
class DartsCell(nn.Module):
    """A cell built from a genotype: preprocess both inputs to ``channels``, then the node DAG."""

    def __init__(
        self,
        genotype: Genotype,
        c_prev_prev: int,
        c_prev: int,
        channels: int,
        *,
        reduction: bool,
        reduction_prev: bool,
        drop_path_rate: float = 0.0,
    ) -> None:
        super().__init__()
        # A reduction just before: s0 has twice the resolution of s1, so it is reduced too.
        self.preprocess0 = (
            FactorizedReduce(c_prev_prev, channels)
            if reduction_prev
            else ReLUConvBN(c_prev_prev, channels, 1, 1, 0)
        )
        self.preprocess1 = ReLUConvBN(c_prev, channels, 1, 1, 0)
        edges = genotype.reduce if reduction else genotype.normal
        self.concat = list(genotype.reduce_concat if reduction else genotype.normal_concat)
        self.indices = [i for _, i in edges]
        # Edges from the cell inputs stride 2 in a reduction cell (§2.1).
        self.ops = nn.ModuleList(make_op(op, channels, 2 if reduction and i < 2 else 1) for op, i in edges)
        if not 0.0 <= drop_path_rate < 1.0:
            raise ValueError(f"drop_path_rate must be in [0, 1), got {drop_path_rate}")
        self.drop_path_rate = drop_path_rate
        self.out_channels = len(self.concat) * channels

    def forward(self, s0: torch.Tensor, s1: torch.Tensor) -> torch.Tensor:
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        for n in range(len(self.ops) // 2):
            outs = []
            for e in (2 * n, 2 * n + 1):
                h = self.ops[e](states[self.indices[e]])
                if self.drop_path_rate > 0 and not isinstance(self.ops[e], nn.Identity):
                    h = drop_path(h, self.drop_path_rate, self.training)  # identity edges are never dropped
                outs.append(h)
            states.append(outs[0] + outs[1])
        return torch.cat([states[i] for i in self.concat], dim=1)  # (B, len(concat)*C, H, W)


class AuxiliaryHead(nn.Module):
    """The CIFAR auxiliary tower at 2/3 depth, for an 8x8 feature map (weight 0.4 in the paper's training)."""

    def __init__(self, channels: int, num_classes: int) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.ReLU(inplace=False),
            nn.AvgPool2d(5, stride=3, padding=0, count_include_pad=False),  # 8x8 -> 2x2
            nn.Conv2d(channels, 128, 1, bias=False),
            nn.BatchNorm2d(128),
            nn.ReLU(inplace=False),
            nn.Conv2d(128, 768, 2, bias=False),  # 2x2 -> 1x1
            nn.BatchNorm2d(768),
            nn.ReLU(inplace=False),
        )
        self.classifier = nn.Linear(768, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.features(x), 1))


class DartsNetwork(LineageModel):
    """The CIFAR-style evaluation network: 3x3 stem of 3C channels, ``layers`` cells, pool, fc.

    Channels double (and resolution halves) at the reduction cells at 1/3 and 2/3 depth.
    With ``auxiliary`` the network returns ``(logits, aux_logits)`` in training mode.
    """

    aux_loss_weight = 0.4  # §A.2: auxiliary towers with weight 0.4

    def __init__(
        self,
        genotype: Genotype,
        *,
        channels: int = 36,
        layers: int = 20,
        num_classes: int = 10,
        in_chans: int = 3,
        input_size: tuple[int, int, int] = (3, 32, 32),
        auxiliary: bool = False,
        drop_path_rate: float = 0.0,
        stem_multiplier: int = 3,
    ) -> None:
        if layers < 3:
            raise ValueError(
                f"a DARTS network needs at least 3 cells (two are reduction cells), got {layers}"
            )
        # Each reduction halves the size; FactorizedReduce needs even sides: multiples of 4.
        super().__init__(
            in_chans=in_chans,
            num_classes=num_classes,
            input_size=(in_chans, *input_size[1:]),
            min_size=4,
            size_multiple=4,
        )
        self.genotype = genotype
        self.layers = layers
        c_curr = stem_multiplier * channels
        self.stem = nn.Sequential(
            nn.Conv2d(in_chans, c_curr, 3, padding=1, bias=False), nn.BatchNorm2d(c_curr)
        )
        c_pp, c_p, c = c_curr, c_curr, channels
        self.cells = nn.ModuleList()
        self.feature_info = []
        reduction_prev, reduction_at = False, {layers // 3, 2 * layers // 3}
        c_aux = c_p
        for i in range(layers):
            reduction = i in reduction_at
            if reduction:
                c *= 2
            cell = DartsCell(
                genotype, c_pp, c_p, c, reduction=reduction, reduction_prev=reduction_prev,
                drop_path_rate=drop_path_rate,
            )  # fmt: skip
            self.cells.append(cell)
            reduction_prev = reduction
            c_pp, c_p = c_p, cell.out_channels
            if i == 2 * layers // 3:
                c_aux = c_p
            if i + 1 in reduction_at or i == layers - 1:
                self.feature_info.append(
                    dict(module=f"cells.{i}", num_chs=c_p, reduction=2 ** sum(r <= i for r in reduction_at))
                )
        self.aux_head = AuxiliaryHead(c_aux, num_classes) if auxiliary and num_classes > 0 else None
        self.training_only_modules = ("aux_head",) if self.aux_head is not None else ()
        self.global_pool = nn.AdaptiveAvgPool2d(1)
        self.num_features = c_p
        self.classifier = nn.Linear(c_p, num_classes) if num_classes > 0 else nn.Identity()
        self._aux: torch.Tensor | None = None

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        s0 = s1 = self.stem(x)
        self._aux = None
        for i, cell in enumerate(self.cells):
            s0, s1 = s1, cell(s0, s1)
            if self.aux_head is not None and self.training and i == 2 * self.layers // 3:
                self._aux = self.aux_head(s1)
        return s1

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = torch.flatten(self.global_pool(x), 1)
        return x if pre_logits else self.classifier(x)

    def get_classifier(self) -> nn.Module:
        return self.classifier

    def reset_classifier(self, num_classes: int) -> None:
        self.num_classes = num_classes
        self.classifier = nn.Linear(self.num_features, num_classes) if num_classes > 0 else nn.Identity()
        if self.aux_head is not None:
            self.aux_head = AuxiliaryHead(self.aux_head.features[2].in_channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        logits = super().forward(x)
        if self._aux is not None:
            aux, self._aux = self._aux, None
            return logits, aux
        return logits


# --------------------------------------------------------------------------- registry
_PAPER = dict(
    family="darts",
    year=2018,
    paper="DARTS: Differentiable Architecture Search",
    authors=("Liu", "Simonyan", "Yang"),
    venue="ICLR",
    venue_year=2019,
    arxiv="1806.09055",
    input_size=(3, 32, 32),
    num_classes=10,
)


@register_model(
    **_PAPER,
    key_idea="Relax the choice of operation on each edge of a cell to a softmax mixture and learn it by gradient descent.",
    ref_params=3_349_342,
    ref_params_source="paper Table 1: 3.3M (CIFAR-10, 20 cells, 36 channels, auxiliary tower excluded); "
    "hand count of this build: 3,349,342",
    notes="Cell of the second-order search (Fig. 4-5). The paper trains 600 epochs with cutout, "
    "drop path 0.2 (ramped linearly; here drop_path_rate is constant) and an auxiliary tower of "
    "weight 0.4 (auxiliary=True): 2.76 ± 0.09% CIFAR-10 test error. Any searched genotype builds "
    "with `darts(genotype=...)`.",
)
def darts_v2(
    *,
    num_classes: int = 10,
    in_chans: int = 3,
    channels: int = 36,
    layers: int = 20,
    auxiliary: bool = False,
    drop_path_rate: float = 0.0,
) -> DartsNetwork:
    """Return the paper's DARTS (second order) CIFAR-10 network."""
    return DartsNetwork(
        GENOTYPES["darts_v2"], channels=channels, layers=layers, num_classes=num_classes,
        in_chans=in_chans, auxiliary=auxiliary, drop_path_rate=drop_path_rate,
    )  # fmt: skip


@register_model(
    **_PAPER,
    key_idea="A network from any DARTS genotype (e.g. one `cnnlineage search darts` derived): cells stacked as in the paper.",
    ref_params=246_106,
    ref_params_source="hand count of this build (tests/models/test_darts.py): darts_v2 cell, 8 cells, 16 channels, 10 classes",
    notes="Laptop-scale default (8 cells, 16 channels) for searched genotypes: "
    "`cnnlineage train darts --set model.kwargs.genotype=runs/search/genotype.json`.",
)
def darts(
    *,
    genotype: Genotype | Mapping[str, Any] | str = "darts_v2",
    num_classes: int = 10,
    in_chans: int = 3,
    channels: int = 16,
    layers: int = 8,
    auxiliary: bool = False,
    drop_path_rate: float = 0.0,
) -> DartsNetwork:
    """Return a DARTS network built from ``genotype`` (a published name, JSON text, a dict or a genotype.json)."""
    return DartsNetwork(
        Genotype.parse(genotype), channels=channels, layers=layers, num_classes=num_classes,
        in_chans=in_chans, auxiliary=auxiliary, drop_path_rate=drop_path_rate,
    )  # fmt: skip
