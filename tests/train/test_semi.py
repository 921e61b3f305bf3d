"""Semi-supervised training: the labelled subset, the three methods' losses by hand, exact resume, the errors."""

from __future__ import annotations

import json
import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from cnnlineage.cli import main
from cnnlineage.data import build_datasets
from cnnlineage.train import ConfigError, Trainer, config_from_dict, load_checkpoint
from cnnlineage.train.semi import (
    MeanTeacher,
    SemiTrainer,
    balanced_subset,
    consistency_loss,
    fixmatch_loss,
    linear_rampup,
    pseudo_label_loss,
    sigmoid_rampup,
)

TIMING = {"epoch_seconds", "images_per_second"}


def tiny(tmp_path, name="run", **sections):
    """Return a tiny semi config: 100 mnist5k digits, 1 label per class (10), 90 unlabelled in 2 steps of 5 x 10."""
    values = {
        "model": {"name": "lenet5_modern"},
        "data": {"name": "mnist5k", "train_subset": 100, "test_subset": 40, "batch_size": 10},
        "semi": {"method": "fixmatch", "labels_per_class": 1, "unlabelled_ratio": 5, "threshold": 0.5},
        "optim": {"lr": 0.05},
        "epochs": 2,
        "threads": 1,
        "run": {"out_dir": str(tmp_path / name), "progress": "none", "tensorboard": False, "plots": False},
    }
    for key, value in sections.items():
        if isinstance(value, dict):
            values.setdefault(key, {}).update(value)
        else:
            values[key] = value
    return config_from_dict(values)


def _metrics(run_dir):
    lines = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if k not in TIMING} for r in lines]


# ---------------------------------------------------------------------------- the labelled subset
def test_labelled_subset_has_n_per_class_is_seeded_and_nested():
    train, _, info = build_datasets("mnist5k")
    labels = train.labels
    ten = balanced_subset(labels, 10, seed=0, classes=info.classes)
    assert len(ten) == 100 and torch.bincount(labels[ten], minlength=10).tolist() == [10] * 10
    assert torch.equal(ten, balanced_subset(labels, 10, seed=0)) and torch.equal(ten, ten.sort().values)
    other = balanced_subset(labels, 10, seed=1)
    assert not torch.equal(ten, other) and torch.bincount(labels[other]).tolist() == [10] * 10
    one = balanced_subset(labels, 1, seed=0)
    assert set(one.tolist()) <= set(ten.tolist())  # smaller subsets of a seed lie inside larger ones
    with pytest.raises(ValueError, match=r"class '0': 400 images\); use at most 400"):
        balanced_subset(labels, 401, seed=0, classes=info.classes)


def test_unlabelled_images_carry_no_label_and_the_baseline_trains_on_the_same_subset(tmp_path):
    semi = SemiTrainer(tiny(tmp_path, "semi"), log=lambda *_: None)
    base = SemiTrainer(tiny(tmp_path, "base", semi={"method": "none"}), log=lambda *_: None)
    assert torch.equal(semi.labelled_indices, base.labelled_indices) and len(semi.labelled_indices) == 10
    assert semi.num_unlabelled == 90 and len(semi.train_set) == 90 and len(base.train_set) == 10
    views, label = semi.train_set[(3, 1234)]
    assert label == -1 and views.shape == (2, 1, 32, 32) and not torch.equal(views[0], views[1])
    assert torch.equal(semi.train_set[(3, 1234)][0], views)  # seeded: the same key gives the same views
    assert semi.batches_per_epoch == 2 and base.batches_per_epoch == 1
    # the labelled stream cycles through seeded permutations: each pass holds every labelled image once
    x, y = semi._labelled_batch(0)
    assert sorted(y.tolist()) == list(range(10)) and x.shape == (10, 1, 32, 32)


# ---------------------------------------------------------------------------- the losses by hand
def test_fixmatch_masks_unconfident_pseudo_labels_and_averages_over_the_whole_batch():
    weak = torch.tensor([[5.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 6.0]], requires_grad=True)
    strong = torch.tensor([[0.0, 0.0, 0.0], [2.0, 0.0, 0.0], [0.0, 1.0, 0.0]], requires_grad=True)
    # max softmax: e^5/(e^5+2) = 0.9867, e/(e+2) = 0.576, e^6/(e^6+2) = 0.9951; threshold 0.95
    loss, mask = fixmatch_loss(weak, strong, threshold=0.95)
    assert mask.tolist() == [1.0, 0.0, 1.0]
    expected = (
        math.log(3.0) + math.log(2.0 + math.e)
    ) / 3  # CE(strong_0, 0) + CE(strong_2, 2), over 3 images
    assert loss.item() == pytest.approx(expected, rel=1e-5)
    loss.backward()
    assert (
        weak.grad is None and strong.grad[1].abs().sum() == 0
    )  # the target is a constant; masked rows get none
    e5 = math.exp(5) / (math.exp(5) + 2)
    assert fixmatch_loss(weak, strong, threshold=e5)[1].tolist() == [1.0, 0.0, 1.0]  # >= threshold counts


