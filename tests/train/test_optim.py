"""Schedules against torch's own schedulers; parameter groups, initialisation and EMA by hand."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn as nn
from torch.optim import lr_scheduler as tls

from cnnlineage.train.config import OptimConfig, ScheduleConfig
from cnnlineage.train.optim import LRSchedule, ModelEma, build_optimizer, init_weights, param_groups

EPOCHS, SPE, LR = 12, 5, 0.1


def _torch_lrs(make, steps: int, per_epoch: bool = False) -> list[float]:
    """Return torch's lr at each optimizer step for a scheduler built by make(optimizer)."""
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=LR)
    sched = make(opt)
    out = []
    for step in range(steps):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        if not per_epoch or (step + 1) % SPE == 0:
            sched.step()
    return out


def _ours(**kw) -> list[float]:
    s = LRSchedule(ScheduleConfig(**kw), base_lr=LR, epochs=EPOCHS, steps_per_epoch=SPE)
    return [LR * s.factor(t) for t in range(EPOCHS * SPE)]


@pytest.mark.parametrize(
    "kw,make,per_epoch",
    [
        (dict(name="step", step_epochs=4, gamma=0.5), lambda o: tls.StepLR(o, 4, 0.5), True),
        (
            dict(name="multistep", milestones=[3, 7], gamma=0.1),
            lambda o: tls.MultiStepLR(o, [3, 7], 0.1),
            True,
        ),
        (dict(name="exponential", gamma=0.8), lambda o: tls.ExponentialLR(o, 0.8), True),
        (dict(name="cosine", min_lr=0.001), lambda o: tls.CosineAnnealingLR(o, EPOCHS * SPE, 0.001), False),
        (
            dict(name="cosine", restart_epochs=2, restart_mult=2),
            lambda o: tls.CosineAnnealingWarmRestarts(o, 2 * SPE, 2),
            False,
        ),
        (dict(name="cosine", restart_epochs=3), lambda o: tls.CosineAnnealingWarmRestarts(o, 3 * SPE), False),
        (
            dict(name="onecycle", pct_start=0.25),
            lambda o: tls.OneCycleLR(o, LR, total_steps=EPOCHS * SPE, pct_start=0.25, cycle_momentum=False),
            False,
        ),
        (
            dict(name="cosine", warmup_epochs=2, warmup_factor=0.1),
            lambda o: tls.SequentialLR(
                o,
                [tls.LinearLR(o, 0.1, 1.0, 2 * SPE), tls.CosineAnnealingLR(o, (EPOCHS - 2) * SPE)],
                [2 * SPE],
            ),
            False,
        ),
    ],
)
def test_schedules_match_torch(kw, make, per_epoch):
    expected = _torch_lrs(make, EPOCHS * SPE, per_epoch)
    assert _ours(**kw) == pytest.approx(expected, rel=1e-9, abs=1e-12)


def test_plateau_matches_torch():
    losses = [1.0, 0.9, 0.9, 0.9, 0.95, 0.9, 0.5, 0.5, 0.5, 0.5]
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=LR)
    ref = tls.ReduceLROnPlateau(opt, factor=0.5, patience=2)
    ours = LRSchedule(
        ScheduleConfig(name="plateau", gamma=0.5, patience=2), base_lr=LR, epochs=10, steps_per_epoch=1
    )
    for epoch, loss in enumerate(losses):
        ref.step(loss)
        ours.end_epoch(loss)
        assert LR * ours.factor(epoch + 1) == pytest.approx(opt.param_groups[0]["lr"]), epoch
    state = ours.state_dict()
    fresh = LRSchedule(
        ScheduleConfig(name="plateau", gamma=0.5, patience=2), base_lr=LR, epochs=10, steps_per_epoch=1
    )
    fresh.load_state_dict(state)
    assert fresh.factor(10) == ours.factor(10) < 1


def test_param_groups_exclude_norm_and_bias_from_decay():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(4, 2))
    groups = param_groups(model, OptimConfig(weight_decay=0.05))
    decay = {id(p) for g in groups if g["weight_decay"] > 0 for p in g["params"]}
    assert decay == {id(model[0].weight), id(model[3].weight)}
    assert sum(len(g["params"]) for g in groups) == 6
    groups = param_groups(model, OptimConfig(weight_decay=0.05, decay_norm_bias=True))
    assert all(g["weight_decay"] == 0.05 for g in groups)
    # fine-tuning: the backbone learns at backbone_lr_mult times the head's rate
    opt = build_optimizer(
        param_groups(model, OptimConfig(lr=0.1), head={"3.weight", "3.bias"}, backbone_lr_mult=0.1),
        OptimConfig(lr=0.1),
    )
    lrs = {g["group"]: g["lr"] for g in opt.param_groups}
    assert lrs["head"] == 0.1 and lrs["backbone"] == pytest.approx(0.01)


@pytest.mark.parametrize("name,cls", [("sgd", torch.optim.SGD), ("adam", torch.optim.Adam), ("adamw", torch.optim.AdamW),
                                      ("rmsprop", torch.optim.RMSprop), ("adagrad", torch.optim.Adagrad)])  # fmt: skip
def test_build_optimizer_names(name, cls):
    cfg = OptimConfig(name=name, lr=0.01)
    assert isinstance(build_optimizer(param_groups(nn.Linear(2, 2), cfg), cfg), cls)


def test_init_schemes_have_the_papers_scale():
    torch.manual_seed(0)
    conv = nn.Conv2d(64, 128, 3)
    init_weights(conv, "kaiming")  # He 2015: std sqrt(2 / fan_out), fan_out = 128*3*3
    assert conv.weight.std().item() == pytest.approx(math.sqrt(2 / (128 * 9)), rel=0.03)
    assert conv.bias.abs().max() == 0
    lin = nn.Linear(300, 200)
    init_weights(lin, "xavier")  # Glorot 2010: U(-a, a), a = sqrt(6 / (fan_in + fan_out))
    bound = math.sqrt(6 / 500)
    assert lin.weight.abs().max().item() <= bound and lin.weight.abs().max().item() > 0.95 * bound
    before = lin.weight.clone()
    init_weights(lin, "paper")
    assert torch.equal(before, lin.weight)


def test_ema_by_hand():
    model = nn.Linear(1, 1, bias=False)
    nn.init.constant_(model.weight, 1.0)
    ema = ModelEma(model, decay=0.9)
    with torch.no_grad():
        model.weight.fill_(2.0)
    ema.update(model)  # 0.9 * 1 + 0.1 * 2
    with torch.no_grad():
        model.weight.fill_(3.0)
    ema.update(model)  # 0.9 * 1.1 + 0.1 * 3
    assert ema.module.weight.item() == pytest.approx(0.9 * 1.1 + 0.3)
    assert not ema.module.weight.requires_grad
