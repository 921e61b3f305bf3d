"""`cnnlineage train / eval / predict` end to end on tiny runs."""

from __future__ import annotations

import json

import numpy as np
import pytest

from cnnlineage.cli import main

TINY = ["--set", "data.train_subset=256", "--set", "threads=1",
        "--set", "run.tensorboard=false", "--set", "run.plots=false", "--quiet"]  # fmt: skip


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "run"
    code = main(
        [
            "train",
            "lenet5_modern",
            "--epochs",
            "2",
            "--lr",
            "0.05",
            "--batch-size",
            "32",
            "--out",
            str(out),
            *TINY,
        ]
    )
    assert code == 0
    return out


def test_train_prints_held_out_accuracy_and_refuses_to_overwrite(trained, capsys):
    summary = json.loads((trained / "summary.json").read_text())
    assert summary["model"] == "lenet5_modern" and summary["epochs"] == 2 and summary["dataset"] == "mnist5k"
    code = main(["train", "lenet5_modern", "--epochs", "1", "--out", str(trained), *TINY])
    err = capsys.readouterr().err
    assert code == 2 and "holds a finished run; pass --overwrite" in err


def test_print_config_shows_recipe_and_overrides(capsys):
    assert main(["train", "lenet5", "--print-config", "--set", "optim.lr=0.02", "--epochs", "3"]) == 0
    out = capsys.readouterr().out
    assert "name: lenet5" in out and "lr: 0.02" in out and "epochs: 3" in out and "affine_degrees: 10" in out


def test_bad_override_is_a_clear_error(capsys):
    assert main(["train", "lenet5", "--set", "optim.lrr=0.1", "--print-config"]) == 2
    err = capsys.readouterr().err
    assert "unknown key 'optim.lrr'" in err and "optim.lr" in err
    assert main(["train", "lenet", "--print-config"]) == 2
    assert "unknown model 'lenet'" in capsys.readouterr().err


def test_missing_dataset_says_where_it_looked(tmp_path, capsys):
    code = main(
        [
            "train",
            "lenet5_modern",
            "--data",
            "cifar10",
            "--data-dir",
            str(tmp_path),
            "--out",
            str(tmp_path / "r"),
            *TINY,
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and str(tmp_path / "cifar-10-batches-py") in err and "--download" in err


def test_eval_reproduces_the_training_runs_accuracy(trained, capsys):
    capsys.readouterr()
    assert main(["eval", str(trained / "checkpoints" / "last.pt"), "--format", "json"]) == 0
    result = json.loads(capsys.readouterr().out)
    summary = json.loads((trained / "summary.json").read_text())
    assert result["samples"] == 1000 and result["top1"] == pytest.approx(summary["final_top1"], abs=1e-9)
    assert result["top5"] == pytest.approx(summary["final_top5"], abs=1e-9)
    assert main(["eval", str(trained / "checkpoints" / "last.pt"), "--per-class"]) == 0
    out = capsys.readouterr().out
    assert "top-1" in out and "class" in out and summary["final_top1"] is not None


def test_eval_refuses_a_crafted_checkpoint(tmp_path, capsys):
    import os

    import torch

    class Evil:
        def __reduce__(self):
            return (os.system, ("true",))

    path = tmp_path / "evil.pt"
    torch.save({"model": Evil()}, path)
    assert main(["eval", str(path)]) == 2
    assert f"refusing to load {path}" in capsys.readouterr().err


def test_predict_gives_topk_probabilities(trained, tmp_path, capsys):
    from PIL import Image

    from cnnlineage.data import build_datasets

    _, test, _ = build_datasets("mnist5k")
    files = []
    for i in (0, 500):
        arr = test.images[i, 0].numpy()
        files.append(tmp_path / f"digit{i}.png")
        Image.fromarray(np.stack([arr] * 3, axis=-1)).save(
            files[-1]
        )  # an RGB PNG: turned grey, resized to 32x32
    capsys.readouterr()
    assert (
        main(
            [
                "predict",
                str(trained / "checkpoints" / "best.pt"),
                *map(str, files),
                "--topk",
                "10",
                "--format",
                "json",
            ]
        )
        == 0
    )
    results = json.loads(capsys.readouterr().out)
    assert [r["image"] for r in results] == list(map(str, files))
    for r in results:
        probs = [p for _, p in r["top"]]
        assert len(probs) == 10 and abs(sum(probs) - 1) < 1e-5 and probs == sorted(probs, reverse=True)
        assert {c for c, _ in r["top"]} == {str(d) for d in range(10)}
    assert main(["predict", str(trained / "checkpoints" / "best.pt"), str(files[0]), "--topk", "3"]) == 0
    assert capsys.readouterr().out.count("%") == 3
    assert main(["predict", str(trained / "checkpoints" / "best.pt"), str(tmp_path / "missing.png")]) == 2


def test_nan_loss_exits_with_status_3(tmp_path, capsys):
    code = main(
        ["train", "lenet5_modern", "--epochs", "1", "--lr", "1e30", "--out", str(tmp_path / "nan"), *TINY]
    )
    err = capsys.readouterr().err
    assert code == 3 and "loss is nan at epoch 1" in err
    # the first epoch failed: no checkpoint exists, and the message says so instead of naming a missing folder
    assert "No checkpoint was written yet" in err and not (tmp_path / "nan" / "checkpoints").exists()


def test_resume_extends_a_run_and_needs_a_model_or_recipe(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "lenet5_modern", "--epochs", "1", "--out", str(out), *TINY]) == 0
    assert (
        main(["train", "--resume", str(out), "--epochs", "2", "--quiet"]) == 0
    )  # the saved config, 1 more epoch
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2] and rows[1]["step"] == 2 * rows[0]["step"]
    assert "resuming at epoch 2, batch 0" in capsys.readouterr().out
    assert main(["train", "--print-config"]) == 2
    assert "name a model" in capsys.readouterr().err


