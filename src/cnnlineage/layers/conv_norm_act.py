"""Convolution followed by an optional normalisation and an optional activation."""

from __future__ import annotations

from collections.abc import Callable

import torch.nn as nn

__all__ = ["ConvNormAct", "same_padding"]


def same_padding(kernel_size: int, dilation: int = 1) -> int:
    """Return the padding that keeps the spatial size at stride 1 for an odd kernel."""
    return (kernel_size - 1) // 2 * dilation


class ConvNormAct(nn.Sequential):
    """Conv2d → norm → activation, as a Sequential (keys ``0.*``, ``1.*``, like torchvision's Conv2dNormActivation).

    ``norm_layer`` and ``act_layer`` are constructors (pass ``None`` to leave one out);
    use ``functools.partial`` for settings such as ``eps`` or ``inplace``. The bias of the
    convolution defaults to ``norm_layer is None``: a following BatchNorm has its own shift.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int] = 3,
        stride: int | tuple[int, int] = 1,
        padding: int | tuple[int, int] | None = None,
        *,
        groups: int = 1,
        dilation: int = 1,
        bias: bool | None = None,
        norm_layer: Callable[[int], nn.Module] | None = nn.BatchNorm2d,
        act_layer: Callable[..., nn.Module] | None = nn.ReLU,
        inplace: bool | None = True,
    ) -> None:
        if padding is None:
            if isinstance(kernel_size, int):
                padding = same_padding(kernel_size, dilation)
            else:
                padding = tuple(same_padding(k, dilation) for k in kernel_size)
        if bias is None:
            bias = norm_layer is None
        layers: list[nn.Module] = [
            nn.Conv2d(
                in_channels,
                out_channels,
                kernel_size,
                stride=stride,
                padding=padding,
                dilation=dilation,
                groups=groups,
                bias=bias,
            )
        ]
        if norm_layer is not None:
            layers.append(norm_layer(out_channels))
        if act_layer is not None:
            layers.append(_make_act(act_layer, inplace))
        super().__init__(*layers)
        self.out_channels = out_channels


def _make_act(act_layer: Callable[..., nn.Module], inplace: bool | None) -> nn.Module:
    # Activations that accept `inplace` get it; others (GELU, Sigmoid, Tanh) are built plain.
    if inplace is None:
        return act_layer()
    try:
        return act_layer(inplace=inplace)
    except TypeError:
        return act_layer()
