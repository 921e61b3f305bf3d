"""Checkpoints that survive a kill at any instant, load without running code, and name the file when bad.

- :func:`save_checkpoint` writes to a temporary file in the same directory, flushes and
  fsyncs it, then renames it over the target (atomic on POSIX) and fsyncs the directory:
  a kill leaves either the old or the new checkpoint, never a mix.
- :func:`load_checkpoint` uses ``torch.load(weights_only=True)``: tensors and plain
  containers only. A file that would import or call anything while unpickling is refused
  with :class:`CheckpointError`; so is a truncated or corrupt file, named in the message.
- :func:`prepare_run_dir` guards a run directory: a live run's lock (an flock, which the
  kernel drops when its holder dies) refuses a second run, and a finished or unfinished run
  is not overwritten without ``overwrite``.
- Every checkpoint stores the SHA-256 of its contents (:func:`state_digest`); a file whose
  bytes changed after writing is refused as corrupt, with its name.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import pickle
import random
import re
import shutil
import socket
import time
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = [
    "BACKBONE_PREFIX",
    "CheckpointError",
    "RunDirError",
    "backbone_state",
    "capture_rng",
    "is_pretraining_checkpoint",
    "load_checkpoint",
    "new_run_dir",
    "prepare_run_dir",
    "release_lock",
    "restore_rng",
    "save_checkpoint",
    "state_digest",
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
CHECKPOINT_FILES = ("last.pt", "best.pt")
DIGEST_KEY = "sha256"  # the checkpoint key holding state_digest() of everything else


class CheckpointError(ValueError):
    """A checkpoint is missing, corrupt, truncated, or holds objects that are not allowed to load."""


class RunDirError(ValueError):
    """A run directory is held by a live run, or holds a run that must not be overwritten."""


# ---------------------------------------------------------------------------- save / load
def state_digest(state: dict[str, Any]) -> str:
    """Return the SHA-256 (hex) of a checkpoint's contents: every tensor's dtype, shape and bytes, every other value's repr."""
    h = hashlib.sha256()
    _feed(h, state)
    return h.hexdigest()


def _feed(h: Any, obj: Any) -> None:
    if isinstance(obj, torch.Tensor):
        t = obj.detach().cpu().contiguous()
        h.update(f"T{t.dtype}{tuple(t.shape)}:".encode())
        if t.numel():
            h.update(t.reshape(-1).view(torch.uint8).numpy())
    elif isinstance(obj, dict):
        h.update(b"{")
        for k, v in obj.items():
            _feed(h, k)
            _feed(h, v)
        h.update(b"}")
    elif isinstance(obj, (list, tuple)):  # pickle keeps the type, but torch.Size and tuple hash alike
        h.update(b"[")
        for v in obj:
            _feed(h, v)
        h.update(b"]")
    else:
        h.update(f"{type(obj).__name__}:{obj!r};".encode())


def save_checkpoint(state: dict[str, Any], path: str | Path) -> Path:
    """Write ``state`` to ``path`` atomically (temporary file, fsync, rename), with its SHA-256; return the path.

    A failed write (disk full, read-only file system) raises OSError naming the file and
    leaves the previous checkpoint at ``path`` as it was.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    state = {k: v for k, v in state.items() if k != DIGEST_KEY}
    state[DIGEST_KEY] = state_digest(state)  # verified by load_checkpoint: silent bit rot is named
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except (OSError, RuntimeError) as e:  # torch reports a full disk as RuntimeError "unexpected pos"
        reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e).splitlines()[0]
        if isinstance(e, RuntimeError) and "unexpected pos" in reason:
            reason = "the write stopped short (is the disk full?)"
        raise OSError(
            f"cannot write checkpoint {path}: {reason}; the previous checkpoint there (if any) is intact. "
            "Free some space or pick another --out, then --resume",
        ) from None
    finally:
        if tmp.exists():
            tmp.unlink()
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(fd)  # make the rename itself durable
    finally:
        os.close(fd)
    return path


_NOT_OURS = "it is not a checkpoint written by cnnlineage train"


def load_checkpoint(path: str | Path, *, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Return the dict stored at ``path``, loaded with ``weights_only=True``; CheckpointError naming the file otherwise.

    A file that holds the SHA-256 written by :func:`save_checkpoint` must still match it.
    """
    path = Path(path)
    if path.is_dir():
        raise CheckpointError(
            f"{path} is a directory, not a checkpoint file; pass a file such as {path / 'checkpoints' / 'best.pt'}"
        )
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        obj = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        # torch's own message suggests loading with weights_only=False or allow-listing the global:
        # both would run the file's code, so only the name of the offending global is kept.
        found = re.search(r"GLOBAL ([\w.]+)|Unsupported global: GLOBAL ([\w.]+)", str(e))
        if found:
            raise CheckpointError(
                f"refusing to load {path}: it holds objects that would import or run code when unpickled "
                f"({found.group(1) or found.group(2)}); checkpoints are loaded with weights_only=True "
                f"(tensors and plain containers only), and {_NOT_OURS}"
            ) from None
        raise CheckpointError(
            f"checkpoint {path} is unreadable: {_NOT_OURS} (not a torch file of tensors and plain containers)"
        ) from None
    except (RuntimeError, EOFError, OSError, zipfile.BadZipFile, ValueError, KeyError) as e:
        raise CheckpointError(
            f"checkpoint {path} is truncated or corrupt ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})"
        ) from None
    if not isinstance(obj, dict):
        raise CheckpointError(f"checkpoint {path} holds a {type(obj).__name__}, expected a dict")
    stored = obj.pop(DIGEST_KEY, None)
    if stored is not None and stored != state_digest(obj):
        raise CheckpointError(
            f"checkpoint {path} is corrupt: its contents no longer match the SHA-256 stored when it was "
            "written (a damaged copy or disk); use another checkpoint or retrain"
        )
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
_HELD: dict[str, int] = {}  # lock file -> its open descriptor, holding the flock for the life of the run