def _one_line_error(capsys, argv, *, code=2):
    got = main(argv)
    err = capsys.readouterr().err
    assert got == code and err.count("\n") == 1 and "Traceback" not in err, err
    return err


@pytest.mark.parametrize("nproc", ["0", "-2"])
def test_nproc_below_one_is_refused(capsys, nproc):
    err = _one_line_error(capsys, ["train", "lenet5", "--nproc", nproc])
    assert f"--nproc must be at least 1 (the number of processes); got {nproc}" in err


def test_unusable_out_paths_are_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "taken").write_text("x")
    err = _one_line_error(capsys, ["train", "lenet5_modern", "--out", "taken", *TINY])
    assert "run directory taken is a file, not a directory; pick another --out" in err
    err = _one_line_error(capsys, ["train", "lenet5_modern", "--out", "/proc/cnnlineage/run", *TINY])
    assert "cannot create run directory /proc/cnnlineage/run" in err and "pick a writable --out" in err
    err = _one_line_error(capsys, ["train", "lenet5_modern", "--set", "model.kwargs.nonsense=1", *TINY])
    assert "model.kwargs.nonsense: lenet5_modern takes no setting 'nonsense'; it takes pad_input" in err
    assert not (tmp_path / "runs").exists()  # a refused config leaves no run directory behind


def test_set_messages_name_the_nearest_key_and_the_expected_type(capsys):
    err = _one_line_error(capsys, ["train", "lenet5", "--set", "optim.lrr=0.1", "--print-config"])
    assert "unknown key 'optim.lrr'; did you mean optim.lr? valid keys in optim:" in err and len(err) < 300
    err = _one_line_error(capsys, ["train", "lenet5", "--set", "augment.hflip=yes", "--print-config"])
    assert (
        "augment.hflip: expected a number (e.g. 0.5), got the boolean true (from --set augment.hflip=yes)"
        in err
    )
    assert main(["train", "lenet5", "--set", "run.plots=no", "--print-config"]) == 0
    assert "plots: false" in capsys.readouterr().out


def test_a_full_disk_while_checkpointing_is_one_line_and_keeps_the_last_checkpoint(
    tmp_path, capsys, monkeypatch
):
    from cnnlineage.train import checkpoint as ck
    from cnnlineage.train import load_checkpoint

    real, calls = ck.torch.save, []

    def full_after_epoch_1(obj, f):
        calls.append(obj.get("position", {}).get("epoch"))
        if calls[-1] == 2:
            raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 6528 vs 6416")
        return real(obj, f)

    monkeypatch.setattr(ck.torch, "save", full_after_epoch_1)
    out = tmp_path / "run"
    err = _one_line_error(capsys, ["train", "lenet5_modern", "--epochs", "2", "--out", str(out), *TINY])
    assert (
        f"cannot write checkpoint {out / 'checkpoints' / 'last.pt'}: the write stopped short (is the disk full?)"
        in err
    )
    monkeypatch.undo()
    assert load_checkpoint(out / "checkpoints" / "last.pt")["position"]["epoch"] == 1
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["best.pt", "last.pt"]
    assert not (out / ".lock").exists()


def test_sigterm_saves_releases_and_says_so(tmp_path):
    import signal
    import subprocess
    import sys

    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "cnnlineage", "train", "lenet5_modern", "--epochs", "200", "--out", str(out),
           "--set", "data.train_subset=256", "--set", "threads=1", "--set", "run.tensorboard=false",
           "--set", "run.plots=false", "--set", "run.progress=lines", "--set", "run.log_every_steps=1"]  # fmt: skip
    job = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for line in job.stdout:  # wait until training has started
        if line.startswith("epoch 1/200 step 1/4"):
            break
    job.send_signal(signal.SIGTERM)
    _, err = job.communicate(timeout=60)
    assert job.returncode == 128 + signal.SIGTERM, err
    assert err.startswith("cnnlineage train: stopped by SIGTERM at epoch ") and err.count("\n") == 1, err
    assert f"continue with `cnnlineage train --resume {out}`" in err
    assert (out / "checkpoints" / "last.pt").is_file() and not (out / ".lock").exists()
