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
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.distributed as dist

__all__ = ["DistInfo", "all_reduce_sum", "barrier", "broadcast_object", "cleanup", "launch", "setup"]


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


def setup(device_type: str | None = None) -> DistInfo:
    """Return this process's DistInfo, joining the process group when launched by torchrun with WORLD_SIZE > 1."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if not dist.is_initialized():
        use_cuda = (device_type or ("cuda" if torch.cuda.is_available() else "cpu")) == "cuda"
        if use_cuda:
            torch.cuda.set_device(local)
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
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


def launch(nproc: int, argv: Sequence[str]) -> int:
    """Run ``cnnlineage <argv>`` in ``nproc`` processes on this machine with torchrun; return its exit status."""
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
    return subprocess.call(cmd, env=env)
