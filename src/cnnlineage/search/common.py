"""What every search method shares: the search/validation split, a short proxy training, resumable state.

Searches never look at the held-out test split: candidates are trained on one half of
the training split and ranked on the other half (DARTS §3.1.2 splits CIFAR-10's training
set the same way). Only the final, chosen network is trained by the trainer
(``cnnlineage.train``) and evaluated on the held-out split, so a search's reported
accuracy is an honest one.

The data of the small bundled sets fit in memory, so they are decoded and normalised
once into tensors; proxy training then only slices tensors.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..data import TransformedDataset, build_datasets, build_transforms
from ..train.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from ..train.config import AugmentConfig

__all__ = [
    "SearchData",
    "SearchState",
    "load_search_data",
    "proxy_lr",
    "proxy_train",
    "evaluate_tensors",
]


@dataclass
class SearchData:
    """Search/validation halves of a data set's training split, as normalised tensors."""

    name: str  # data set name
    x_search: torch.Tensor  # (N, C, H, W) images the weights are trained on
    y_search: torch.Tensor  # (N,) labels
    x_val: torch.Tensor  # (M, C, H, W) images candidates are ranked on (the architecture step's data)
    y_val: torch.Tensor  # (M,) labels
    num_classes: int  # classes of the data set
    in_chans: int  # image channels
    size: tuple[int, int]  # (H, W) of the tensors

    def describe(self) -> str:
        """Return one line saying which data the search uses."""
        c, (h, w) = self.in_chans, self.size
        return (
            f"{self.name}: {len(self.y_search):,} search + {len(self.y_val):,} validation images "
            f"({c}x{h}x{w}) from the training split; the held-out split is not used"
        )


def load_search_data(
    name: str,
    *,
    size: tuple[int, int] | None = None,
    root: str = "data",
    seed: int = 0,
    limit: int = 0,
) -> SearchData:
    """Return the training split of ``name`` halved (seeded) into search and validation tensors.

    ``size`` resizes the images (default: the data set's own size); ``limit`` keeps only
    that many training images (0 = all), for quick runs.
    """
    train, _, info = build_datasets(name, root=root)
    if len(train) < 2:
        raise ValueError(f"data set {name!r} has {len(train)} training images; a search needs at least 2")
    native = tuple(info.size)
    size = tuple(size or native)  # type: ignore[assignment]
    if min(size) < 1:
        raise ValueError(f"data set {name!r} has images of varying size: give the search an input size")
    tf = build_transforms(
        AugmentConfig(), info, size=size, in_chans=info.in_chans, train=False, resize=size != native
    )
    ds = TransformedDataset(train, tf)
    n = len(ds) if not limit else min(limit, len(ds))
    order = torch.randperm(len(ds), generator=torch.Generator().manual_seed(seed))[:n].tolist()
    xs, ys = zip(*(ds[i] for i in order))
    x = torch.stack(xs)
    y = torch.as_tensor(ys, dtype=torch.long)
    half = n // 2
    return SearchData(
        name=name,
        x_search=x[:half],
        y_search=y[:half],
        x_val=x[half:],
        y_val=y[half:],
        num_classes=info.num_classes,
        in_chans=info.in_chans,
        size=size,  # type: ignore[arg-type]
    )


def _batches(n: int, batch_size: int, generator: torch.Generator) -> list[torch.Tensor]:
    perm = torch.randperm(n, generator=generator)
    return [perm[i : i + batch_size] for i in range(0, n - batch_size + 1, batch_size)] or [perm]


@torch.no_grad()
def evaluate_tensors(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, batch_size: int = 500) -> float:
    """Return the top-1 accuracy (%) of ``model`` on the tensors ``x``, ``y`` (eval mode)."""
    was_training = model.training
    model.eval()
    correct = 0
    for i in range(0, len(y), batch_size):
        out = model(x[i : i + batch_size])
        out = out[0] if isinstance(out, (tuple, list)) else out
        correct += int((out.argmax(1) == y[i : i + batch_size]).sum())
    model.train(was_training)
    return 100.0 * correct / max(1, len(y))


