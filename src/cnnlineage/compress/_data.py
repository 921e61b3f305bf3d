"""A trained checkpoint with its own data: the model, calibration batches and the held-out split.

Every compression tool starts from a checkpoint that ``cnnlineage train`` wrote. Calibration
and importance batches come from the run's *training* split with the test-time transform
(no augmentation: the statistics must be those the deployed model will see); accuracy is
always measured on the held-out split, the images resized and normalised as in training.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from ..data import EpochSampler, TransformedDataset, build_datasets, build_transforms, make_loader
from ..data.datasets import DatasetInfo
from ..registry import list_models
from ..train.checkpoint import CheckpointError, load_checkpoint
from ..train.config import AugmentConfig, TrainConfig, config_from_dict
from ..train.engine import evaluate
from ..train.inference import load_model

__all__ = ["CheckpointData", "META_KEYS", "load_checkpoint_data"]

# What eval/predict need besides the weights (the trainer's ``_meta``).
META_KEYS = (
    "format",
    "config",
    "model_name",
    "num_classes",
    "in_chans",
    "input_size",
    "classes",
    "mean",
    "std",
)


@dataclass
class CheckpointData:
    """A checkpoint's model (eval mode, CPU), its metadata and loaders over its own dataset."""

    path: Path
    model: nn.Module
    meta: dict[str, Any]
    train: TransformedDataset  # training split, test-time transform
    test: TransformedDataset  # held-out split
    num_classes: int
    info: DatasetInfo | None = None  # the data set's statistics (for the training pipeline)
    cfg: TrainConfig | None = None  # the run's recipe

    def training_set(self) -> TransformedDataset:
        """Return the run's own training images (its ``train_subset``) with the recipe's augmentation."""
        if self.cfg is None or self.info is None:
            raise ValueError(f"{self.path}: no recipe loaded; use load_checkpoint_data")
        size = tuple(self.input_size[1:])
        tf = build_transforms(
            self.cfg.augment, self.info, size=size, in_chans=self.input_size[0], train=True,
            resize=self.info.size != size,
        )  # fmt: skip
        return TransformedDataset(self.train.base.subset(self.cfg.data.train_subset), tf)

    @property
    def input_size(self) -> tuple[int, int, int]:
        return tuple(self.meta["input_size"])  # type: ignore[return-value]

    def example(self, batch: int = 1) -> torch.Tensor:
        """Return the first ``batch`` held-out images, (batch, C, H, W)."""
        return torch.stack([self.test[i][0] for i in range(min(batch, len(self.test)))])

    def batches(self, n: int, *, batch_size: int = 32) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Yield the first ``n`` training batches (fixed order) with their labels."""
        if n < 1:
            raise ValueError(f"need at least one calibration batch; got {n}")
        loader = make_loader(
            self.train, EpochSampler(len(self.train), seed=0, shuffle=True), batch_size=batch_size
        )
        for i, batch in enumerate(loader):
            if i >= n:
                break
            yield batch

    def evaluate(
        self, model: nn.Module | Callable[[torch.Tensor], torch.Tensor], *, batch_size: int = 250
    ) -> dict[str, Any]:
        """Return loss, top-1, top-5, per-class accuracy and confusion of ``model`` on the held-out split."""
        loader = make_loader(
            self.test, EpochSampler(len(self.test), seed=0, shuffle=False, pad=False), batch_size=batch_size
        )
        if not isinstance(model, nn.Module):
            model = _Callable(model)
        with torch.no_grad():
            return evaluate(model, loader, device=torch.device("cpu"), num_classes=self.num_classes)

    def base_checkpoint(self) -> dict[str, Any]:
        """Return the checkpoint's metadata (config, classes, input size, normalisation) without weights."""
        return {k: self.meta[k] for k in META_KEYS if k in self.meta}


class _Callable(nn.Module):
    """Wrap a compiled or exported callable so :func:`evaluate` can switch modes on it."""

    def __init__(self, fn: Callable[[torch.Tensor], torch.Tensor]) -> None:
        super().__init__()
        self.fn = fn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(x)


def load_checkpoint_data(path: str | Path, *, test_subset: int = 0) -> CheckpointData:
    """Return the checkpoint at ``path`` with its data; ValueError for an unknown model or a non-training checkpoint."""
    path = Path(path)
    raw = load_checkpoint(path)
    name = raw.get("model_name")
    if name is None or "config" not in raw:
        raise CheckpointError(
            f"{path} is not a checkpoint written by `cnnlineage train` (no model_name/config)"
        )
    if name not in list_models():
        raise CheckpointError(
            f"{path} holds model {name!r}, which is not registered in this cnnlineage; see `cnnlineage list`"
        )
    del raw
    model, meta = load_model(path)
    cfg = config_from_dict(meta["config"])
    train_base, test_base, info = build_datasets(
        cfg.data.name, root=cfg.data.root, download=False, skip_bad_images=cfg.data.skip_bad_images
    )
    size = tuple(meta["input_size"][1:])
    tf = build_transforms(
        AugmentConfig(), info, size=size, in_chans=meta["in_chans"], train=False, resize=info.size != size
    )
    test = test_base.subset(test_subset) if test_subset else test_base
    return CheckpointData(
        path=path,
        model=model,
        meta=meta,
        train=TransformedDataset(train_base, tf),
        test=TransformedDataset(test, tf),
        num_classes=info.num_classes,
        info=info,
        cfg=cfg,
    )
