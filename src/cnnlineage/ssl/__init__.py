"""Learning from unlabelled images: self-supervised pre-training and frozen-feature probes.

The checkpoint contract shared by ``cnnlineage pretrain``, ``probe`` and ``train --init``
(defined in :mod:`cnnlineage.train.checkpoint`): a pre-training checkpoint is a normal
trainer checkpoint (the same meta: model name, classes, mean/std, input size) whose
``"model"`` state holds the registered network under the prefix ``"backbone."`` (next to
the method's heads, momentum encoders and queues), and whose ``"ssl"`` entry names the
method. :func:`backbone_state` returns the network's own state_dict from any checkpoint
``train`` or ``pretrain`` wrote.
"""

from __future__ import annotations

from ..train.checkpoint import BACKBONE_PREFIX, backbone_state, is_pretraining_checkpoint

__all__ = ["BACKBONE_PREFIX", "backbone_state", "is_pretraining_checkpoint"]
