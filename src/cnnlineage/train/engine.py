"""The pieces of a training step that the trainer and ``cnnlineage eval`` share.

Device choice, the model's input size, autocast for mixed precision, the classification
loss (with auxiliary heads and soft targets) and evaluation summed over all ranks.
"""

from __future__ import annotations

import contextlib
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from . import distributed
from .config import ConfigError
from .metrics import accuracy_from_confusion, topk_correct

__all__ = ["autocast", "classification_loss", "evaluate", "input_size_for", "pick_device"]


def pick_device(name: str, local_rank: int = 0) -> torch.device:
    """Return the device for ``name``: "auto" is CUDA when present (this rank's GPU), else the CPU."""
    if name == "auto":
        return torch.device(f"cuda:{local_rank}") if torch.cuda.is_available() else torch.device("cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(
            f"device {name!r} was asked for but CUDA is not available; use --device cpu or auto"
        )
    if name == "cuda":
        return torch.device(f"cuda:{local_rank}")
    return torch.device(name)


def input_size_for(model: nn.Module, image_size: int) -> tuple[int, int]:
    """Return the (H, W) fed to ``model``: ``image_size`` if set, else its own; ConfigError if it cannot take it."""
    name = getattr(model, "model_name", type(model).__name__)
    size = (image_size, image_size) if image_size else tuple(model.input_size[1:])
    if model.fixed_size and size != tuple(model.input_size[1:]):
        raise ConfigError(
            f"{name} takes only {model.expected_input()}; data.image_size={image_size} does not fit"
        )
    if size[0] < model.min_size[0] or size[1] < model.min_size[1]:
        raise ConfigError(
            f"{name} needs inputs of at least {model.min_size}; data.image_size={image_size} is smaller"
        )
    return size


def autocast(device: torch.device, amp: str) -> contextlib.AbstractContextManager:
    """Return the autocast context for ``amp`` ("none": a no-op; "bf16"; "fp16")."""
    if amp == "none":
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16 if amp == "bf16" else torch.float16)


@torch.no_grad()
def evaluate(
    model: nn.Module,
    loader,
    *,
    device: torch.device,
    num_classes: int,
    amp: str = "none",
    channels_last: bool = False,
) -> dict[str, Any]:
    """Return test loss, top-1, top-5 (%), per-class accuracy and the confusion matrix, summed over all ranks."""
    was_training = model.training
    model.eval()
    confusion = torch.zeros(num_classes, num_classes, dtype=torch.int64)
    sums = torch.zeros(3, dtype=torch.float64)  # loss sum, top-5 correct, samples
    for images, labels in loader:
        images = images.to(device, non_blocking=True)
        if channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        labels = labels.to(device, non_blocking=True)
        with autocast(device, amp):
            logits = model(images)
        logits = logits.float()
        sums += torch.tensor(
            [
                F.cross_entropy(logits, labels, reduction="sum").item(),
                topk_correct(logits, labels, 5),
                len(labels),
            ],
            dtype=torch.float64,
        )
        pred = logits.argmax(1)
        confusion += torch.bincount((labels * num_classes + pred).cpu(), minlength=num_classes**2).view(
            num_classes, num_classes
        )
    distributed.all_reduce_sum(confusion)
    distributed.all_reduce_sum(sums)
    model.train(was_training)
    top1, per_class = accuracy_from_confusion(confusion)
    n = max(1.0, float(sums[2]))
    return {
        "loss": float(sums[0]) / n,
        "top1": top1,
        "top5": 100.0 * float(sums[1]) / n,
        "per_class": per_class,
        "confusion": confusion,
        "samples": int(sums[2]),
    }


def classification_loss(
    out: torch.Tensor | tuple[torch.Tensor, ...],
    targets: torch.Tensor,
    *,
    aux_weight: float = 0.3,
    label_smoothing: float = 0.0,
) -> torch.Tensor:
    """Return cross-entropy of the logits, plus ``aux_weight`` · Σ CE(aux_i) when the model returns auxiliary logits.

    ``targets`` are class indices (B,) or soft targets (B, classes) from mixup/cutmix.
    GoogLeNet's auxiliary classifiers use weight 0.3 (Szegedy et al. 2015, §5).
    """
    if isinstance(out, (tuple, list)):
        main = F.cross_entropy(out[0].float(), targets, label_smoothing=label_smoothing)
        return main + aux_weight * sum(
            F.cross_entropy(a.float(), targets, label_smoothing=label_smoothing) for a in out[1:]
        )
    return F.cross_entropy(out.float(), targets, label_smoothing=label_smoothing)