def test_pseudo_label_loss_and_its_linear_ramp():
    logits = torch.tensor([[4.0, 0.0], [0.0, 0.5]])
    loss, mask = pseudo_label_loss(logits, threshold=0.9)  # 0.982 counts, 0.622 does not
    assert mask.tolist() == [1.0, 0.0]
    assert loss.item() == pytest.approx(math.log(1 + math.exp(-4.0)) / 2, rel=1e-5)
    assert pseudo_label_loss(logits, threshold=0.0)[0].item() == pytest.approx(
        (math.log(1 + math.exp(-4.0)) + math.log(1 + math.exp(-0.5))) / 2, rel=1e-6
    )  # threshold 0: Lee 2013's original, every argmax is a target
    assert [linear_rampup(t, 5) for t in (0, 2.5, 5, 9)] == [0.0, 0.5, 1.0, 1.0] and linear_rampup(
        0, 0
    ) == 1.0


def test_mean_teacher_ema_update_and_consistency_by_hand():
    student = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2))
    step = [0]
    teacher = MeanTeacher(student, 0.9, step=lambda: step[0])
    with torch.no_grad():
        student[0].weight.fill_(1.0)
        student[1].running_mean.fill_(7.0)
    teacher.update(student)  # step 0: alpha = min(1 - 1/1, 0.9) = 0, the teacher copies the student
    assert torch.equal(teacher.module[0].weight, student[0].weight)
    assert teacher.module[1].running_mean.tolist() == [0.0, 0.0]  # buffers are the teacher's own
    with torch.no_grad():
        student[0].weight.fill_(3.0)
    step[0] = 4  # alpha = min(1 - 1/5, 0.9) = 0.8: 0.8 * 1 + 0.2 * 3 = 1.4
    teacher.update(student)
    torch.testing.assert_close(teacher.module[0].weight, torch.full((2, 2), 1.4))
    step[0] = 100  # alpha = 0.9: 0.9 * 1.4 + 0.1 * 3 = 1.56
    teacher.update(student)
    torch.testing.assert_close(teacher.module[0].weight, torch.full((2, 2), 1.56))
    # softmax([0, 0]) = [.5, .5], softmax([ln 3, 0]) = [.75, .25]: mean of squares (.25² + .25²) / 2
    s = torch.zeros(1, 2, requires_grad=True)
    cost = consistency_loss(s, torch.tensor([[math.log(3.0), 0.0]]))
    assert cost.item() == pytest.approx(0.0625, rel=1e-5)
    assert sigmoid_rampup(0, 5) == pytest.approx(math.exp(-5)) and sigmoid_rampup(5, 5) == 1.0
    assert sigmoid_rampup(2.5, 5) == pytest.approx(math.exp(-1.25)) and sigmoid_rampup(1, 0) == 1.0


def test_a_fixmatch_step_is_the_hand_written_loss(tmp_path):
    """The trainer's first step equals CE(labelled) + mean(mask * CE(strong, argmax weak)) from the same inputs."""
    t = SemiTrainer(tiny(tmp_path, epochs=1, optim={"lr": 0.05, "momentum": 0.0}), log=lambda *_: None)
    before = {k: v.clone() for k, v in t.model.state_dict().items()}
    images, _ = next(iter(t.train_loader))
    x_l, y_l = t._labelled_batch(0)
    with torch.no_grad():  # a threshold that keeps about half of this batch's pseudo-labels
        t.cfg.semi.threshold = float(t.model(images[:, 0]).softmax(1).max(1).values.median())
    model = t._prepare_epoch(0)
    stats = t._train_batch(model, images, torch.full((len(images),), -1), sync=True)
    grads = {n: p.grad.clone() for n, p in t.model.named_parameters()}
    t.model.load_state_dict(before)
    t.model.zero_grad()
    logits = t.model(torch.cat([x_l, images[:, 0], images[:, 1]]))
    weak, strong = logits[10:60].detach(), logits[60:]
    conf, pseudo = weak.softmax(1).max(1)
    mask = (conf >= t.cfg.semi.threshold).float()
    loss = (
        F.cross_entropy(logits[:10], y_l) + (F.cross_entropy(strong, pseudo, reduction="none") * mask).mean()
    )
    loss.backward()
    assert stats["loss"] == pytest.approx(loss.item(), rel=1e-5) and 0 < mask.sum() < 50
    for n, p in t.model.named_parameters():
        torch.testing.assert_close(grads[n], p.grad, rtol=1e-4, atol=1e-6)


# ---------------------------------------------------------------------------- resume, records, errors
class _Stop(Exception):
    pass