def proxy_lr(step: int, total: int, lr: float, warmup_steps: int = 0) -> float:
    """Return the learning rate of step ``step`` (0-based) of ``total``: linear warm-up, then a half cosine.

    Warm-up steps 0..w-1 get lr·(step + 1)/w; the remaining steps follow
    lr·(1 + cos(π·(step − w)/(total − w)))/2, so without warm-up step 0 trains at lr.
    """
    warm = min(warmup_steps, total - 1)
    if step < warm:
        return lr * (step + 1) / warm
    return 0.5 * lr * (1 + math.cos(math.pi * (step - warm) / (total - warm)))


def proxy_train(
    model: nn.Module,
    data: SearchData,
    *,
    epochs: float,
    seed: int,
    lr: float = 0.05,
    batch_size: int = 64,
    weight_decay: float = 5e-4,
    warmup_steps: int = 0,
) -> dict[str, float]:
    """Return the validation accuracy (%) and timing of ``model`` after a short training on the search half.

    SGD with momentum 0.9, a cosine schedule over ``epochs`` (fractions allowed) and
    gradient clipping at 5, as DARTS uses for its weights (§3.1.2). ``warmup_steps`` first
    raises the learning rate linearly from lr / warmup_steps to lr (then the cosine runs
    over the remaining steps). This ranks candidates cheaply; it is not the final training
    of the chosen network.
    """
    if epochs <= 0:
        raise ValueError(f"proxy training needs a positive number of epochs, got {epochs}")
    if warmup_steps < 0:
        raise ValueError(f"warm-up steps must be >= 0, got {warmup_steps}")
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=weight_decay, nesterov=True)
    per_epoch = max(1, len(data.y_search) // batch_size)
    total = max(1, math.ceil(epochs * per_epoch))
    model.train()
    start, step = time.perf_counter(), 0
    while step < total:
        for idx in _batches(len(data.y_search), batch_size, g):
            if step >= total:
                break
            for group in opt.param_groups:
                group["lr"] = proxy_lr(step, total, lr, warmup_steps)
            out = model(data.x_search[idx])
            out = out[0] if isinstance(out, (tuple, list)) else out
            loss = F.cross_entropy(out, data.y_search[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            opt.step()
            step += 1
    seconds = time.perf_counter() - start
    return {
        "val_top1": evaluate_tensors(model, data.x_val, data.y_val),
        "train_seconds": seconds,
        "steps": step,
    }


class SearchState:
    """A search's resumable state in ``<out>/search_state.pt``: written atomically, loaded with weights_only.

    ``method`` and ``args`` identify the search; a state of another method or with other
    arguments in the same directory is refused rather than mixed.
    """

    FILE = "search_state.pt"

    def __init__(self, out_dir: str | os.PathLike, *, method: str, args: dict[str, Any]) -> None:
        self.path = Path(out_dir) / self.FILE
        self.method = method
        self.args = args

    def load(self) -> dict[str, Any] | None:
        """Return the saved state, None when there is none; ValueError when it belongs to another search."""
        if not self.path.exists():
            return None
        try:
            state = load_checkpoint(self.path)
        except CheckpointError as e:
            raise ValueError(f"{self.path} is corrupt ({e}); delete it to start the search again") from None
        if state.get("method") != self.method or state.get("args") != self.args:
            raise ValueError(
                f"{self.path.parent} holds a {state.get('method')} search with arguments "
                f"{state.get('args')}; this is a {self.method} search with {self.args}. "
                "Use another --out directory (or the same arguments to resume)"
            )
        return state

    def save(self, payload: dict[str, Any]) -> None:
        """Write the state atomically (temporary file, fsync, rename)."""
        save_checkpoint({"method": self.method, "args": self.args, **payload}, self.path)
