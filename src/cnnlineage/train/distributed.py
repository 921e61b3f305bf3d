"""Data-parallel training with torch.distributed, launched by ``torchrun``.

Under torchrun (``RANK``/``WORLD_SIZE`` set) :func:`setup` joins the process group, gloo
on CPU and nccl on CUDA. The trainer wraps the model in DistributedDataParallel, gives
each rank its share of every global batch (``data.batch_size`` is the global size), sums
metrics over ranks, and logs and checkpoints on rank 0 only.

One machine, N processes: ``cnnlineage train ... --nproc N`` (calls :func:`launch`), or
``torchrun --standalone --nproc-per-node N -m cnnlineage train ...``. Several machines:
on each node ``torchrun --nnodes M --nproc-per-node N --node-rank R
--rdzv-backend c10d --rdzv-endpoint HOST:29500 -m cnnlineage train ... --out SHARED_DIR``.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import torch
import torch.distributed as dist

__all__ = [
    "DistInfo",
    "DistributedStall",
    "all_reduce_sum",
    "barrier",
    "broadcast_object",
    "cleanup",
    "launch",
    "setup",
    "stalled_ranks_error",
]


class DistributedStall(RuntimeError):
    """A collective failed because other ranks stopped answering; the message names them."""


@dataclass(frozen=True)
class DistInfo:
    """Where this process stands in the job."""

    rank: int = 0  # global rank
    world_size: int = 1  # number of processes
    local_rank: int = 0  # rank on this machine (selects the GPU)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def setup(device_type: str | None = None, *, timeout: float = 300.0) -> DistInfo:
    """Return this process's DistInfo, joining the process group when launched by torchrun with WORLD_SIZE > 1.

    ``timeout`` (seconds) bounds every collective: a rank that stops answering (stopped,
    hung, or dead without closing its sockets) makes the others fail after it instead of
    waiting forever; see :func:`stalled_ranks_error`.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if not dist.is_initialized():
        use_cuda = (device_type or ("cuda" if torch.cuda.is_available() else "cpu")) == "cuda"
        if use_cuda:
            torch.cuda.set_device(local)
        dist.init_process_group(backend="nccl" if use_cuda else "gloo", timeout=timedelta(seconds=timeout))
        try:  # where each rank runs, so a rank that stops answering can be named and ended
            store = dist.distributed_c10d._get_default_store()
            store.set(f"cnnlineage/pid/{rank}", f"{socket.gethostname()} {os.getpid()}")
        except Exception:
            pass
    return DistInfo(rank=rank, world_size=world, local_rank=local)


def cleanup() -> None:
    """Leave the process group, if joined."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def all_reduce_sum(t: torch.Tensor) -> torch.Tensor:
    """Return ``t`` summed over all ranks (in place; a no-op in a single process)."""
    if dist.is_available() and dist.is_initialized():
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


def barrier() -> None:
    """Wait for every rank (a no-op in a single process)."""
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def broadcast_object(obj: object) -> object:
    """Return rank 0's ``obj`` on every rank."""
    if not (dist.is_available() and dist.is_initialized()):
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def stalled_ranks_error(error: BaseException, *, timeout: float, run_dir: Path | str) -> DistributedStall:
    """Return a DistributedStall naming the ranks that did not answer, found through the rendezvous store.

    Every rank whose collective fails reports itself in torchrun's key-value store, then
    waits a few seconds for the others' reports: the ranks that never report are the ones
    that stopped answering (stopped, hung or dead).
    """
    rank, world = dist.get_rank(), dist.get_world_size()
    silent: list[int] = []
    try:
        store = dist.distributed_c10d._get_default_store()
        store.set(f"cnnlineage/failed/{rank}", "1")
        deadline = time.monotonic() + min(10.0, max(2.0, timeout))
        while True:
            silent = [r for r in range(world) if not store.check([f"cnnlineage/failed/{r}"])]
            if not silent or time.monotonic() > deadline:
                break
            time.sleep(0.2)
    except Exception:  # the store went with the failed job: name no rank rather than guess
        silent = []
    ended = []
    for r in silent:  # a stopped process never checkpoints or exits by itself: end it (same machine only)
        try:
            host, pid = store.get(f"cnnlineage/pid/{r}").decode().split()
            if host == socket.gethostname():
                os.kill(int(pid), signal.SIGKILL)
                ended.append(r)
        except Exception:
            pass
    who = f"rank(s) {', '.join(map(str, silent))}" if silent else "another rank"
    first = str(error).strip().splitlines()[0][:200] if str(error).strip() else type(error).__name__
    killed = f" (killed {', '.join(map(str, ended))})" if ended else ""
    return DistributedStall(
        f"rank {rank}: {who} stopped answering{killed}; a collective waited up to run.dist_timeout="
        f"{timeout:g}s ({first}). The job stops; the last checkpoint in {Path(run_dir) / 'checkpoints'} "
        f"resumes it: --resume {run_dir}"
    )


