"""Learning from unlabelled images: self-supervised pre-training and frozen-feature probes.

The checkpoint contract shared by ``cnnlineage pretrain``, ``probe`` and ``train --init``:
a pre-training checkpoint is a normal trainer checkpoint (the same meta: model name,
classes, mean/std, input size) whose ``"model"`` state holds the registered network under
the prefix ``"backbone."`` (next to the method's heads, momentum encoders and queues), and
whose ``"ssl"`` entry names the method. :func:`backbone_state` returns the network's own
state_dict from any checkpoint ``train`` or ``pretrain`` wrote.
"""

from __future__ import annotations

from typing import Any

__all__ = ["BACKBONE_PREFIX", "backbone_state", "is_pretraining_checkpoint"]

BACKBONE_PREFIX = "backbone."


def is_pretraining_checkpoint(ckpt: dict[str, Any]) -> bool:
    """Return True if ``ckpt`` was written by ``cnnlineage pretrain``."""
    return isinstance(ckpt.get("ssl"), dict)


def backbone_state(ckpt: dict[str, Any]) -> dict[str, Any]:
    """Return the registered network's state_dict from a train or pretrain checkpoint."""
    state = ckpt["model"]
    if not is_pretraining_checkpoint(ckpt):
        return dict(state)
    n = len(BACKBONE_PREFIX)
    return {k[n:]: v for k, v in state.items() if k.startswith(BACKBONE_PREFIX)}
