"""DistributedDataParallel: two gloo processes on the CPU end with the weights of one process (same global batch, seed)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
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
    # every logged metric equals the single process's (the training loss was once summed over ranks twice)
    for two_row, one_row in zip(rows, one.history):
        for key in ("train_loss", "train_top1", "test_loss", "test_top1", "test_top5", "lr"):
            assert abs(two_row[key] - one_row[key]) <= 1e-5, (key, two_row[key], one_row[key])
    assert f"train loss {rows[-1]['train_loss']:.4f}" in done.stdout

    # a refused start prints one line, not every rank's traceback and torchrun's report
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert again.returncode == 2 and again.stderr.count("\n") == 1, again.stderr[-3000:]
    assert (
        again.stderr.startswith("cnnlineage train: error: run directory") and "finished run" in again.stderr
    )


def _job_pids(mark: str) -> list[int]:
    """Return the pids of live processes whose environment carries ``mark`` (a job's launcher, agent and ranks)."""
    pids = []
    for d in os.listdir("/proc"):
        try:
            if d.isdigit() and mark.encode() in open(f"/proc/{d}/environ", "rb").read():
                if open(f"/proc/{d}/stat").read().split()[2] != "Z":
                    pids.append(int(d))
        except OSError:
            pass
    return pids


def _rank_pid(mark: str, rank: int) -> int:
    for pid in _job_pids(mark):
        env = open(f"/proc/{pid}/environ", "rb").read().split(b"\0")
        if f"RANK={rank}".encode() in env and b"LOCAL_RANK=" + str(rank).encode() in env:
            return pid
    raise AssertionError(f"no rank {rank}")


@pytest.mark.slow  # two 2-process jobs: about 45 s of CPU
def test_a_signalled_launcher_stops_the_job_and_a_stalled_rank_is_named(tmp_path):
    import signal
    import time
    import uuid

    mark = f"CNNLINEAGE_TEST_JOB={uuid.uuid4().hex}"
    env = {**os.environ, "OMP_NUM_THREADS": "1", mark.split("=")[0]: mark.split("=")[1]}
    values = _config(tmp_path / "run")
    values["epochs"], values["data"]["train_subset"] = 1000, 64
    values["run"].update(progress="lines", log_every_steps=1, checkpoint_every_steps=1, dist_timeout=3)
    recipe = tmp_path / "long.yaml"
    recipe.write_text(yaml.safe_dump(config_to_dict(config_from_dict(values))))
    cmd = [sys.executable, "-m", "cnnlineage", "train", "--config", str(recipe), "--nproc", "2"]

    def start(*extra):
        job = subprocess.Popen(
            [*cmd, *extra], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
        )
        for line in job.stdout:
            if " step " in line and (tmp_path / "run" / "checkpoints" / "last.pt").is_file():
                return job  # training, with a checkpoint behind it
        raise AssertionError(job.communicate()[1][-3000:])

    job = start()
    job.send_signal(signal.SIGTERM)  # to the launcher only, as a service manager or `kill` would
    _, err = job.communicate(timeout=120)
    assert job.returncode == 128 + signal.SIGTERM, err[-3000:]
    assert err.startswith("cnnlineage train: stopped by SIGTERM at epoch ") and err.count("\n") == 1, err
    assert not (tmp_path / "run" / ".lock").exists()
    time.sleep(1)
    assert _job_pids(mark) == [], "the agent or a rank outlived the launcher"

    job = start("--resume", str(tmp_path / "run"))  # the checkpoint resumes; then rank 1 stops answering
    os.kill(_rank_pid(mark, 1), signal.SIGSTOP)
    _, err = job.communicate(timeout=120)
    assert job.returncode == 2 and err.count("\n") == 1, err[-3000:]
    assert err.startswith("cnnlineage train: error: rank 0: rank(s) 1 stopped answering (killed 1)"), err
    time.sleep(1)
    assert _job_pids(mark) == []
