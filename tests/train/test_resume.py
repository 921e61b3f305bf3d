"""Crash-resume: a run SIGKILLed at random instants and resumed ends bit-identical to an uninterrupted run."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import time

import torch

from cnnlineage.train import Trainer, config_from_dict, load_checkpoint

# The child prints one line per optimizer step (after that step's checkpoint), so the parent
# can kill it at a chosen step plus a random delay that lands anywhere in the following work,
# checkpoint writes included.
CHILD = """
import json, sys
from cnnlineage.train import Trainer, config_from_dict
cfg = config_from_dict(json.loads(sys.argv[1]))
tell = lambda trainer, stats: print(f"step {trainer.global_step}", flush=True)
Trainer(cfg, resume=sys.argv[2] == "1", hooks={"on_step_end": [tell]}, log=lambda *_: None).fit()
print("done", flush=True)
"""


def _config(out_dir) -> dict:
    return {
        "model": {"name": "lenet5_modern"},
        "data": {"name": "mnist5k", "train_subset": 192, "test_subset": 64, "batch_size": 32},
        "augment": {"affine_degrees": 10, "mixup_alpha": 0.2},  # random augmentation must resume exactly too
        "optim": {"lr": 0.05, "weight_decay": 5e-4},
        "schedule": {"name": "cosine", "warmup_epochs": 0.5},
        "epochs": 4,  # 24 steps: room for three kills of at most a few steps each
        "threads": 1,
        "run": {
            "out_dir": str(out_dir),
            "checkpoint_every_steps": 1,
            "progress": "none",
            "tensorboard": False,
            "plots": False,
        },
    }


def _metrics(run_dir):
    rows = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if k not in ("epoch_seconds", "images_per_second")} for r in rows]


def test_sigkill_at_random_points_then_resume_is_bit_exact(tmp_path):
    ref = Trainer(config_from_dict(_config(tmp_path / "ref")), log=lambda *_: None)
    ref.fit()

    seed = time.time_ns()
    rng = random.Random(seed)
    seed_note = f"kill schedule seed {seed}"  # shown if the test fails: random.Random(seed) replays it
    values = json.dumps(_config(tmp_path / "cut"))
    kills, resume, finished = 0, False, False
    while not finished:
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, values, "1" if resume else "0"], stdout=subprocess.PIPE, text=True
        )
        target = rng.randint(1, 3) if kills < 3 else 10**9  # three kills, then run to the end
        seen = 0
        while True:
            line = child.stdout.readline()
            if not line or line.startswith("done"):
                finished = True
                break
            seen += 1
            if seen >= target:
                time.sleep(rng.uniform(0.0, 0.02))  # a step (with its checkpoint) takes about 10-15 ms
                child.send_signal(signal.SIGKILL)
                kills += 1
                break
        child.wait(timeout=120)
        if finished:
            assert child.returncode == 0, seed_note
        else:
            assert child.returncode in (-signal.SIGKILL, 0), seed_note
        resume = True

    assert kills == 3, seed_note
    got = load_checkpoint(tmp_path / "cut" / "checkpoints" / "last.pt")
    want = ref.model.state_dict()
    assert all(torch.equal(got["model"][k], want[k]) for k in want), seed_note
    assert _metrics(tmp_path / "cut") == _metrics(tmp_path / "ref"), seed_note
    assert json.loads((tmp_path / "cut" / "summary.json").read_text())["epochs"] == 4
