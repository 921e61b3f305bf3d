"""DistributedDataParallel: two gloo processes on the CPU end with the weights of one process (same global batch, seed)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import torch
import yaml

from cnnlineage.train import Trainer, config_from_dict, config_to_dict, load_checkpoint


def _config(out_dir) -> dict:
    return {
        "model": {"name": "lenet5_modern"},
        "data": {"name": "mnist5k", "train_subset": 128, "test_subset": 50, "batch_size": 32},
        "augment": {"affine_degrees": 10},  # per-sample seeds: the same augmentation whichever rank loads it
        "optim": {"lr": 0.05, "weight_decay": 5e-4},
        "epochs": 2,
        "threads": 1,
        "run": {"out_dir": str(out_dir), "progress": "none", "tensorboard": False, "plots": False},
    }


def test_two_gloo_processes_match_one_process(tmp_path):
    one = Trainer(config_from_dict(_config(tmp_path / "one")), log=lambda *_: None)
    one.fit()

    recipe = tmp_path / "two.yaml"
    recipe.write_text(yaml.safe_dump(config_to_dict(config_from_dict(_config(tmp_path / "two")))))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "cnnlineage", "train", "--config", str(recipe), "--nproc", "2", "--quiet"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert done.stdout.count("epoch 2/2") == 1  # rank 0 alone logs

    summary = json.loads((tmp_path / "two" / "summary.json").read_text())
    assert summary["world_size"] == 2
    two = load_checkpoint(tmp_path / "two" / "checkpoints" / "last.pt")["model"]
    for k, v in one.model.state_dict().items():
        torch.testing.assert_close(two[k], v, atol=1e-5, rtol=0)
    rows = [json.loads(x) for x in (tmp_path / "two" / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2]  # one line per epoch: only rank 0 writes
