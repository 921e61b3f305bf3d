"""Checkpoints that survive a kill at any instant, load without running code, and name the file when bad.

- :func:`save_checkpoint` writes to a temporary file in the same directory, flushes and
  fsyncs it, then renames it over the target (atomic on POSIX) and fsyncs the directory:
  a kill leaves either the old or the new checkpoint, never a mix.
- :func:`load_checkpoint` uses ``torch.load(weights_only=True)``: tensors and plain
  containers only. A file that would import or call anything while unpickling is refused
  with :class:`CheckpointError`; so is a truncated or corrupt file, named in the message.
- :func:`prepare_run_dir` guards a run directory: a live run's lock (its pid) refuses a
  second run, and a finished or unfinished run is not overwritten without ``overwrite``.
"""

from __future__ import annotations

import os
import pickle
import random
import socket
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = [
    "CheckpointError",
    "RunDirError",
    "capture_rng",
    "load_checkpoint",
    "prepare_run_dir",
    "release_lock",
    "restore_rng",
    "save_checkpoint",
]

FORMAT = "cnnlineage-checkpoint-v1"
OUTPUTS = (
    "checkpoints",
    "tb",
    "config.yaml",
    "metrics.jsonl",
    "summary.json",
    "learning_curves.png",
    "confusion_matrix.png",
)
LOCK = ".lock"


class CheckpointError(ValueError):
    """A checkpoint is missing, corrupt, truncated, or holds objects that are not allowed to load."""


class RunDirError(ValueError):
    """A run directory is held by a live run, or holds a run that must not be overwritten."""


# ---------------------------------------------------------------------------- save / load
def save_checkpoint(state: dict[str, Any], path: str | Path) -> Path:
    """Write ``state`` to ``path`` atomically (temporary file, fsync, rename); return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(fd)  # make the rename itself durable
    finally:
        os.close(fd)
    return path


def load_checkpoint(path: str | Path, *, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Return the dict stored at ``path``, loaded with ``weights_only=True``; CheckpointError naming the file otherwise."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        obj = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        msg = str(e)
        if "Weights only load failed" in msg and (
            "Unsupported global" in msg or "GLOBAL" in msg or "global" in msg
        ):
            first = next(
                (ln.strip() for ln in msg.splitlines() if "Unsupported global" in ln or "GLOBAL" in ln), ""
            )
            raise CheckpointError(
                f"refusing to load {path}: it holds objects that would import or run code when unpickled, "
                f"and checkpoints are loaded with weights_only=True (tensors and plain containers only). {first}"
            ) from None
        raise CheckpointError(
            f"checkpoint {path} is corrupt (not a torch checkpoint): {msg.splitlines()[0]}"
        ) from None
    except (RuntimeError, EOFError, OSError, zipfile.BadZipFile, ValueError, KeyError) as e:
        raise CheckpointError(
            f"checkpoint {path} is truncated or corrupt ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})"
        ) from None
    if not isinstance(obj, dict):
        raise CheckpointError(f"checkpoint {path} holds a {type(obj).__name__}, expected a dict")
    return obj


# ---------------------------------------------------------------------------- RNG states
def capture_rng() -> dict[str, Any]:
    """Return the torch (CPU and CUDA), numpy and python RNG states in a weights_only-loadable form."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": {
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached": float(cached),
        },
        "python": random.getstate(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict[str, Any]) -> None:
    """Restore the states returned by :func:`capture_rng`."""
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state(
        ("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached"])
    )
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


# ---------------------------------------------------------------------------- run directory
def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _read_lock(path: Path) -> tuple[int, str]:
    try:
        pid, host = path.read_text().split()[:2]
        return int(pid), host
    except (OSError, ValueError):
        return -1, ""


def prepare_run_dir(run_dir: str | Path, *, resume: bool = False, overwrite: bool = False) -> Path:
    """Return ``run_dir`` created, checked and locked with this process's pid; RunDirError if it must not be used.

    Refused: a directory locked by a live process; without ``overwrite``, one that holds a
    finished run (summary.json) or, without ``resume``, an unfinished one (a checkpoint).
    ``resume`` needs ``checkpoints/last.pt``. ``overwrite`` removes only cnnlineage's own
    outputs, never other files.
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    _acquire(run_dir / LOCK)
    try:
        _check_outputs(run_dir, resume=resume, overwrite=overwrite)
    except RunDirError:
        release_lock(run_dir)
        raise
    for stale in (run_dir / "checkpoints").glob(".*.tmp-*"):  # left by a process killed mid-write
        stale.unlink(missing_ok=True)
    return run_dir


def _acquire(lock: Path) -> None:
    for _ in range(3):
        try:
            fd = os.open(
                lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644
            )  # fails if the lock exists: no race
        except FileExistsError:
            pid, host = _read_lock(lock)
            if pid == os.getpid():
                return
            if pid > 0 and host == socket.gethostname() and _alive(pid):
                raise RunDirError(
                    f"run directory {lock.parent} is in use by a live run (pid {pid}); wait for it or pick another --out"
                ) from None
            lock.unlink(missing_ok=True)  # stale: its process is gone (e.g. killed)
            continue
        with os.fdopen(fd, "w") as f:
            f.write(f"{os.getpid()} {socket.gethostname()}\n")
        return
    raise RunDirError(f"could not lock {lock.parent}: another process keeps taking the lock")


def _check_outputs(run_dir: Path, *, resume: bool, overwrite: bool) -> None:
    finished = (run_dir / "summary.json").exists()
    has_ckpt = (run_dir / "checkpoints" / "last.pt").exists()
    if resume:
        if not has_ckpt:
            raise RunDirError(f"cannot resume: {run_dir / 'checkpoints' / 'last.pt'} does not exist")
    elif overwrite:
        import shutil

        for name in OUTPUTS:
            p = run_dir / name
            if p.is_dir():
                shutil.rmtree(p)
            elif p.exists():
                p.unlink()
    elif finished:
        raise RunDirError(
            f"run directory {run_dir} holds a finished run; pass --overwrite to replace it or pick another --out"
        )
    elif has_ckpt:
        raise RunDirError(
            f"run directory {run_dir} holds an unfinished run; pass --resume to continue it or --overwrite to start over"
        )


def release_lock(run_dir: str | Path) -> None:
    """Remove the run directory's lock if this process holds it."""
    lock = Path(run_dir) / LOCK
    pid, _ = _read_lock(lock)
    if pid == os.getpid():
        lock.unlink(missing_ok=True)
