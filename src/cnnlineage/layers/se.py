"""Squeeze-and-Excitation (Hu et al., 2018, arXiv:1709.01507): channel gates from global context."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn as nn

__all__ = ["SqueezeExcite"]


class SqueezeExcite(nn.Module):
    """Return ``x * gate(fc2(act(fc1(avgpool(x)))))``, the SE block with 1x1 convolutions ``fc1``/``fc2``.

    ``rd_channels`` is the squeezed width (C / r; the paper uses r = 16). The parameter
    names (``fc1``, ``fc2``) match torchvision's SqueezeExcitation and timm's SEModule.
    """

    def __init__(
        self,
        channels: int,
        rd_channels: int,
        *,
        act_layer: Callable[..., nn.Module] = nn.ReLU,
        gate_layer: Callable[..., nn.Module] = nn.Sigmoid,
    ) -> None:
        super().__init__()
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(channels, rd_channels, 1)
        self.act = act_layer()
        self.fc2 = nn.Conv2d(rd_channels, channels, 1)
        self.gate = gate_layer()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.gate(self.fc2(self.act(self.fc1(self.avgpool(x)))))  # (B, C, 1, 1)
        return x * s
