"""Knowledge distillation: Hinton, Vinyals & Dean, "Distilling the Knowledge in a Neural Network", arXiv:1503.02531, 2015.

A student learns from the teacher's *soft targets* — the teacher's class probabilities at a
raised temperature T, softmax(z_t / T) — as well as from the labels. The soft-target
cross-entropy's gradients scale as 1/T², so it is multiplied by T² (§2) to keep its share of
the gradient when T changes. We use the KL divergence, which differs from that
cross-entropy only by the teacher's entropy (a constant for the student), so the gradients
are the paper's.

The trainer calls :func:`distillation_loss` when ``distill.teacher`` names a checkpoint; the
teacher is loaded frozen, in eval mode, is not part of the optimizer or the checkpoint, and
is reloaded from its file on resume.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from .config import ConfigError

__all__ = ["distillation_loss", "load_teacher", "soft_target_loss"]


def soft_target_loss(student: torch.Tensor, teacher: torch.Tensor, *, temperature: float) -> torch.Tensor:
    """Return T² · KL(softmax(teacher/T) ‖ softmax(student/T)), averaged over the batch."""
    t = temperature
    log_p_student = F.log_softmax(student.float() / t, dim=1)
    log_p_teacher = F.log_softmax(teacher.float() / t, dim=1)
    return F.kl_div(log_p_student, log_p_teacher, reduction="batchmean", log_target=True) * (t * t)


def distillation_loss(
    student: torch.Tensor,
    teacher: torch.Tensor,
    hard_loss: torch.Tensor,
    *,
    temperature: float,
    alpha: float,
) -> torch.Tensor:
    """Return alpha · T²·KL(soft targets) + (1 − alpha) · hard_loss (Hinton et al. 2015, §2)."""
    return alpha * soft_target_loss(student, teacher, temperature=temperature) + (1.0 - alpha) * hard_loss


def load_teacher(path: str | Path, *, student_meta: dict[str, Any], device: torch.device) -> nn.Module:
    """Return the teacher of ``path`` frozen in eval mode; ConfigError if it does not see the student's inputs.

    Teacher and student share each batch, so they must agree on classes, channels, input
    size and normalisation.
    """
    from .inference import load_model

    teacher, meta = load_model(path, device=device)

    def norm(v: Any) -> Any:
        return [float(x) for x in v] if isinstance(v, (list, tuple)) else v

    for key in ("num_classes", "in_chans", "input_size", "mean", "std"):
        mine, theirs = norm(student_meta[key]), norm(meta.get(key))
        if mine != theirs:
            raise ConfigError(
                f"teacher {path} has {key}={theirs} but the student has {key}={mine}; distil from a "
                f"teacher trained on the same data and input size"
            )
    for p in teacher.parameters():
        p.requires_grad_(False)
    return teacher.eval()
