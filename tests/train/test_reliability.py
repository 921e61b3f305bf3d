"""The trainer under adversity: kills between checkpoint writes, signals, empty or mismatched data, bad settings."""

from __future__ import annotations

import json
import math
import os
import signal

import pytest
import torch

from cnnlineage.data import TensorImageDataset
from cnnlineage.train import (
    CheckpointError,
    ConfigError,
    RunDirError,
    Trainer,
    config_from_dict,
    load_checkpoint,
)
from cnnlineage.train import trainer as trainer_module
from cnnlineage.train.checkpoint import new_run_dir
from cnnlineage.train.signals import TrainingInterrupted


def small(tmp_path, name="run", **sections):
    """Return a tiny config: 256 train / 100 test digits, batch 32, 2 epochs, one thread."""
    values = {
        "model": {"name": "lenet5_modern"},
        "data": {"name": "mnist5k", "train_subset": 256, "test_subset": 100, "batch_size": 32},
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


def quiet(**kw):
    return {"log": lambda *_: None, **kw}


def test_best_pt_matches_the_summary_after_a_kill_between_the_two_checkpoint_writes(tmp_path, monkeypatch):
    cfg = small(tmp_path, epochs=3, optim={"name": "adamw", "lr": 0.003})  # learns: each epoch is better
    real_save = trainer_module.save_checkpoint
    writes = []

    def dies_after_the_first_write_of_epoch_3(state, path):
        writes.append(
            (state["position"]["epoch"] if "position" in state else state["metrics"]["epoch"], path.name)
        )
        if len(writes) >= 2 and writes[-2][0] == 3 and writes[-1][0] == 3:  # epoch 3's second write
            raise KeyboardInterrupt  # the process dies here
        return real_save(state, path)

    monkeypatch.setattr(trainer_module, "save_checkpoint", dies_after_the_first_write_of_epoch_3)
    with pytest.raises(KeyboardInterrupt):
        Trainer(cfg, **quiet()).fit()
    assert writes[-2:] == [(3, "best.pt"), (3, "last.pt")]  # best.pt first; the kill came before last.pt
    monkeypatch.undo()
    summary = Trainer(cfg, resume=True, **quiet()).fit()
    top1 = [json.loads(x)["test_top1"] for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert top1[2] > max(top1[:2]), f"epoch 3 must be the best for this test to mean anything: {top1}"
    best = load_checkpoint(tmp_path / "run" / "checkpoints" / "best.pt")
    assert summary["best_epoch"] == best["metrics"]["epoch"] == 3
    assert summary["best_top1"] == best["metrics"]["test_top1"]


def test_sigterm_stops_after_the_step_with_a_resumable_checkpoint(tmp_path):
    def term(trainer, stats):
        if trainer.global_step == 3:
            os.kill(os.getpid(), signal.SIGTERM)  # handled: the run stops after the next step

    cfg = small(tmp_path)
    with pytest.raises(
        TrainingInterrupted, match=r"stopped by SIGTERM at epoch 1, step 4: the checkpoint"
    ) as e:
        Trainer(cfg, hooks={"on_step_end": [term]}, **quiet()).fit()
    assert e.value.signum == signal.SIGTERM
    run = tmp_path / "run"
    assert load_checkpoint(run / "checkpoints" / "last.pt")["position"]["global_step"] == 4
    assert not (run / ".lock").exists() and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    assert Trainer(cfg, resume=True, **quiet()).fit()["epochs"] == 2


def test_a_signal_while_finishing_still_writes_the_summary(tmp_path):
    def term(trainer, record):
        if record["epoch"] == 2:  # the last epoch: plots and summary follow
            os.kill(os.getpid(), signal.SIGTERM)

    summary = Trainer(small(tmp_path), hooks={"on_epoch_end": [term]}, **quiet()).fit()
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["epochs"] == summary["epochs"] == 2


def test_empty_splits_and_sizes_the_data_cannot_fill_are_refused(tmp_path, monkeypatch):
    real = trainer_module.build_datasets

    def no_test_images(name, **kw):
        train, test, info = real(name, **kw)
        empty = TensorImageDataset(test.images[:0], test.labels[:0], num_classes=10, name=name)
        return train, empty, info

    monkeypatch.setattr(trainer_module, "build_datasets", no_test_images)
    with pytest.raises(ConfigError, match="mnist5k: the held-out split has no images"):
        Trainer(small(tmp_path, "a"), **quiet())
    monkeypatch.undo()
    with pytest.raises(
        ConfigError, match=r"data.batch_size \(1,000,000\) is larger than the training set \(256"
    ):
        Trainer(small(tmp_path, "b", data={"batch_size": 10**6}), **quiet())
    with pytest.raises(ConfigError, match=r"optim.accum_steps \(1,000,000\) exceeds the 8 batches"):
        Trainer(small(tmp_path, "c", optim={"accum_steps": 10**6}), **quiet())
    assert not any((tmp_path / n).exists() for n in "abc")  # refused before a run directory exists


def test_builder_keywords_are_checked_and_no_run_directory_is_left(tmp_path):
    with pytest.raises(ConfigError) as e:
        Trainer(small(tmp_path, model={"kwargs": {"nonsense": 1}}), **quiet())
    assert str(e.value) == (
        "model.kwargs.nonsense: lenet5_modern takes no setting 'nonsense'; it takes pad_input "
        "(num_classes and in_chans come from the data)"
    )
    assert not (tmp_path / "run").exists()


def test_default_run_directories_are_unique_within_one_second(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(trainer_module, "new_run_dir", lambda stem: new_run_dir(tmp_path / "fixed"))
    monkeypatch.setattr("time.strftime", lambda fmt, *a: fmt.replace("%Y%m%d-%H%M%S", "20260101-000000"))
    dirs = [new_run_dir(tmp_path / "runs" / "x") for _ in range(3)]
    assert [d.name for d in dirs] == ["x-20260101-000000", "x-20260101-000000-2", "x-20260101-000000-3"]


def test_resume_refuses_another_data_set_or_model(tmp_path):
    cfg = small(tmp_path, epochs=1)
    Trainer(cfg, **quiet()).fit()
    values = json.loads(json.dumps(cfg.__dict__, default=lambda o: o.__dict__))
    values["data"]["name"], values["epochs"] = "shapes10", 2
    values["data"]["train_subset"] = 64
    with pytest.raises(CheckpointError, match="was trained on mnist5k, not shapes10.*--finetune"):
        Trainer(config_from_dict(values), resume=True, **quiet())
    values["data"]["name"], values["model"]["name"], values["model"]["kwargs"] = "mnist5k", "lenet5", {}
    with pytest.raises(CheckpointError, match="holds a lenet5_modern run, not lenet5"):
        Trainer(config_from_dict(values), resume=True, **quiet())
    assert not (tmp_path / "run" / ".lock").exists()  # refused runs free the directory
    finetune = small(
        tmp_path,
        "ft",
        model={"name": "resnet20"},
        finetune={"checkpoint": str(tmp_path / "run" / "checkpoints" / "last.pt")},
    )
    with pytest.raises(ConfigError, match="holds lenet5_modern weights, not resnet20"):
        Trainer(finetune, **quiet())


def test_header_names_the_recipe_warns_on_large_upscales_and_hints_at_chance_level(tmp_path):
    lines = []
    cfg = small(tmp_path, data={"name": "digits", "train_subset": 64}, optim={"lr": 1e-9}, epochs=1)
    cfg.run.recipe = "lenet5_modern (its shipped recipe, made for mnist5k)"
    summary = Trainer(cfg, log=lines.append).fit()
    text = "\n".join(lines)
    assert "  recipe    lenet5_modern (its shipped recipe, made for mnist5k)" in text
    assert "digits images are 8x8 and lenet5_modern takes 32x32: every image is upscaled 4x" in text
    loss = json.loads((tmp_path / "run" / "metrics.jsonl").read_text())["train_loss"]
    assert loss >= math.log(10), "lr 1e-9 cannot learn: the loss must stay at or above chance"
    assert f"the training loss ({loss:.3f}) is not below chance level (ln 10 = 2.303)" in text
    assert summary["epochs"] == 1
    lines.clear()
    Trainer(
        small(tmp_path, "ok", epochs=1, optim={"name": "adamw", "lr": 0.003}), log=lines.append
    ).fit()  # learns: no hint, no upscale warning
    assert not any(x.startswith(("hint", "warning")) for x in lines)


def test_run_directory_that_is_a_file_or_locked_by_a_directory_is_refused(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(RunDirError, match=r"run directory .*file is a file, not a directory"):
        Trainer(small(tmp_path, "file"), **quiet())
    (tmp_path / "run" / ".lock").mkdir(parents=True)
    with pytest.raises(RunDirError, match=r"\.lock is not a lock file"):
        Trainer(small(tmp_path), **quiet())
    assert torch.get_num_threads() >= 1
