"""Two gloo processes (torchrun, CPU) compute the contrastive losses of one process on the same global batch."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F
from lightly.loss import DINOLoss, NTXentLoss

from cnnlineage.ssl.methods import KeyQueue, _pair_accuracy, info_nce

# Each rank takes its half of the global batch; the objective DDP optimises is the mean of the
# ranks' losses (it averages gradients), and a gradient that flowed through the gather comes
# back summed over ranks: rank r's share of d(mean loss)/dz is its grad / world_size.
RANK = """
import json, sys
import torch, torch.distributed as dist
import torch.nn.functional as F
from lightly.loss import DINOLoss, NTXentLoss
from cnnlineage.ssl.methods import KeyQueue, _gather, _pair_accuracy, info_nce

dist.init_process_group("gloo")
rank, world = dist.get_rank(), dist.get_world_size()
g = torch.Generator().manual_seed(0)
z0, z1, q, k, t0, t1 = (torch.randn(8, 5, generator=g) for _ in range(6))
n = 8 // world
mine = slice(rank * n, (rank + 1) * n)

def mean_over_ranks(x):
    x = x.detach().clone()
    dist.all_reduce(x)
    return float(x / world)

a, b = z0[mine].clone().requires_grad_(), z1[mine].clone().requires_grad_()
loss = NTXentLoss(temperature=0.5, gather_distributed=True)(a, b)
loss.backward()
out = {"ntxent": mean_over_ranks(loss), "pair_acc": mean_over_ranks(_pair_accuracy(a, b)),
       "grad0": _gather(a.grad / world)[0].tolist(), "grad1": _gather(b.grad / world)[0].tolist()}

torch.manual_seed(1)
queue = KeyQueue(12, 5)
qn, kn = F.normalize(q[mine], dim=1), F.normalize(k[mine], dim=1)
loss, _ = info_nce(qn, kn, queue.keys.clone(), 0.2)
queue.enqueue(_gather(kn)[0])  # every rank's keys, in rank order, before enqueueing
out.update(infonce=mean_over_ranks(loss), queue=queue.keys.tolist(), ptr=int(queue.ptr))

dino = DINOLoss(output_dim=5, warmup_teacher_temp=0.04, teacher_temp=0.04, center_momentum=0.9)
loss = dino([t0[mine], t1[mine]], [z0[mine], z1[mine]])
out.update(dino=mean_over_ranks(loss), center=dino.center.view(-1).tolist())
if rank == 0:
    with open(sys.argv[1], "w") as f:
        json.dump(out, f)
dist.destroy_process_group()
"""


def test_two_processes_match_one_on_the_global_batch(tmp_path):
    script, result = tmp_path / "rank.py", tmp_path / "out.json"
    script.write_text(RANK)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2", str(script),
           str(result)]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    two = json.loads(result.read_text())

    g = torch.Generator().manual_seed(0)
    z0, z1, q, k, t0, t1 = (torch.randn(8, 5, generator=g) for _ in range(6))
    a, b = z0.clone().requires_grad_(), z1.clone().requires_grad_()
    loss = NTXentLoss(temperature=0.5)(a, b)
    loss.backward()
    assert two["ntxent"] == pytest.approx(loss.item(), abs=1e-6)
    assert two["pair_acc"] == pytest.approx(_pair_accuracy(a, b).item(), abs=1e-6)
    torch.testing.assert_close(torch.tensor(two["grad0"]), a.grad, atol=1e-6, rtol=0)
    torch.testing.assert_close(torch.tensor(two["grad1"]), b.grad, atol=1e-6, rtol=0)

    torch.manual_seed(1)
    queue = KeyQueue(12, 5)
    qn, kn = F.normalize(q, dim=1), F.normalize(k, dim=1)
    loss, _ = info_nce(qn, kn, queue.keys.clone(), 0.2)
    queue.enqueue(kn)
    assert two["infonce"] == pytest.approx(loss.item(), abs=1e-6)
    torch.testing.assert_close(torch.tensor(two["queue"]), queue.keys, atol=1e-6, rtol=0)
    assert two["ptr"] == int(queue.ptr) == 8  # the global batch went in, not one rank's half

    dino = DINOLoss(output_dim=5, warmup_teacher_temp=0.04, teacher_temp=0.04, center_momentum=0.9)
    loss = dino([t0, t1], [z0, z1])
    assert two["dino"] == pytest.approx(loss.item(), abs=1e-5)
    assert two["center"] == pytest.approx(
        dino.center.view(-1).tolist(), abs=1e-6
    )  # centre of all ranks' outputs


@pytest.mark.slow  # a 2-process pre-training run: about 30 s of CPU
def test_pretrain_under_torchrun(tmp_path):
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "cnnlineage", "pretrain", "lenet5_modern", "--method", "moco", "--nproc", "2",
           "--quiet", "--out", str(out), "--set", "data.train_subset=128", "--set", "data.test_subset=64",
           "--set", "data.batch_size=64", "--set", "ssl.queue_size=100", "--epochs", "1", "--set", "threads=1"]  # fmt: skip
    done = subprocess.run(
        cmd, capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"}
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    assert done.stdout.count("epoch 1/1") == 1  # rank 0 alone logs
    summary = json.loads((out / "summary.json").read_text())
    assert summary["world_size"] == 2 and summary["method"] == "moco"
    from cnnlineage.train import load_checkpoint

    state = load_checkpoint(out / "checkpoints" / "last.pt")["model"]
    assert int(state["queue.ptr"]) == (2 * 64) % 100  # both steps' keys from both ranks were enqueued
