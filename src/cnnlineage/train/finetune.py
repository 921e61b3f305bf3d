"""Transfer learning: load pretrained weights around a new head, and freeze or gradually unfreeze.

Works on any model through the LineageModel contract only: ``get_classifier()`` finds the
head and ``feature_info`` names the stages. Parameters are ordered as the model registers
them (input to output); each belongs to the last stage whose module precedes it, those
before the first stage form the stem, and those after the last stage that belong to no
stage (e.g. a pre-logits layer) go with the head. Gradual unfreezing (Howard & Ruder 2018)
starts with the head and unfreezes one more stage from the top every ``unfreeze_every``
epochs, the stem last.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from ..weights import load_state_dict_checked
from .checkpoint import (
    BACKBONE_PREFIX,
    CheckpointError,
    backbone_state,
    is_pretraining_checkpoint,
    load_checkpoint,
)

__all__ = ["head_parameter_names", "load_pretrained", "parameter_blocks", "set_trainable"]


def _classifier_prefixes(model: nn.Module) -> list[str]:
    head = model.get_classifier()
    names = [n for n, m in model.named_modules() if m is head and n]
    names += [
        n for n, _ in model.named_modules() if n and "aux" in n.split(".")[0]
    ]  # auxiliary heads (GoogLeNet)
    return names


def head_parameter_names(model: nn.Module) -> set[str]:
    """Return the names of the classifier's (and auxiliary heads') parameters, plus any after the last stage."""
    blocks = parameter_blocks(model)
    return set(blocks[0])


def parameter_blocks(model: nn.Module) -> list[list[str]]:
    """Return parameter names grouped top first: [head (+ layers after the last stage), last stage, ..., first stage, stem]."""
    stages = [fi["module"] for fi in getattr(model, "feature_info", [])]
    heads = _classifier_prefixes(model)

    def owner(name: str, prefixes: list[str]) -> str | None:
        return next((p for p in prefixes if name == p or name.startswith(p + ".")), None)

    head: list[str] = []
    stem: list[str] = []
    per_stage: dict[str, list[str]] = {s: [] for s in stages}
    current: str | None = None
    seen_last = False
    for name, _ in model.named_parameters():
        if owner(name, heads):
            head.append(name)
            continue
        s = owner(name, stages)
        if s is not None:
            current = s
            seen_last = seen_last or s == stages[-1]
            per_stage[s].append(name)
        elif current is None:
            stem.append(name)
        elif seen_last:
            head.append(name)  # after the last stage: pre-logits, final norm
        else:
            per_stage[current].append(name)  # between stages: belongs to the one before
    return [head] + [per_stage[s] for s in reversed(stages) if per_stage[s]] + ([stem] if stem else [])


def set_trainable(model: nn.Module, mode: str, *, epoch: int, unfreeze_every: int = 1) -> int:
    """Set ``requires_grad`` for fine-tuning ``mode`` at ``epoch`` (0-based); return the number of trainable blocks.

    head: only the head trains; full: everything; gradual: the head, then one more block
    from the top every ``unfreeze_every`` epochs.
    """
    blocks = parameter_blocks(model)
    if mode == "full":
        n = len(blocks)
    elif mode == "head":
        n = 1
    elif mode == "gradual":
        n = min(len(blocks), 1 + epoch // unfreeze_every)
    else:
        raise ValueError(f"unknown fine-tuning mode {mode!r}; use head, full or gradual")
    trainable = {name for b in blocks[:n] for name in b}
    for name, p in model.named_parameters():
        p.requires_grad_(name in trainable)
    return n


def load_pretrained(
    model: nn.Module, path: str | Path, *, ckpt: dict[str, Any] | None = None
) -> dict[str, object]:
    """Load a checkpoint (cnnlineage's train or pretrain checkpoint, or a bare state_dict) into ``model``, keeping the model's own new head.

    Head parameters whose shapes differ (a different number of classes) are left as
    initialised; so is the whole head of a pre-training checkpoint (``cnnlineage pretrain``
    never trains it), whose network is read from under ``backbone.`` (:func:`backbone_state`).
    Every other parameter must fit exactly (StateDictMismatchError lists what does not).
    Returns a report: which keys were loaded, which head keys were kept, and the pre-training
    method (None for a supervised checkpoint). ``ckpt`` is the already loaded ``path``.
    """
    obj = load_checkpoint(path) if ckpt is None else ckpt
    pretraining = isinstance(obj, dict) and is_pretraining_checkpoint(obj)
    if pretraining:
        state = backbone_state(obj)
        if not state:
            raise CheckpointError(
                f"{path} is a pre-training checkpoint without a network under {BACKBONE_PREFIX!r}; "
                "it was not written by `cnnlineage pretrain`"
            )
    else:
        state = obj.get("model", obj) if isinstance(obj, dict) else obj
    if not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{path} holds neither a cnnlineage checkpoint nor a state_dict of tensors")
    state = {k.removeprefix("module."): v for k, v in state.items()}  # saved from a DDP wrapper
    own = model.state_dict()
    head = _classifier_prefixes(model)
    kept = [
        k for k in own
        if any(k.startswith(h + ".") for h in head)
        and (pretraining or k not in state or state[k].shape != own[k].shape)
    ]  # fmt: skip
    merged = {k: v for k, v in state.items() if k not in kept}
    merged.update({k: own[k] for k in kept})
    load_state_dict_checked(model, merged, source=str(path))
    method = obj["ssl"].get("method") if pretraining else None
    return {"loaded": len(merged) - len(kept), "new_head_keys": kept, "pretraining": method}