@pytest.mark.parametrize("method", ["fixmatch", "mean-teacher"])
def test_semi_run_resumes_bit_exactly(tmp_path, method):
    cfg = dict(semi={"method": method}, run={"checkpoint_every_steps": 1})
    ref = SemiTrainer(tiny(tmp_path, "ref", **cfg), log=lambda *_: None)
    ref.fit()

    def crash(trainer, stats):
        if trainer.global_step == 3:  # mid-epoch 2, after the step-3 checkpoint
            raise _Stop

    cut = tiny(tmp_path, "cut", **cfg)
    with pytest.raises(_Stop):
        SemiTrainer(cut, hooks={"on_step_end": [crash]}, log=lambda *_: None).fit()
    resumed = SemiTrainer(cut, resume=True, log=lambda *_: None)
    assert (resumed.epoch, resumed.batch_in_epoch, resumed.global_step) == (1, 1, 3)
    resumed.fit()
    pairs = [(ref.model, resumed.model)] + ([(ref.ema.module, resumed.ema.module)] if ref.ema else [])
    for a, b in pairs:
        sa, sb = a.state_dict(), b.state_dict()
        assert all(torch.equal(sa[k], sb[k]) for k in sa)
    rows = _metrics(tmp_path / "ref")
    assert rows == _metrics(tmp_path / "cut") and [r["step"] for r in rows] == [2, 4]
    assert "train_unlabelled_loss" in rows[0] and ("ema_top1" in rows[0]) == (method == "mean-teacher")
    if method == "mean-teacher":
        ckpt = load_checkpoint(tmp_path / "cut" / "checkpoints" / "last.pt")
        assert all(torch.equal(ckpt["ema"][k], v) for k, v in ref.ema.module.state_dict().items())
        # the last step of epoch 1 starts after 1 of 2 steps: t = 0.5 epochs of the 5-epoch ramp
        assert rows[0]["train_unlabelled_weight"] == pytest.approx(math.exp(-5 * (1 - 0.5 / 5) ** 2))


def test_errors_are_one_line_and_name_the_fix(tmp_path, capsys):
    with pytest.raises(
        ConfigError, match="needs the number of labelled images per class: add --labels-per-class"
    ):
        tiny(tmp_path, semi={"labels_per_class": 0})
    with pytest.raises(ValueError, match=r"use at most \d+"):
        SemiTrainer(tiny(tmp_path, semi={"labels_per_class": 50}), log=lambda *_: None)
    with pytest.raises(ConfigError, match="SemiTrainer"):
        Trainer(tiny(tmp_path), log=lambda *_: None)
    with pytest.raises(ConfigError, match="mixup/cutmix"):
        tiny(tmp_path, augment={"mixup_alpha": 0.2})
    assert not (tmp_path / "run").exists()  # refused before the run directory exists
    assert main(["train", "lenet5", "--semi", "mean-teacher", "--quiet"]) == 2
    assert "add --labels-per-class N" in capsys.readouterr().err
    assert (
        main(["train", "lenet5", "--labels-per-class", "401", "--out", str(tmp_path / "x"), "--quiet"]) == 2
    )
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "use at most 400" in err and not (tmp_path / "x").exists()


def test_strong_augmentation_parts():
    from cnnlineage.train.semi import Cutout, RandomMagnitudeRandAugment

    space = RandomMagnitudeRandAugment._AUGMENTATION_SPACE
    assert space["TranslateX"][0](31, 32, 32)[-1].item() == pytest.approx(9.6)  # FixMatch: 30% of the side
    assert space["Rotate"][0](31, 32, 32)[-1].item() == 30.0  # the rest is torchvision's table
    torch.manual_seed(0)
    for _ in range(20):
        out = Cutout(0.5)(torch.ones(1, 8, 8))
        rows, cols = (out[0] == 0).any(1).nonzero().flatten(), (out[0] == 0).any(0).nonzero().flatten()
        assert 0 < len(rows) <= 4 and 0 < len(cols) <= 4  # a 4x4 square, clipped at the border
        assert (out[0] == 0).sum() == len(rows) * len(cols)  # one rectangle


@pytest.mark.slow
def test_two_gloo_processes_match_one_process(tmp_path):
    """Under torchrun each rank takes its share of the unlabelled and labelled batches: the weights equal one process's."""
    import os
    import subprocess
    import sys

    import yaml

    from cnnlineage.train import config_to_dict

    one = SemiTrainer(tiny(tmp_path, "one", semi={"threshold": 0.0}), log=lambda *_: None)
    one.fit()
    recipe = tmp_path / "two.yaml"
    recipe.write_text(yaml.safe_dump(config_to_dict(tiny(tmp_path, "two", semi={"threshold": 0.0}))))
    cmd = [sys.executable, "-m", "cnnlineage", "train", "--config", str(recipe), "--nproc", "2", "--quiet"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    two = load_checkpoint(tmp_path / "two" / "checkpoints" / "last.pt")["model"]
    for k, v in one.model.state_dict().items():
        torch.testing.assert_close(two[k], v, atol=1e-5, rtol=0)
    rows = _metrics(tmp_path / "two")
    assert rows[0]["train_confident"] == 100.0 and rows[0]["train_unlabelled_loss"] > 0
    for a, b in zip(rows, one.history):
        for key in ("train_loss", "train_unlabelled_loss", "test_top1"):
            assert abs(a[key] - b[key]) <= 1e-5, (key, a[key], b[key])
