"""Record and re-apply the structure of a structurally pruned model.

Channel pruning (``cnnlineage prune``) shrinks tensors and changes module attributes
(``out_channels``, ``num_features``, ``groups``, ...), so the registered builder alone no
longer rebuilds the network. :func:`pruned_structure` records only what differs from a
freshly built model, as plain lists and numbers (safe for ``weights_only=True`` loading and
for YAML); :func:`apply_structure` makes a freshly built model take that structure again,
after which ``load_state_dict`` fits. The trainer and ``load_model`` call it when a
checkpoint's config carries ``model.pruned``.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn

__all__ = ["STRUCTURE_ATTRS", "apply_structure", "pruned_structure"]

# Module attributes that describe a layer's width; pruning changes them with the tensors.
STRUCTURE_ATTRS = (
    "in_channels",
    "out_channels",
    "groups",
    "in_features",
    "out_features",
    "num_features",
    "normalized_shape",
    "num_channels",
    "num_groups",
)


def _value(v: Any) -> Any:
    return list(v) if isinstance(v, tuple) else v


def pruned_structure(model: nn.Module, reference: nn.Module) -> dict[str, Any]:
    """Return {"tensors": {name: shape}, "attrs": {module: {attr: value}}}: where ``model`` differs from ``reference``."""
    ref_state = reference.state_dict()
    tensors = {
        k: list(v.shape)
        for k, v in model.state_dict().items()
        if k in ref_state and tuple(v.shape) != tuple(ref_state[k].shape)
    }
    ref_modules = dict(reference.named_modules())
    attrs: dict[str, dict[str, Any]] = {}
    for name, m in model.named_modules():
        r = ref_modules.get(name)
        if r is None:
            continue
        changed = {
            a: _value(getattr(m, a))
            for a in STRUCTURE_ATTRS
            if hasattr(m, a) and _value(getattr(m, a)) != _value(getattr(r, a))
        }
        if changed:
            attrs[name] = changed
    return {"tensors": tensors, "attrs": attrs} if tensors or attrs else {}


def apply_structure(model: nn.Module, structure: dict[str, Any]) -> nn.Module:
    """Return ``model`` (changed in place) with the tensor shapes and attributes of :func:`pruned_structure`.

    The resized tensors are uninitialised: load the pruned checkpoint's weights next.
    ValueError if ``structure`` names a tensor or module the model does not have.
    """
    name = getattr(model, "model_name", type(model).__name__)
    for full, shape in structure.get("tensors", {}).items():
        owner, _, attr = full.rpartition(".")
        try:
            mod = model.get_submodule(owner)
            old = getattr(mod, attr)
        except AttributeError:
            raise ValueError(f"the pruned structure names {full!r}, which {name} does not have") from None
        new = torch.empty(shape, dtype=old.dtype, device=old.device)
        if isinstance(old, nn.Parameter):
            setattr(mod, attr, nn.Parameter(new, requires_grad=old.requires_grad))
        else:
            setattr(mod, attr, new)  # a registered buffer stays registered
    for owner, values in structure.get("attrs", {}).items():
        try:
            mod = model.get_submodule(owner)
        except AttributeError:
            raise ValueError(
                f"the pruned structure names module {owner!r}, which {name} does not have"
            ) from None
        for attr, v in values.items():
            setattr(mod, attr, tuple(v) if isinstance(v, list) else v)
    return model
