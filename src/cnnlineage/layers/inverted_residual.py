"""The inverted residual block with a linear bottleneck (MBConv), as MobileNetV3 and EfficientNet use it.

Sandler et al. 2018 (MobileNetV2, arXiv:1801.04381) §3.3: expand the thin input with a 1×1
convolution, filter it with a k×k depthwise convolution, project it back with a *linear*
1×1 convolution, and add the identity between the thin ends. Howard et al. 2019
(MobileNetV3, arXiv:1905.02244) §5.3 and Tan & Le 2019 (EfficientNet, arXiv:1905.11946)
put a squeeze-and-excitation gate after the depthwise convolution; EfficientNet adds
stochastic depth on the residual branch.

Module names follow torchvision's MobileNetV3 / EfficientNet (``block.0`` … ``block.N``,
each a conv-norm-act with keys ``0.*``/``1.*``), so their state_dicts load as they are.
(MobileNetV2 in torchvision keeps an older layout; ``models/mobilenet.py`` has that block.)
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn as nn

from .conv_norm_act import ConvNormAct
from .drop_path import DropPath

__all__ = ["InvertedResidual"]


class InvertedResidual(nn.Module):
    """Return ``x + drop_path(project(se(depthwise(expand(x)))))``, the identity only when shapes allow.

    - ``mid_chs``: the expanded width; the 1×1 expansion is left out when it equals ``in_chs``
      (MobileNetV2's t = 1 rows, EfficientNet's MBConv1, MobileNetV3's first block).
    - ``se_layer``: called with ``mid_chs`` to build the gate, or ``None``; the caller fixes the
      squeezed width and activations (``functools.partial`` or a small function).
    - ``act_layer``: the activation after expansion and depthwise convolution; the projection is
      linear ("linear bottleneck": a ReLU on the thin output destroys information, §3.2).
    - ``drop_path``: stochastic-depth probability of the residual branch (used only with the identity).
    """

    def __init__(
        self,
        in_chs: int,
        out_chs: int,
        *,
        mid_chs: int,
        kernel_size: int = 3,
        stride: int = 1,
        dilation: int = 1,
        se_layer: Callable[[int], nn.Module] | None = None,
        norm_layer: Callable[[int], nn.Module] = nn.BatchNorm2d,
        act_layer: Callable[..., nn.Module] = nn.ReLU,
        drop_path: float = 0.0,
    ) -> None:
        super().__init__()
        if stride not in (1, 2):
            raise ValueError(f"InvertedResidual stride must be 1 or 2, got {stride}")
        layers: list[nn.Module] = []
        if mid_chs != in_chs:  # 1×1 expansion
            layers.append(ConvNormAct(in_chs, mid_chs, 1, norm_layer=norm_layer, act_layer=act_layer))
        layers.append(  # k×k depthwise
            ConvNormAct(
                mid_chs,
                mid_chs,
                kernel_size,
                stride,
                groups=mid_chs,
                dilation=dilation,
                norm_layer=norm_layer,
                act_layer=act_layer,
            )
        )
        if se_layer is not None:
            layers.append(se_layer(mid_chs))
        layers.append(
            ConvNormAct(mid_chs, out_chs, 1, norm_layer=norm_layer, act_layer=None)
        )  # linear projection
        self.block = nn.Sequential(*layers)
        self.in_chs, self.mid_chs, self.out_chs = in_chs, mid_chs, out_chs
        self.stride = stride
        self.use_residual = stride == 1 and in_chs == out_chs
        self.drop_path = DropPath(drop_path) if self.use_residual else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.block(x)
        if self.use_residual:
            out = self.drop_path(out)
            out += x  # in place, as torchvision: no new activation-sized tensor per block in training
        return out
