"""Optimizers, learning-rate schedules, weight initialisation and the weight EMA.

Parameter groups: biases and norm-layer weights (every parameter with fewer than two
dimensions) get no weight decay unless ``optim.decay_norm_bias``; when fine-tuning, the
pretrained backbone can take a smaller learning rate than the new head. Each group
carries ``lr_scale``; the schedule sets ``lr = optim.lr · lr_scale · factor(step)``.

The schedule is a pure function of the optimizer step (plus a small state for
reduce-on-plateau), so a resumed run lands on exactly the same learning rates. Each
shape is written out below and checked in the tests against torch's own schedulers.
"""

from __future__ import annotations

import copy
import math
from typing import Any

import torch
import torch.nn as nn

from .config import OptimConfig, ScheduleConfig

__all__ = ["LRSchedule", "ModelEma", "build_optimizer", "init_weights", "param_groups"]


def param_groups(
    model: nn.Module, cfg: OptimConfig, *, head: set[str] | None = None, backbone_lr_mult: float = 1.0
) -> list[dict[str, Any]]:
    """Return optimizer parameter groups: (head | backbone) × (decay | no decay), empty groups left out.

    ``head`` names the parameters that keep the full learning rate when fine-tuning; the
    others get ``backbone_lr_mult``. Without ``head`` every parameter is "head".
    """
    groups: dict[tuple[bool, bool], list[nn.Parameter]] = {}
    for name, p in model.named_parameters():
        in_head = head is None or name in head
        decay = cfg.decay_norm_bias or p.ndim > 1  # biases and norm weights are 1-D
        groups.setdefault((in_head, decay), []).append(p)
    out = []
    for (in_head, decay), params in sorted(groups.items(), reverse=True):
        out.append(
            dict(
                params=params,
                weight_decay=cfg.weight_decay if decay else 0.0,
                lr_scale=1.0 if in_head else backbone_lr_mult,
                group=f"{'head' if in_head else 'backbone'}{'' if decay else '/no_decay'}",
            )
        )
    return out


def build_optimizer(groups: list[dict[str, Any]], cfg: OptimConfig) -> torch.optim.Optimizer:
    """Return the optimizer named by ``cfg.name`` over ``groups``."""
    for g in groups:
        g["lr"] = cfg.lr * g["lr_scale"]
    if cfg.name == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov)
    if cfg.name == "adam":
        return torch.optim.Adam(groups, lr=cfg.lr, betas=tuple(cfg.betas), eps=cfg.eps)
    if cfg.name == "adamw":
        return torch.optim.AdamW(groups, lr=cfg.lr, betas=tuple(cfg.betas), eps=cfg.eps)
    if cfg.name == "rmsprop":
        return torch.optim.RMSprop(groups, lr=cfg.lr, alpha=cfg.alpha, eps=cfg.eps, momentum=cfg.momentum)
    if cfg.name == "adagrad":
        return torch.optim.Adagrad(groups, lr=cfg.lr, eps=cfg.eps)
    raise ValueError(f"unknown optimizer {cfg.name!r}")


