"""Analytic calculators: the arithmetic that the lineage's arguments rest on.

Each function is a formula a reader can check by hand: the output size of a window
operator, the receptive field of a chain of layers, and the cost of the design moves
that shaped the lineage (3×3 stacks instead of large kernels, 1×1 bottlenecks,
depthwise-separable convolutions).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "conv_output_size",
    "LayerSpec",
    "receptive_field",
    "conv_cost",
    "depthwise_separable_cost",
    "bottleneck_cost",
    "kxk_vs_3x3_stack",
    "ConvCost",
]


def conv_output_size(
    size: int, kernel: int, stride: int = 1, padding: int = 0, dilation: int = 1, ceil_mode: bool = False
) -> int:
    """Return the output size ⌊(n + 2p − d·(k−1) − 1)/s⌋ + 1 of a convolution or pooling layer (⌈·⌉ with ceil_mode).

    With ceil_mode (pooling), a last window that would start in the right padding is
    dropped, as PyTorch does.
    """
    for name, v, lo in (
        ("size", size, 1),
        ("kernel", kernel, 1),
        ("stride", stride, 1),
        ("dilation", dilation, 1),
    ):
        if not isinstance(v, int) or v < lo:
            raise ValueError(f"{name} must be an integer >= {lo}, got {v!r}")
    if padding < 0:
        raise ValueError(f"padding must be >= 0, got {padding}")
    span = dilation * (kernel - 1) + 1
    if size + 2 * padding < span:
        raise ValueError(
            f"input of size {size} with padding {padding} is smaller than the kernel's span {span}"
        )
    num = size + 2 * padding - span
    out = (math.ceil(num / stride) if ceil_mode else num // stride) + 1
    if ceil_mode and (out - 1) * stride >= size + padding:
        out -= 1
    return out


@dataclass(frozen=True)
class LayerSpec:
    """A window layer in a chain: kernel, stride, padding and dilation (square)."""

    kernel: int
    stride: int = 1
    padding: int = 0
    dilation: int = 1


@dataclass(frozen=True)
class RFStep:
    """Receptive field after one layer: size r, jump j (effective stride), start (centre of the first unit)."""

    r: int
    j: int
    start: float


def receptive_field(layers: Sequence[LayerSpec | tuple[int, ...]]) -> list[RFStep]:
    """Return the receptive field after each layer of a chain: r' = r + (k−1)·d·j, j' = j·s, start' = start + ((k−1)·d/2 − p)·j."""
    r, j, start = 1, 1, 0.0
    out = []
    for spec in layers:
        spec = spec if isinstance(spec, LayerSpec) else LayerSpec(*spec)
        r = r + (spec.kernel - 1) * spec.dilation * j
        start = start + ((spec.kernel - 1) * spec.dilation / 2 - spec.padding) * j
        j = j * spec.stride
        out.append(RFStep(r, j, start))
    return out


@dataclass(frozen=True)
class ConvCost:
    """Parameters (weights, no bias) and multiply-accumulates per output position of a design."""

    params: int
    macs_per_position: int

    def ratio(self, other: ConvCost) -> float:
        """Return how many times cheaper (in MACs) this design is than ``other``."""
        return other.macs_per_position / self.macs_per_position


def conv_cost(c_in: int, c_out: int, kernel: int, groups: int = 1) -> ConvCost:
    """Return the cost of a k×k convolution: k²·C_in·C_out/groups weights and MACs per output position."""
    if c_in % groups or c_out % groups:
        raise ValueError(f"channels ({c_in}, {c_out}) must divide by groups={groups}")
    p = kernel * kernel * c_in * c_out // groups
    return ConvCost(p, p)


def depthwise_separable_cost(c_in: int, c_out: int, kernel: int) -> ConvCost:
    """Return the cost of a depthwise k×k convolution followed by a pointwise 1×1: k²·C_in + C_in·C_out.

    Against a standard convolution the ratio is 1/C_out + 1/k², 8-9× fewer for k = 3
    (Howard et al. 2017, §3.1).
    """
    p = kernel * kernel * c_in + c_in * c_out
    return ConvCost(p, p)


def bottleneck_cost(c_in: int, c_mid: int, c_out: int, kernel: int) -> ConvCost:
    """Return the cost of a 1×1 reduction to C_mid followed by a k×k convolution (GoogLeNet's branches)."""
    p = c_in * c_mid + kernel * kernel * c_mid * c_out
    return ConvCost(p, p)


def kxk_vs_3x3_stack(channels: int, kernel: int) -> tuple[ConvCost, ConvCost, int]:
    """Return (one k×k, a stack of 3×3s with the same receptive field, the stack's depth) for C→C convolutions.

    A stack of n 3×3 layers sees 2n+1 pixels, so k = 5 needs two (18C² against 25C²)
    and k = 7 three (27C² against 49C²) (Simonyan & Zisserman 2015, §2.3).
    """
    if kernel < 3 or kernel % 2 == 0:
        raise ValueError(f"kernel must be an odd size >= 3, got {kernel}")
    n = (kernel - 1) // 2
    single = conv_cost(channels, channels, kernel)
    stack = ConvCost(n * 9 * channels * channels, n * 9 * channels * channels)
    return single, stack, n
