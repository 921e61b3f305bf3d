"""Checkpoints: atomic writes, weights_only loading (crafted pickles refused), corrupt files named, run-dir guards."""

from __future__ import annotations

import os
import random
import subprocess
import sys

import numpy as np
import pytest
import torch

from cnnlineage.train import checkpoint as ck
from cnnlineage.train.checkpoint import (
    CheckpointError,
    RunDirError,
    capture_rng,
    load_checkpoint,
    prepare_run_dir,
    release_lock,
    restore_rng,
    save_checkpoint,
)


def test_save_is_atomic_when_the_write_dies(tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
    save_checkpoint({"step": 1, "w": torch.ones(3)}, path)

    def dying_save(obj, f):
        f.write(b"PK\x03\x04 half a zip")  # a partial file, then the process "dies"
        raise KeyboardInterrupt

    monkeypatch.setattr(ck.torch, "save", dying_save)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint({"step": 2, "w": torch.zeros(3)}, path)
    monkeypatch.undo()
    assert load_checkpoint(path)["step"] == 1  # the previous checkpoint, intact
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"]  # no temporary left behind


class _RunsCode:
    """Unpickling this would call a function: exactly what weights_only must refuse."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.makedirs, (self.marker,))


def test_crafted_pickle_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / "code_ran"
    path = tmp_path / "evil.pt"
    torch.save({"model": {"w": torch.ones(1)}, "payload": _RunsCode(marker)}, path)
    with pytest.raises(CheckpointError) as e:
        load_checkpoint(path)
    assert f"refusing to load {path}" in str(e.value) and "weights_only=True" in str(e.value)
    assert not marker.exists()


def test_truncated_and_garbage_files_are_named(tmp_path):
    path = tmp_path / "last.pt"
    save_checkpoint({"w": torch.randn(1000)}, path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=f"checkpoint {path} is truncated or corrupt"):
        load_checkpoint(path)
    path.write_bytes(b"\x00\x01 definitely not a checkpoint" * 10)
    with pytest.raises(CheckpointError, match=f"checkpoint {path} is"):
        load_checkpoint(path)
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "nope.pt")


def test_rng_states_roundtrip_through_a_weights_only_file(tmp_path):
    torch.manual_seed(1)
    np.random.seed(2)
    random.seed(3)
    save_checkpoint({"rng": capture_rng()}, tmp_path / "r.pt")
    expected = (torch.rand(3), np.random.rand(3), random.random())
    torch.manual_seed(9), np.random.seed(9), random.seed(9)
    restore_rng(load_checkpoint(tmp_path / "r.pt")["rng"])
    got = (torch.rand(3), np.random.rand(3), random.random())
    assert torch.equal(got[0], expected[0]) and np.array_equal(got[1], expected[1]) and got[2] == expected[2]


HOLD_LOCK = """
import fcntl, os, socket, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)
fcntl.flock(fd, fcntl.LOCK_EX)
os.write(fd, f"{os.getpid()} {socket.gethostname()}\\n".encode())
print("locked", flush=True)
time.sleep(60)
"""


def test_live_lock_refuses_and_stale_lock_is_taken(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(run / ".lock")], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline() == "locked\n"
        with pytest.raises(RunDirError, match=rf"in use by a live run \(pid {holder.pid}\)"):
            prepare_run_dir(run)
    finally:
        holder.kill()
        holder.wait()
    assert (run / ".lock").read_text().split()[0] == str(holder.pid)  # the file outlives a killed holder
    prepare_run_dir(run)  # but its flock went with the process: the lock is stale
    assert (run / ".lock").read_text().split()[0] == str(os.getpid())
    release_lock(run)
    assert not (run / ".lock").exists()


def test_finished_and_unfinished_runs_are_not_overwritten(tmp_path):
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "checkpoints" / "last.pt").write_bytes(b"x")
    (run / "notes.txt").write_text("mine")
    with pytest.raises(RunDirError, match="unfinished run; pass --resume"):
        prepare_run_dir(run)
    prepare_run_dir(run, resume=True)
    release_lock(run)
    (run / "summary.json").write_text("{}")
    with pytest.raises(RunDirError, match="finished run; pass --overwrite"):
        prepare_run_dir(run)
    prepare_run_dir(run, overwrite=True)
    assert not (run / "summary.json").exists() and not (run / "checkpoints").exists()
    assert (run / "notes.txt").read_text() == "mine"  # only cnnlineage's own outputs are removed
    with pytest.raises(RunDirError, match="cannot resume"):
        prepare_run_dir(tmp_path / "empty", resume=True)
