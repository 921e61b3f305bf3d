"""The contract every cnnlineage classifier keeps.

``forward(x) = forward_head(forward_features(x))``, an input check that fails early with
a message naming the model and the input it expects, ``feature_info`` (channels and
reduction of each stage) and ``reset_classifier`` for transfer learning. The analyzer,
feature extraction and fine-tuning rely on this contract only, never on a family's
internals. The base class holds no parameters, so state_dict keys stay those of the
family (and of torchvision where it has the model).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import torch
import torch.nn as nn

__all__ = ["LineageModel", "count_params", "is_tracing", "input_checks_disabled"]

_CHECKS_DISABLED = 0


@contextlib.contextmanager
def input_checks_disabled() -> Iterator[None]:
    """Run models without their input check (the analyzer uses this to find the layer where a shape fails)."""
    global _CHECKS_DISABLED
    _CHECKS_DISABLED += 1
    try:
        yield
    finally:
        _CHECKS_DISABLED -= 1


def _fx_tracing_check() -> Callable[[], bool]:
    import torch.fx._symbolic_trace as fx_trace

    check = getattr(fx_trace, "is_fx_symbolic_tracing", None) or getattr(fx_trace, "is_fx_tracing", None)
    return check if check is not None else (lambda: False)


_fx_tracing = _fx_tracing_check()  # resolved once, at import, not on every call


def is_tracing() -> bool:
    """Return True while torch.fx, TorchScript or torch.compile trace the model (checks are skipped then)."""
    return bool(
        _CHECKS_DISABLED
        or torch.jit.is_scripting()
        or torch.jit.is_tracing()
        or _fx_tracing()
        or torch.compiler.is_compiling()
    )


def count_params(model: nn.Module, *, training: bool = False) -> int:
    """Return the parameters of the inference network; ``training=True`` adds training-only heads.

    A model lists its training-only submodules (GoogLeNet's auxiliary classifiers) by name in
    ``training_only_modules``; they run in training mode only and are not part of the network
    that is deployed, so torchvision's ``num_params`` leaves them out too.
    """
    params = {id(p): p for p in model.parameters()}
    if not training:
        for name in getattr(model, "training_only_modules", ()):
            for p in model.get_submodule(name).parameters():
                params.pop(id(p), None)
    return sum(p.numel() for p in params.values())


class LineageModel(nn.Module):
    """Base class of every registered model.

    Subclasses call ``super().__init__(in_chans=..., num_classes=..., input_size=...,
    min_size=...)``, build their layers, set ``self.feature_info`` and implement
    ``forward_features``, ``forward_head``, ``get_classifier`` and ``reset_classifier``.

    - ``input_size``: the default input (C, H, W) the paper uses.
    - ``min_size``: the smallest (H, W) the network can take (every layer's output >= 1).
    - ``fixed_size``: True when only ``input_size`` itself works (e.g. a flatten into a
      fully connected layer of fixed width, as in LeNet-5).
    - ``size_multiple``: H and W must be multiples of this (e.g. a ViT's patch size).
    """

    model_name: str = ""
    training_only_modules: tuple[str, ...] = ()  # submodules used in training only (auxiliary heads)

    def __init__(
        self,
        *,
        in_chans: int,
        num_classes: int,
        input_size: tuple[int, int, int],
        min_size: tuple[int, int] | int = 1,
        fixed_size: bool = False,
        size_multiple: int = 1,
    ) -> None:
        super().__init__()
        if not isinstance(in_chans, int) or in_chans < 1:
            raise ValueError(f"in_chans must be a positive integer, got {in_chans!r}")
        if not isinstance(num_classes, int) or num_classes < 0:
            raise ValueError(f"num_classes must be a non-negative integer, got {num_classes!r}")
        self.in_chans = in_chans
        self.num_classes = num_classes
        self.input_size = (in_chans, int(input_size[1]), int(input_size[2]))
        self.min_size = (min_size, min_size) if isinstance(min_size, int) else tuple(min_size)
        self.fixed_size = fixed_size
        self.size_multiple = size_multiple
        self.feature_info: list[dict[str, Any]] = []

    # ------------------------------------------------------------------ input check
    def expected_input(self) -> str:
        """Return a human-readable description of the inputs this model takes."""
        c, h, w = self.input_size
        if self.fixed_size:
            return f"(N, {c}, {h}, {w})"
        desc = f"(N, {c}, H, W) with H, W >= {self.min_size[0]}"
        if self.size_multiple > 1:
            desc += f" and divisible by {self.size_multiple}"
        return desc + f"; default {c}x{h}x{w}"

    def check_input(self, x: torch.Tensor) -> None:
        """Raise ValueError if ``x`` is not an input this model can take."""
        name = self.model_name or type(self).__name__
        if not isinstance(x, torch.Tensor):
            raise ValueError(
                f"{name} expects a tensor of shape {self.expected_input()}, got {type(x).__name__}"
            )
        if (
            not x.is_floating_point()
        ):  # uint8 images: the scale (0-255 vs normalised) is the caller's to choose
            raise ValueError(
                f"{name} expects a floating-point batch (images scaled to [0, 1] and normalised as in training), "
                f"got {x.dtype}; convert it, e.g. x.float() / 255, then normalise"
            )
        if x.dim() != 4:
            raise ValueError(
                f"{name} expects a 4-D batch of shape {self.expected_input()}, "
                f"got a {x.dim()}-D tensor of shape {tuple(x.shape)}"
            )
        _, c, h, w = x.shape
        if c != self.in_chans:
            raise ValueError(
                f"{name} expects {self.in_chans} input channel(s), shape {self.expected_input()}; "
                f"got {c} channel(s), shape {tuple(x.shape)}"
            )
        if self.fixed_size:
            if (h, w) != self.input_size[1:]:
                raise ValueError(
                    f"{name} takes only {self.input_size[1]}x{self.input_size[2]} inputs, "
                    f"shape {self.expected_input()}; got {h}x{w}"
                )
            return
        if h < self.min_size[0] or w < self.min_size[1]:
            raise ValueError(
                f"{name} needs inputs of at least {self.min_size[0]}x{self.min_size[1]} pixels, "
                f"shape {self.expected_input()}; got {h}x{w}"
            )
        if self.size_multiple > 1 and (h % self.size_multiple or w % self.size_multiple):
            raise ValueError(
                f"{name} needs H and W divisible by {self.size_multiple}, shape {self.expected_input()}; "
                f"got {h}x{w}"
            )

    # ------------------------------------------------------------------ contract
    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Return the last feature map (or token sequence) before the classifier head."""
        raise NotImplementedError

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """Return logits from features (or the pooled features when ``pre_logits``)."""
        raise NotImplementedError

    def get_classifier(self) -> nn.Module:
        """Return the final classification layer."""
        raise NotImplementedError

    def reset_classifier(self, num_classes: int) -> None:
        """Replace the final classification layer by a fresh one with ``num_classes`` outputs."""
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Dynamo (torch.compile, torch.export) must not see the check: its comparisons would
        # specialise symbolic sizes; TorchScript's tracer would warn about each of them. torch.fx's
        # proxies fail the check and are recognised only then, so an eager call asks two flags.
        if not (_CHECKS_DISABLED or torch.compiler.is_compiling() or torch.jit.is_tracing()):
            try:
                self.check_input(x)
            except ValueError:
                if not is_tracing():
                    raise
        try:  # free unless something fails: the dtype is examined only then
            return self.forward_head(self.forward_features(x))
        except RuntimeError as e:
            mismatch = self._dtype_mismatch(x, e)
            if mismatch is None:
                raise
            raise mismatch from e

    def _dtype_mismatch(self, x: torch.Tensor, error: RuntimeError) -> ValueError | None:
        """Return a ValueError naming both dtypes when ``error`` comes from an input of another dtype than the weights."""
        p = next(self.parameters(), None)
        if p is None or p.dtype == x.dtype:
            return None
        if not any(s in str(error) for s in ("should be the same", "same dtype", "expected scalar type")):
            return None
        name = self.model_name or type(self).__name__
        # Not converted silently: float64 -> float32 loses precision, float16 weights need a float16 input.
        return ValueError(
            f"{name}'s weights are {p.dtype} but the input is {x.dtype}; convert one to the other, "
            f"e.g. x.to({p.dtype}) or model.to({x.dtype}) (or run under torch.autocast)"
        )
