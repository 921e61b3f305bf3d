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


def _contend(dirs: list[str], start, wins) -> None:
    """One of the racing processes: in each round, all start at once, try to lock, and hold until all have tried."""
    import socket
    import time

    real = socket.gethostname
    socket.gethostname = lambda: (time.sleep(0.002), real())[
        1
    ]  # widen any window between taking and naming a lock
    for i, run in enumerate(dirs):
        start.wait()
        try:
            prepare_run_dir(run)
            won = True
        except (RunDirError, OSError):
            won = False
        with wins.get_lock():
            wins[i] += won
        start.wait()  # everyone has tried: now the winner lets go
        if won:
            release_lock(run)
    os._exit(0)


def test_exactly_one_of_many_simultaneous_runs_gets_the_directory(tmp_path):
    import multiprocessing as mp

    ctx = mp.get_context("fork")
    n, rounds = 6, 60
    dirs = []
    for i in range(rounds):
        run = tmp_path / f"run{i}"
        run.mkdir()
        if i % 2:  # half the rounds start from a stale lock left by a killed run (its pid is gone)
            (run / ".lock").write_text("999999999 somehost\n")
        dirs.append(str(run))
    start, wins = ctx.Barrier(n), ctx.Array("i", rounds)
    procs = [ctx.Process(target=_contend, args=(dirs, start, wins)) for _ in range(n)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert all(p.exitcode == 0 for p in procs)
    held = list(wins)
    assert held == [1] * rounds, "rounds where not exactly one process held the directory: " + str(
        {i: h for i, h in enumerate(held) if h != 1}
    )
    assert not any((tmp_path / f"run{i}" / ".lock").exists() for i in range(rounds))


def test_flipped_bytes_inside_tensor_data_are_named_corrupt(tmp_path):
    path = tmp_path / "best.pt"
    w = torch.arange(4096, dtype=torch.float32)
    save_checkpoint({"model": {"w": w}, "epoch": 3}, path)
    data = bytearray(path.read_bytes())
    at = data.find(w.numpy().tobytes()[:64]) + 4000  # inside the tensor's stored bytes
    data[at : at + 64] = bytes(b ^ 0xFF for b in data[at : at + 64])
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match=f"checkpoint {path} is corrupt: its contents no longer match"):
        load_checkpoint(path)
    save_checkpoint({"model": {"w": w}, "epoch": 3}, path)
    state = load_checkpoint(path)  # an intact file: same contents, the digest is not returned
    assert torch.equal(state["model"]["w"], w) and set(state) == {"model", "epoch"}


def test_refusals_never_suggest_an_unsafe_load(tmp_path):
    legacy = tmp_path / "legacy.pt"  # the pre-zip torch format, holding an object that runs code
    torch.save({"x": _RunsCode(tmp_path / "ran")}, legacy, _use_new_zipfile_serialization=False)
    jpeg = tmp_path / "photo.jpg"
    jpeg.write_bytes(b"\xff\xd8\xff\xe0\x00\x10JFIF" + bytes(200))
    evil = tmp_path / "evil.pt"
    torch.save({"model": _RunsCode(tmp_path / "ran")}, evil)
    messages = {}
    for path in (legacy, jpeg, evil, tmp_path):
        with pytest.raises(CheckpointError) as e:
            load_checkpoint(path)
        messages[path.name] = str(e.value)
    for text in messages.values():
        assert "weights_only=False" not in text and "`False`" not in text and "safe_globals" not in text, text
        assert "\n" not in text
    assert "not a checkpoint written by cnnlineage train" in messages["photo.jpg"]
    assert "refusing to load" in messages["evil.pt"] and "os.makedirs" in messages["evil.pt"]
    assert "is a directory, not a checkpoint file" in messages[tmp_path.name]
    assert not (tmp_path / "ran").exists()


def test_overwrite_refuses_to_delete_files_it_did_not_write(tmp_path):
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "tb").mkdir()
    (run / "checkpoints" / "last.pt").write_bytes(b"x")
    (run / "tb" / "events.out.tfevents.1.host").write_bytes(b"x")
    (run / "summary.json").write_text("{}")
    (run / "checkpoints" / "my_best_model_keep.pt").write_bytes(b"precious")
    (run / "tb" / "notes.md").write_text("mine")
    with pytest.raises(
        RunDirError, match=r"--overwrite would delete 2 file\(s\) that cnnlineage train did not write"
    ):
        prepare_run_dir(run, overwrite=True)
    assert (run / "checkpoints" / "last.pt").exists() and (run / "summary.json").exists()  # nothing deleted
    assert not (run / ".lock").exists()
    (run / "checkpoints" / "my_best_model_keep.pt").rename(tmp_path / "kept.pt")
    (run / "tb" / "notes.md").rename(tmp_path / "notes.md")
    prepare_run_dir(run, overwrite=True)
    assert sorted(p.name for p in run.iterdir()) == [".lock"]
    release_lock(run)


def test_a_failed_write_names_the_file_and_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
    save_checkpoint({"step": 1}, path)

    def disk_full(obj, f):
        f.write(b"PK\x03\x04")
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 4160 vs 4054")

    monkeypatch.setattr(ck.torch, "save", disk_full)
    with pytest.raises(
        OSError, match=rf"cannot write checkpoint {path}: the write stopped short \(is the disk full"
    ):
        save_checkpoint({"step": 2}, path)
    monkeypatch.undo()
    assert load_checkpoint(path)["step"] == 1 and sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"]
