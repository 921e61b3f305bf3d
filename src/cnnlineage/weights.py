"""Load torchvision and timm state_dicts into cnnlineage models.

Where torchvision has a model, cnnlineage's module names are torchvision's, so a
torchvision state_dict loads as it is. A family whose names differ defines
``remap_torchvision(state_dict)`` (or ``remap_timm``) on its model class, returning the
state_dict renamed to ours; these functions call it, then check that every key and
shape fits before loading anything.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn as nn

__all__ = ["load_torchvision", "load_timm", "load_state_dict_checked", "StateDictMismatchError"]


class StateDictMismatchError(ValueError):
    """A state_dict does not fit a model: lists the missing, unexpected and mis-shaped keys."""


def _describe(keys: list[str], limit: int = 12) -> str:
    shown = ", ".join(keys[:limit])
    return shown + (f", ... ({len(keys) - limit} more)" if len(keys) > limit else "")


def load_state_dict_checked(
    model: nn.Module, state_dict: Mapping[str, torch.Tensor], *, source: str = ""
) -> nn.Module:
    """Return ``model`` after loading ``state_dict`` strictly; raise StateDictMismatchError listing what does not fit.

    Nothing is loaded unless everything fits, so a failed load leaves the model as it was.
    """
    own = model.state_dict()
    missing = [k for k in own if k not in state_dict]
    unexpected = [k for k in state_dict if k not in own]
    mis_shaped = [
        f"{k} (model {tuple(own[k].shape)}, state_dict {tuple(state_dict[k].shape)})"
        for k in own
        if k in state_dict and tuple(own[k].shape) != tuple(state_dict[k].shape)
    ]
    if missing or unexpected or mis_shaped:
        name = getattr(model, "model_name", "") or type(model).__name__
        parts = [f"the {source + ' ' if source else ''}state_dict does not fit {name}:"]
        if missing:
            parts.append(f"missing keys ({len(missing)}): {_describe(missing)}")
        if unexpected:
            parts.append(f"unexpected keys ({len(unexpected)}): {_describe(unexpected)}")
        if mis_shaped:
            parts.append(f"shape mismatches ({len(mis_shaped)}): {_describe(mis_shaped)}")
        raise StateDictMismatchError("\n  ".join(parts))
    model.load_state_dict(state_dict, strict=True)
    return model


def load_torchvision(model: nn.Module, state_dict: Mapping[str, torch.Tensor]) -> nn.Module:
    """Return ``model`` with a torchvision state_dict of the same architecture loaded into it."""
    remap = getattr(model, "remap_torchvision", None)
    sd = remap(dict(state_dict)) if remap is not None else dict(state_dict)
    return load_state_dict_checked(model, sd, source="torchvision")


def load_timm(model: nn.Module, state_dict: Mapping[str, torch.Tensor]) -> nn.Module:
    """Return ``model`` with a timm state_dict of the matching architecture loaded into it."""
    remap = getattr(model, "remap_timm", None)
    sd = remap(dict(state_dict)) if remap is not None else dict(state_dict)
    return load_state_dict_checked(model, sd, source="timm")