def _read_lock(path: Path) -> tuple[int, str]:
    try:
        pid, host = path.read_text().split()[:2]
        return int(pid), host
    except (OSError, ValueError):
        return -1, ""


def prepare_run_dir(run_dir: str | Path, *, resume: bool = False, overwrite: bool = False) -> Path:
    """Return ``run_dir`` created, checked and locked by this process; RunDirError if it must not be used.

    Refused: a directory locked by a live process; without ``overwrite``, one that holds a
    finished run (summary.json) or, without ``resume``, an unfinished one (a checkpoint).
    ``resume`` needs ``checkpoints/last.pt``. ``overwrite`` removes only the files the
    trainer writes, and refuses while other files sit in ``checkpoints/`` or ``tb/``.
    """
    run_dir = Path(run_dir)
    if run_dir.exists() and not run_dir.is_dir():
        raise RunDirError(f"run directory {run_dir} is a file, not a directory; pick another --out")
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise RunDirError(
            f"cannot create run directory {run_dir}: {e.strerror or e}; pick a writable --out"
        ) from None
    _acquire(run_dir / LOCK)
    try:
        _check_outputs(run_dir, resume=resume, overwrite=overwrite)
    except RunDirError:
        release_lock(run_dir)
        raise
    for stale in (run_dir / "checkpoints").glob(".*.tmp-*"):  # left by a process killed mid-write
        stale.unlink(missing_ok=True)
    return run_dir


def new_run_dir(stem: str | Path) -> Path:
    """Return a new directory ``<stem>-<date>-<time>`` created by this call (``-2``, ``-3``, ... when taken).

    ``mkdir`` fails when the name exists, so two runs started in the same second get two
    directories.
    """
    base = time.strftime(f"{stem}-%Y%m%d-%H%M%S")
    try:
        Path(base).parent.mkdir(parents=True, exist_ok=True)
        for i in range(1, 10_000):
            path = Path(base if i == 1 else f"{base}-{i}")
            try:
                path.mkdir()
                return path
            except FileExistsError:
                continue
    except OSError as e:
        raise RunDirError(
            f"cannot create a run directory next to {base}: {e.strerror or e}; pass a writable --out"
        ) from None
    raise RunDirError(f"no free run directory name {base}-N; pass --out")