# torchrun's own log lines ("E1130 12:00:00.000 ...") and its ChildFailedError report: noise once a
# rank has said in one line why it stopped.
_AGENT_LINE = re.compile(r"^[EWI]\d{4} \d\d:\d\d:\d\d")
_OUR_LINE = re.compile(r"^cnnlineage \w+: ")


def _filter_stderr(pipe, seen: list[str], held: list[str]) -> None:
    """Echo the job's stderr, holding back tracebacks and torchrun's log until we know whether they explain anything."""
    in_traceback = False
    for line in iter(pipe.readline, ""):
        if _OUR_LINE.match(line):
            in_traceback = False
            if line not in seen:  # every rank may say the same
                seen.append(line)
                sys.stderr.write(line)
                sys.stderr.flush()
            continue
        if line.startswith("Traceback (most recent call last)") or _AGENT_LINE.match(line):
            in_traceback = True
        if in_traceback or line.startswith(("[rank", "torch.distributed.elastic", "====", "  ")):
            held.append(line)
        else:
            sys.stderr.write(line)
            sys.stderr.flush()
    pipe.close()


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Ask Linux to SIGTERM this process when its parent (the launcher) dies, even by SIGKILL."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except Exception:
        pass


def launch(nproc: int, argv: Sequence[str], *, grace: float = 60.0) -> int:
    """Run ``cnnlineage <argv>`` in ``nproc`` processes on this machine with torchrun; return its exit status.

    torchrun runs in its own session, so the launcher decides what happens on a signal:
    SIGINT, SIGTERM or SIGHUP are passed to torchrun as SIGTERM (it passes them on to every
    rank, which checkpoints after the current step and exits); after ``grace`` seconds the
    whole session is killed. Were the launcher killed outright, torchrun gets SIGTERM from
    the kernel. A rank that fails with a one-line message ("cnnlineage train: ...") has that
    line printed once, without the tracebacks and torchrun's failure report.
    """
    if nproc < 1:
        raise ValueError(f"--nproc must be at least 1; got {nproc}")
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc-per-node={nproc}",
        "-m",
        "cnnlineage",
        *argv,
    ]
    env = dict(os.environ)
    if not torch.cuda.is_available():  # N CPU processes: split the cores between them
        env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // nproc)))
    job = subprocess.Popen(
        cmd, env=env, stderr=subprocess.PIPE, text=True, start_new_session=True, preexec_fn=_die_with_parent
    )
    seen: list[str] = []
    held: list[str] = []
    reader = threading.Thread(target=_filter_stderr, args=(job.stderr, seen, held), daemon=True)
    reader.start()
    asked: list[int] = []

    def forward(signum: int, frame: object) -> None:
        asked.append(signum)
        if len(asked) == 1:
            job.send_signal(signal.SIGTERM)  # torchrun stops its workers, which checkpoint and exit
        else:
            os.killpg(job.pid, signal.SIGKILL)

    stop = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    previous = {s: signal.getsignal(s) for s in stop}
    in_main = threading.current_thread() is threading.main_thread()
    if in_main:
        for s in stop:
            signal.signal(s, forward)
    try:
        while True:
            try:
                rc = job.wait(timeout=grace if asked else None)
                break
            except subprocess.TimeoutExpired:
                os.killpg(job.pid, signal.SIGKILL)
    finally:
        if in_main:
            for s, h in previous.items():
                signal.signal(s, h)
    reader.join(timeout=10)
    try:
        os.killpg(job.pid, signal.SIGKILL)  # no worker outlives the job
    except (ProcessLookupError, PermissionError):
        pass
    if rc and not seen and not asked:
        sys.stderr.writelines(held)  # an unexplained failure: show everything
    if asked:
        return 128 + asked[0]
    if rc and any(": error:" in line for line in seen):
        return 2
    if rc and any(": stopped:" in line for line in seen):
        return 3
    return rc
