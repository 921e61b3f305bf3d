"""Load torchvision and timm state_dicts into cnnlineage models.

Where torchvision has a model, cnnlineage's module names are torchvision's, so a
torchvision state_dict loads as it is. A family whose names differ defines
``remap_torchvision(state_dict)`` (or ``remap_timm``) on its model class, returning the
state_dict renamed to ours; these functions call it, then check that every key and
shape fits before loading anything.
"""

from __future__ import annotations

import os
import pickle
import re
import zipfile
from collections.abc import Mapping
from pathlib import Path

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
        hint = _classifier_hint(model, state_dict, mis_shaped_keys=[k.split(" ")[0] for k in mis_shaped])
        if hint:
            parts.append(hint)
        raise StateDictMismatchError("\n  ".join(parts))
    model.load_state_dict(state_dict, strict=True)
    return model


def _classifier_hint(
    model: nn.Module, state_dict: Mapping[str, torch.Tensor], *, mis_shaped_keys: list[str]
) -> str:
    # Only the classifier differs (e.g. 1000 ImageNet classes into a 10-class model): say how to get there.
    get = getattr(model, "get_classifier", None)
    head = get() if callable(get) else None
    if not isinstance(head, nn.Linear) or not mis_shaped_keys:
        return ""
    head_keys = {f"{name}.{p}" for name, m in model.named_modules() if m is head for p in ("weight", "bias")}
    if not set(mis_shaped_keys) <= head_keys:
        return ""
    weight = next((state_dict[k] for k in head_keys if k.endswith(".weight") and k in state_dict), None)
    n = int(weight.shape[0]) if weight is not None else "?"
    return (
        f"only the classifier differs: the state_dict has {n} classes, the model {head.out_features}. "
        f"Build the model with num_classes={n}, load, then call model.reset_classifier({head.out_features})"
    )


def load_torchvision(
    model: nn.Module, state_dict: Mapping[str, torch.Tensor] | str | os.PathLike
) -> nn.Module:
    """Return ``model`` with a torchvision state_dict of the same architecture loaded into it.

    ``state_dict`` is the dict itself or the path of a weights file saved by torchvision
    (``torch.save(model.state_dict(), path)``), read with ``torch.load(weights_only=True)``.
    """
    sd = _as_state_dict(state_dict, source="torchvision")
    remap = getattr(model, "remap_torchvision", None)
    sd = remap(sd) if remap is not None else sd
    return load_state_dict_checked(model, sd, source="torchvision")


def load_timm(model: nn.Module, state_dict: Mapping[str, torch.Tensor] | str | os.PathLike) -> nn.Module:
    """Return ``model`` with a timm state_dict of the matching architecture loaded into it.

    ``state_dict`` is the dict itself or the path of a weights file (``.pth``/``.bin`` saved
    with ``torch.save``), read with ``torch.load(weights_only=True)``.
    """
    sd = _as_state_dict(state_dict, source="timm")
    remap = getattr(model, "remap_timm", None)
    sd = remap(sd) if remap is not None else sd
    return load_state_dict_checked(model, sd, source="timm")


def _as_state_dict(obj: object, *, source: str) -> dict[str, torch.Tensor]:
    """Return a plain name -> tensor dict from a state_dict or a weights file; ValueError saying what was given."""
    if isinstance(obj, (str, os.PathLike)):
        obj = _load_file(Path(obj), source=source)
    if isinstance(obj, nn.Module):
        raise ValueError(
            f"expected a {source} state_dict (or the path of a weights file), got a model object "
            f"({type(obj).__name__}); pass its .state_dict()"
        )
    if not isinstance(obj, Mapping):
        raise ValueError(
            f"expected a {source} state_dict (a mapping of parameter names to tensors) or the path of a "
            f"weights file, got {type(obj).__name__}"
        )
    bad = [k for k, v in obj.items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)]
    if bad:
        raise ValueError(
            f"expected a {source} state_dict mapping parameter names to tensors; {len(bad)} entries are not "
            f"(first: {bad[0]!r}: {type(obj[bad[0]]).__name__})"
        )
    return dict(obj)


def _load_file(path: Path, *, source: str) -> Mapping[str, torch.Tensor]:
    if not path.is_file():
        raise ValueError(
            f"{source} weights file {path} does not exist" + (" (it is a directory)" if path.is_dir() else "")
        )
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)  # tensors and plain containers only
    except pickle.UnpicklingError as e:
        found = re.search(r"GLOBAL ([\w.]+)", str(e))
        held = f" (it holds {found.group(1)})" if found else ""
        raise ValueError(
            f"refusing to load {path}{held}: only tensors and plain containers are loaded (weights_only=True), "
            "since anything else could run code when unpickled. Save and pass model.state_dict() instead"
        ) from None
    except (RuntimeError, EOFError, OSError, zipfile.BadZipFile, KeyError, ValueError) as e:
        raise ValueError(
            f"cannot read {path} as a torch weights file ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})"
        ) from None
    # Some files wrap the weights: {"state_dict": ...} or {"model": ...} (training checkpoints).
    if isinstance(obj, Mapping) and not any(isinstance(v, torch.Tensor) for v in obj.values()):
        for key in ("state_dict", "model", "model_state_dict"):
            if isinstance(obj.get(key), Mapping):
                return obj[key]
    return obj
