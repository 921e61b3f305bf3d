"""Split attention (Zhang et al., "ResNeSt: Split-Attention Networks", 2020, arXiv:2004.08955).

A grouped convolution produces ``radix`` feature-map splits per cardinal group; their sum
is pooled globally, two 1x1 convolutions turn it into one logit per split and channel, and
a softmax across the splits (the "r-Softmax", §3.1) weights them before they are summed
again. With ``radix = 1`` the softmax becomes a sigmoid gate, i.e. a squeeze-excitation
on the convolution's output.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

from .helpers import make_divisible

__all__ = ["SplitAttention", "radix_softmax"]


def radix_softmax(logits: torch.Tensor, radix: int, cardinality: int) -> torch.Tensor:
    """Return the split weights: a softmax over the ``radix`` splits of each group (a sigmoid if radix = 1).

    ``logits`` is (B, cardinality * radix * C', 1, 1), laid out group-major as ``fc2`` makes
    it; the result is (B, radix * cardinality * C', 1, 1), laid out split-major to match
    the convolution's output channels.
    """
    b = logits.shape[0]
    if radix == 1:
        return torch.sigmoid(logits)
    x = logits.reshape(b, cardinality, radix, -1).transpose(1, 2)  # (B, radix, cardinality, C')
    return torch.softmax(x, dim=1).reshape(b, -1, 1, 1)


class SplitAttention(nn.Module):
    """Return the split-attention convolution of ``x``: ResNeSt's "SplAt" conv with its norm and activation.

    The module names (``conv``, ``bn0``, ``fc1``, ``bn1``, ``fc2``) are those of the
    official ResNeSt code and timm's ``SplitAttn``, so their state_dicts load as they are.
    ``rd_channels`` (the attention bottleneck) defaults to ``max(in * radix * rd_ratio, 32)``
    rounded to a multiple of 8, the paper's reduction factor 4 with a floor of 32.
    In training, a batch of a single image normalises the pooled attention input with the
    running statistics (a batch of one has none of its own).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        stride: int = 1,
        *,
        groups: int = 1,
        radix: int = 2,
        rd_ratio: float = 0.25,
        rd_channels: int | None = None,
        norm_layer: Callable[[int], nn.Module] = nn.BatchNorm2d,
        act_layer: Callable[..., nn.Module] = nn.ReLU,
    ) -> None:
        super().__init__()
        if radix < 1:
            raise ValueError(f"radix must be >= 1, got {radix}")
        self.radix = radix
        self.groups = groups
        mid = out_channels * radix
        rd = rd_channels or make_divisible(in_channels * radix * rd_ratio, 8, min_value=32)
        # each of the radix * groups splits sees its own slice of the input channels
        self.conv = nn.Conv2d(
            in_channels, mid, kernel_size, stride, kernel_size // 2, groups=groups * radix, bias=False
        )
        self.bn0 = norm_layer(mid)
        self.act0 = act_layer()
        self.fc1 = nn.Conv2d(out_channels, rd, 1, groups=groups)
        self.bn1 = norm_layer(rd)
        self.act1 = act_layer()
        self.fc2 = nn.Conv2d(rd, mid, 1, groups=groups)

    def _norm_pooled(self, g: torch.Tensor) -> torch.Tensor:
        # A batch of one pooled vector has no batch statistics (BatchNorm raises on it in training,
        # as in the reference code); normalise it with the running statistics instead, updating nothing.
        bn = self.bn1
        if (
            self.training
            and g.shape[0] == 1
            and isinstance(bn, nn.modules.batchnorm._BatchNorm)
            and bn.running_mean is not None
        ):
            return F.batch_norm(g, bn.running_mean, bn.running_var, bn.weight, bn.bias, False, 0.0, bn.eps)
        return bn(g)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act0(self.bn0(self.conv(x)))  # (B, radix * C, H, W)
        b, rc, h, w = x.shape
        splits = x.reshape(b, self.radix, rc // self.radix, h, w)  # (B, radix, C, H, W)
        gap = splits.sum(dim=1).mean((2, 3), keepdim=True)  # (B, C, 1, 1)
        logits = self.fc2(self.act1(self._norm_pooled(self.fc1(gap))))  # (B, radix * C, 1, 1)
        attn = radix_softmax(logits, self.radix, self.groups)
        attn = attn.reshape(b, self.radix, rc // self.radix, 1, 1)  # (B, radix, C, 1, 1)
        return (splits * attn).sum(dim=1)  # (B, C, H, W)