def _acquire(lock: Path) -> None:
    """Hold an exclusive flock on ``lock`` until release_lock or exit; RunDirError if another process holds it.

    The kernel drops a flock when its holder dies (even by SIGKILL), so a stale lock file is
    simply locked again: taking over needs no pid check and has no race. A holder removes
    the file when it releases it, so after locking we check that the file we hold is still
    the one at ``lock`` (else someone released and another created a new one: try again).
    """
    key = os.path.abspath(lock)
    if key in _HELD:
        return
    if lock.is_dir() or (lock.exists() and not lock.is_file()):
        raise RunDirError(
            f"{lock} is not a lock file (it is a directory or special file); remove it and retry"
        )
    for _ in range(100):
        try:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            raise RunDirError(
                f"cannot create the lock file {lock}: {e.strerror}; pick a writable --out"
            ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            pid, host = _read_lock(lock)
            who = f"pid {pid}" + (f" on {host}" if host and host != socket.gethostname() else "")
            raise RunDirError(
                f"run directory {lock.parent} is in use by a live run ({who}); wait for it or pick another --out"
            ) from None
        except OSError as e:
            os.close(fd)
            raise RunDirError(
                f"cannot lock {lock}: {e.strerror} (does this file system support flock?)"
            ) from None
        try:
            st = os.stat(lock)
            same = (st.st_ino, st.st_dev) == (os.fstat(fd).st_ino, os.fstat(fd).st_dev)
        except FileNotFoundError:
            same = False
        if not same:
            os.close(fd)
            continue
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()} {socket.gethostname()}\n".encode())
        _HELD[key] = fd
        return
    raise RunDirError(f"could not lock {lock.parent}: another process keeps taking the lock")


def _trainer_files(run_dir: Path) -> tuple[list[Path], list[Path]]:
    """Return (files the trainer writes, other files) under the run directory's outputs."""
    own, other = [], []
    for name in OUTPUTS:
        p = run_dir / name
        if p.is_file() or p.is_symlink():
            own.append(p)
        elif p.is_dir():
            for q in sorted(p.rglob("*")):
                if q.is_dir() and not q.is_symlink():
                    continue
                ok = (
                    name == "checkpoints"
                    and q.parent == p
                    and (q.name in CHECKPOINT_FILES or ".tmp-" in q.name)
                ) or (name == "tb" and q.parent == p and q.name.startswith("events.out.tfevents."))
                (own if ok else other).append(q)
    return own, other


def _check_outputs(run_dir: Path, *, resume: bool, overwrite: bool) -> None:
    finished = (run_dir / "summary.json").exists()
    has_ckpt = (run_dir / "checkpoints" / "last.pt").exists()
    if resume:
        if not has_ckpt:
            raise RunDirError(f"cannot resume: {run_dir / 'checkpoints' / 'last.pt'} does not exist")
    elif overwrite:
        own, other = _trainer_files(run_dir)
        if other:
            names = ", ".join(str(q.relative_to(run_dir)) for q in other[:5]) + (
                " ..." if len(other) > 5 else ""
            )
            raise RunDirError(
                f"--overwrite would delete {len(other)} file(s) that cnnlineage train did not write ({names}); "
                f"move them out of {run_dir} first"
            )
        for q in own:
            q.unlink()
        for name in ("checkpoints", "tb"):
            if (run_dir / name).is_dir():
                shutil.rmtree(run_dir / name)  # only empty folders (and trainer files) remain: checked above
    elif finished:
        raise RunDirError(
            f"run directory {run_dir} holds a finished run; pass --overwrite to replace it or pick another --out"
        )
    elif has_ckpt:
        raise RunDirError(
            f"run directory {run_dir} holds an unfinished run; pass --resume to continue (or finish) it "
            "or --overwrite to start over"
        )


def release_lock(run_dir: str | Path) -> None:
    """Remove the run directory's lock if this process holds it."""
    lock = Path(run_dir) / LOCK
    fd = _HELD.pop(os.path.abspath(lock), None)
    if fd is None:
        return
    try:
        lock.unlink(missing_ok=True)  # while still holding it: a waiter that opened this file sees it vanish
    finally:
        os.close(fd)


# ---------------------------------------------------------------------------- pre-training checkpoints
# `cnnlineage pretrain` writes a normal trainer checkpoint whose "model" state holds the registered
# network under this prefix (beside the method's heads and momentum encoders) and whose "ssl"
# entry names the method; eval, predict, probe and `train --init` read the network through
# backbone_state().
BACKBONE_PREFIX = "backbone."


def is_pretraining_checkpoint(ckpt: dict[str, Any]) -> bool:
    """Return True if ``ckpt`` was written by ``cnnlineage pretrain``."""
    return isinstance(ckpt.get("ssl"), dict)


def backbone_state(ckpt: dict[str, Any]) -> dict[str, Any]:
    """Return the registered network's state_dict from a train or pretrain checkpoint."""
    state = ckpt["model"]
    if not is_pretraining_checkpoint(ckpt):
        return dict(state)
    n = len(BACKBONE_PREFIX)
    return {k[n:]: v for k, v in state.items() if k.startswith(BACKBONE_PREFIX)}