class LRSchedule:
    """The learning-rate factor at each optimizer step: linear warm-up, then the named schedule.

    ``steps_per_epoch`` counts optimizer steps. step/multistep/exponential change at epoch
    boundaries (counted from the start of training); cosine and one-cycle move every step
    over the steps after warm-up. Plateau multiplies by ``gamma`` once the test loss has
    not improved (relative threshold 1e-4) for more than ``patience`` epochs.
    """

    def __init__(self, cfg: ScheduleConfig, *, base_lr: float, epochs: int, steps_per_epoch: int) -> None:
        self.cfg, self.base_lr, self.spe = cfg, base_lr, max(1, steps_per_epoch)
        self.total = epochs * self.spe
        self.warmup = int(round(cfg.warmup_epochs * self.spe))
        self.plateau = {"scale": 1.0, "best": math.inf, "bad_epochs": 0}

    def factor(self, step: int) -> float:
        """Return the multiplier of the base learning rate at optimizer step ``step`` (0-based)."""
        c = self.cfg
        if step < self.warmup:  # torch LinearLR(start_factor=warmup_factor, total_iters=warmup)
            return c.warmup_factor + (1.0 - c.warmup_factor) * step / self.warmup
        t, span = step - self.warmup, max(1, self.total - self.warmup)
        epoch = step // self.spe
        floor = c.min_lr / self.base_lr
        if c.name == "step":
            return c.gamma ** (epoch // c.step_epochs)
        if c.name == "multistep":
            return c.gamma ** sum(epoch >= m for m in c.milestones)
        if c.name == "exponential":
            return c.gamma**epoch
        if c.name == "cosine":
            if c.restart_epochs:  # SGDR: restart every period, each period restart_mult times the last
                period = c.restart_epochs * self.spe
                if c.restart_mult == 1:
                    t = t % period
                else:
                    n = int(math.log(t / period * (c.restart_mult - 1) + 1, c.restart_mult))
                    t = t - period * (c.restart_mult**n - 1) // (c.restart_mult - 1)
                    period = period * c.restart_mult**n
                span = period
            return floor + (1.0 - floor) * (1.0 + math.cos(math.pi * t / span)) / 2.0
        if c.name == "onecycle":  # Smith 2018, torch OneCycleLR's cosine phases
            start, end = 1.0 / c.div_factor, 1.0 / (c.div_factor * c.final_div_factor)
            peak = c.pct_start * self.total - 1.0
            if step <= peak:
                return _cos_between(start, 1.0, step / peak)
            return _cos_between(1.0, end, (step - peak) / (self.total - 1.0 - peak))
        if c.name == "plateau":
            return self.plateau["scale"]
        return 1.0  # "none"

    def end_epoch(self, test_loss: float) -> None:
        """Record the epoch's test loss (reduce-on-plateau, torch defaults: mode min, rel threshold 1e-4)."""
        if self.cfg.name != "plateau":
            return
        p = self.plateau
        if test_loss < p["best"] * (1.0 - 1e-4):
            p["best"], p["bad_epochs"] = test_loss, 0
        else:
            p["bad_epochs"] += 1
        if p["bad_epochs"] > self.cfg.patience:
            p["scale"] *= self.cfg.gamma
            p["bad_epochs"] = 0

    def apply(self, optimizer: torch.optim.Optimizer, step: int) -> float:
        """Set every group's lr for ``step``; return the base group's lr."""
        f = self.factor(step)
        for g in optimizer.param_groups:
            g["lr"] = self.base_lr * g.get("lr_scale", 1.0) * f
        return self.base_lr * f

    def state_dict(self) -> dict[str, Any]:
        return {"plateau": dict(self.plateau)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.plateau = dict(state["plateau"])


def _cos_between(start: float, end: float, pct: float) -> float:
    return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1.0)


def init_weights(model: nn.Module, scheme: str) -> None:
    """Re-initialise convolutions and linear layers: "kaiming" (He 2015, fan-out, ReLU), "xavier" (Glorot 2010).

    "paper" leaves the model's own initialisation. Norm layers get weight 1, bias 0;
    biases of convolutions and linear layers 0.
    """
    if scheme == "paper":
        return
    for m in model.modules():
        if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Linear)):
            if scheme == "kaiming":
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif scheme == "xavier":
                nn.init.xavier_uniform_(m.weight)
            else:
                raise ValueError(f"unknown init {scheme!r}; use paper, kaiming or xavier")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm, nn.LayerNorm)) and m.weight is not None:
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


class ModelEma:
    """An exponential moving average of a model's weights: ``ema ← decay·ema + (1 − decay)·weights`` per step.

    Integer buffers (e.g. BatchNorm's batch counter) are copied. ``module`` is an
    evaluation-mode copy of the model that holds the averages.
    """

    def __init__(self, model: nn.Module, decay: float) -> None:
        self.decay = decay
        self.module = copy.deepcopy(model).eval()
        for p in self.module.parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        for e, m in zip(self.module.state_dict().values(), model.state_dict().values()):
            if e.is_floating_point():
                e.lerp_(m.detach(), 1.0 - self.decay)
            else:
                e.copy_(m)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return self.module.state_dict()

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.module.load_state_dict(state)
