"""Efficient Channel Attention (Wang et al., CVPR 2020, arXiv:1910.03151)."""

from __future__ import annotations

import math

import torch
import torch.nn as nn

__all__ = ["EfficientChannelAttention", "eca_kernel_size"]


def eca_kernel_size(channels: int, gamma: int = 2, b: int = 1) -> int:
    """Return ECA's adaptive 1-D kernel size k = |log2(C)/gamma + b/gamma|, rounded to the nearest odd number (Eq. 12)."""
    t = int(abs((math.log2(channels) + b) / gamma))
    return max(t if t % 2 else t + 1, 1)


class EfficientChannelAttention(nn.Module):
    """Return ``x * sigmoid(conv1d(avgpool(x)))``: SE without dimensionality reduction, local cross-channel interaction."""

    def __init__(self, channels: int, *, kernel_size: int | None = None, gamma: int = 2, b: int = 1) -> None:
        super().__init__()
        k = kernel_size or eca_kernel_size(channels, gamma, b)
        self.kernel_size = k
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.conv = nn.Conv1d(1, 1, kernel_size=k, padding=(k - 1) // 2, bias=False)
        self.gate = nn.Sigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.avgpool(x).flatten(1).unsqueeze(1)  # (B, 1, C)
        y = self.gate(self.conv(y)).transpose(1, 2).unsqueeze(-1)  # (B, C, 1, 1)
        return x * y
