"""Trainer overhead: training images/s of cnnlineage's Trainer against a bare PyTorch loop.

Same model, same data (mnist5k, already resized and normalised, no augmentation), same
batch size and optimizer (SGD, momentum 0.9). The bare loop is the textbook one: a
DataLoader over a TensorDataset, forward, cross-entropy, backward, step. The trainer's
figure is its own training throughput (evaluation excluded), as in summary.json. Runs
alternate (bare, trainer, bare, ...) and the median of the repeats is reported.

    python benchmarks/train_overhead.py                      # lenet5_modern and lenet5
    python benchmarks/train_overhead.py --models lenet5 --epochs 5 --repeats 5
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

import cnnlineage
from cnnlineage.data import TransformedDataset, build_datasets, build_transforms
from cnnlineage.data.datasets import DATASET_INFO
from cnnlineage.train import Trainer, config_from_dict
from cnnlineage.train.config import AugmentConfig


def data_tensors(size: int) -> tuple[torch.Tensor, torch.Tensor]:
    train, _, _ = build_datasets("mnist5k")
    tf = build_transforms(
        AugmentConfig(), DATASET_INFO["mnist5k"], size=(size, size), in_chans=1, train=False
    )
    ds = TransformedDataset(train, tf)
    return ds.cached, train.labels


def bare_loop(
    name: str, x: torch.Tensor, y: torch.Tensor, *, batch: int, epochs: int, lr: float, seed: int
) -> float:
    """Return training images/s of the plainest loop."""
    torch.manual_seed(seed)
    model = cnnlineage.create_model(name)
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    loader = DataLoader(TensorDataset(x, y), batch_size=batch, shuffle=True)
    model.train()
    start = time.perf_counter()
    for _ in range(epochs):
        for xb, yb in loader:
            loss = F.cross_entropy(model(xb), yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    return len(x) * epochs / (time.perf_counter() - start)


def trainer(name: str, *, batch: int, epochs: int, lr: float, seed: int, out: Path) -> float:
    """Return the Trainer's training images/s (summary.json's images_per_second)."""
    cfg = config_from_dict({
        "model": {"name": name}, "data": {"name": "mnist5k", "batch_size": batch},
        "optim": {"name": "sgd", "lr": lr, "momentum": 0.9}, "schedule": {"name": "none"},
        "epochs": epochs, "seed": seed,
        "run": {"out_dir": str(out), "progress": "none", "tensorboard": False, "plots": False},
    })  # fmt: skip
    return Trainer(cfg, overwrite=True, log=lambda *_: None).fit()["images_per_second"]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="+", default=["lenet5_modern", "lenet5"])
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default)")
    p.add_argument("--out", default=None, help="write the results as JSON here")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models:
            x, y = data_tensors(cnnlineage.model_info(name).input_size[1])
            bare, ours = [], []
            for r in range(args.repeats):
                kw = dict(batch=args.batch_size, epochs=args.epochs, lr=0.01, seed=r)
                bare.append(bare_loop(name, x, y, **kw))
                ours.append(trainer(name, **kw, out=Path(tmp) / f"{name}-{r}"))
            b, t = statistics.median(bare), statistics.median(ours)
            results[name] = {"bare_images_per_second": b, "trainer_images_per_second": t, "overhead_percent": 100 * (b / t - 1),
                             "bare_runs": bare, "trainer_runs": ours}  # fmt: skip
            print(f"{name:15s} bare {b:8,.0f} img/s   trainer {t:8,.0f} img/s   overhead {results[name]['overhead_percent']:+.1f}%",
                  flush=True)  # fmt: skip
    print(f"(batch {args.batch_size}, {args.epochs} epochs of 4,000 images, median of {args.repeats}, "
          f"{torch.get_num_threads()} threads)")  # fmt: skip
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
