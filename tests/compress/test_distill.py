"""Knowledge distillation (Hinton et al. 2015): the loss by hand, and the trainer's distilled step."""

from __future__ import annotations

import copy
import math

import pytest
import torch
import torch.nn.functional as F
from _tiny import tiny_config

from cnnlineage.train import ConfigError, Trainer, config_from_dict, load_checkpoint
from cnnlineage.train.distill import distillation_loss, soft_target_loss


def _by_hand(s, t, y, T, alpha):
    """alpha·T²·(1/B)·Σ_b Σ_i p_i (log p_i − log q_i) + (1 − alpha)·CE, with p = softmax(t/T), q = softmax(s/T)."""
    total_soft, total_hard = 0.0, 0.0
    for b in range(len(s)):
        zs, zt = [float(v) / T for v in s[b]], [float(v) / T for v in t[b]]
        ls = math.log(sum(math.exp(v) for v in zs))
        lt = math.log(sum(math.exp(v) for v in zt))
        total_soft += sum(math.exp(zt[i] - lt) * ((zt[i] - lt) - (zs[i] - ls)) for i in range(len(zs)))
        raw = [float(v) for v in s[b]]
        total_hard += math.log(sum(math.exp(v) for v in raw)) - raw[int(y[b])]
    n = len(s)
    return alpha * T * T * total_soft / n + (1 - alpha) * total_hard / n


def test_distillation_loss_matches_the_formula_by_hand():
    g = torch.Generator().manual_seed(1)
    s, t = torch.randn(4, 5, generator=g) * 3, torch.randn(4, 5, generator=g) * 3
    y = torch.tensor([0, 3, 4, 1])
    got = distillation_loss(s, t, F.cross_entropy(s, y), temperature=4.0, alpha=0.9)
    assert float(got) == pytest.approx(_by_hand(s, t, y, 4.0, 0.9), rel=1e-5)
    assert float(soft_target_loss(t, t, temperature=3.0)) == pytest.approx(0.0, abs=1e-6)


def test_trainer_step_uses_the_distillation_loss(tiny_ckpt, tmp_path):
    """The first batch's logged loss equals alpha·T²·KL + (1 − alpha)·CE from the initial student and the teacher."""
    cfg = config_from_dict(
        tiny_config(tmp_path / "kd", epochs=1, data__train_subset=128,
                    distill={"teacher": str(tiny_ckpt), "temperature": 2.0, "alpha": 0.7})
    )  # fmt: skip
    seen = {}

    def start(tr):
        seen["student"] = copy.deepcopy(tr.model).eval()
        tr.train_sampler.set_epoch(0)
        seen["batch"] = next(iter(tr.train_loader))

    def step(tr, stats):
        seen.setdefault("loss", stats["loss"])

    tr = Trainer(cfg, hooks={"on_train_start": [start], "on_step_end": [step]}, log=lambda *_: None)
    assert not any(p.requires_grad for p in tr.teacher.parameters()) and not tr.teacher.training
    assert all(
        id(p) not in {id(q) for q in tr.teacher.parameters()}
        for g in tr.optimizer.param_groups
        for p in g["params"]
    )
    tr.fit()
    x, y = seen["batch"]
    with torch.no_grad():
        s, t = seen["student"](x), tr.teacher(x)
    assert seen["loss"] == pytest.approx(_by_hand(s, t, y, 2.0, 0.7), rel=1e-4)
    assert not any(
        k.startswith("teacher") for k in load_checkpoint(tmp_path / "kd" / "checkpoints" / "last.pt")["model"]
    )


def test_distilled_run_resumes_exactly(tiny_ckpt, tmp_path):
    kd = {"teacher": str(tiny_ckpt)}
    straight = Trainer(
        config_from_dict(tiny_config(tmp_path / "a", data__train_subset=256, distill=kd)), log=lambda *_: None
    )
    straight.fit()
    first = Trainer(
        config_from_dict(tiny_config(tmp_path / "b", epochs=1, data__train_subset=256, distill=kd)),
        log=lambda *_: None,
    )
    first.fit()
    resumed = Trainer(
        config_from_dict(tiny_config(tmp_path / "b", data__train_subset=256, distill=kd)),
        resume=True,
        log=lambda *_: None,
    )
    resumed.fit()
    for (k, a), b in zip(straight.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.equal(a, b), k


def test_bad_distillation_settings_are_refused(tmp_path):
    with pytest.raises(ConfigError, match="distill.temperature"):
        config_from_dict(tiny_config(tmp_path, distill={"teacher": "x.pt", "temperature": 0}))
    with pytest.raises(ConfigError, match="distill.alpha"):
        config_from_dict(tiny_config(tmp_path, distill={"alpha": 1.5}))
