"""Data order and loading: a resumable, shardable epoch sampler and a dataset that applies a pipeline.

The order of epoch ``e`` is a permutation drawn from ``(seed, e)`` alone. Under torchrun
each rank takes every ``world_size``-th sample of it (padded, as DistributedSampler does),
so the union of the ranks' k-th batches is the single-process k-th batch of the same
global batch size. A resumed run starts the sampler at the batch it had reached.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from .datasets import TensorImageDataset
from .transforms import Pipeline, mix_seed, seeded

__all__ = ["EpochSampler", "TransformedDataset", "make_loader"]

CACHE_LIMIT_BYTES = 1 << 30  # cache the static transform of in-memory datasets up to 1 GiB


class EpochSampler(Sampler):
    """Yield ``(index, sample_seed)`` for this rank's share of one epoch, from a start position.

    Call :meth:`set_epoch` before each epoch. With ``shuffle`` False the order is 0..N-1;
    with ``pad`` True (training) the order is padded by wrapping around to a multiple of
    ``world_size``, so every rank gets the same number of samples.
    """

    def __init__(
        self, n: int, *, seed: int, shuffle: bool, rank: int = 0, world_size: int = 1, pad: bool = True
    ) -> None:
        self.n, self.seed, self.shuffle = n, seed, shuffle
        self.rank, self.world_size, self.pad = rank, world_size, pad
        self.epoch, self.start = 0, 0

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        """Select the epoch's order and skip this rank's first ``start`` samples (resume)."""
        self.epoch, self.start = epoch, start

    def order(self) -> torch.Tensor:
        """Return the global order of the current epoch (before sharding)."""
        if self.shuffle:
            g = torch.Generator().manual_seed(mix_seed(self.seed, self.epoch, 0x0DDE5))
            order = torch.randperm(self.n, generator=g)
        else:
            order = torch.arange(self.n)
        if self.pad and self.world_size > 1 and self.n % self.world_size:
            extra = self.world_size - self.n % self.world_size
            order = torch.cat([order, order[:extra]])
        return order

    def per_rank(self) -> int:
        """Return the number of samples this rank sees in a full epoch."""
        if self.pad:
            return math.ceil(self.n / self.world_size)
        return len(range(self.rank, self.n, self.world_size))

    def __len__(self) -> int:
        return max(0, self.per_rank() - self.start)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        mine = self.order()[self.rank :: self.world_size][self.start :]
        for i in mine.tolist():
            yield i, mix_seed(self.seed, self.epoch, i)


class TransformedDataset(Dataset):
    """A dataset whose items are ``(pipeline(image), label)``; keys are an index or ``(index, seed)``.

    With a key ``(index, seed)`` the random part of the pipeline runs under that seed. For
    an in-memory :class:`TensorImageDataset` the static part is applied once to all images
    and cached (when the result fits in ``CACHE_LIMIT_BYTES``).
    """

    def __init__(self, base: Dataset, pipeline: Pipeline) -> None:
        self.base, self.pipeline = base, pipeline
        self.cached: torch.Tensor | None = None
        if isinstance(base, TensorImageDataset) and len(base):
            probe = pipeline.static(base.images[:1])
            if probe.numel() * probe.element_size() * len(base) <= CACHE_LIMIT_BYTES:
                chunks = [pipeline.static(base.images[i : i + 2048]) for i in range(0, len(base), 2048)]
                self.cached = torch.cat(chunks)
        self.labels = getattr(base, "labels", None)

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, key: int | tuple[int, int]) -> tuple[torch.Tensor, int]:
        index, seed = key if isinstance(key, tuple) else (key, None)
        if self.cached is not None:
            x, y = self.cached[index], int(self.labels[index])
        else:
            img, y = self.base[index]
            x = self.pipeline.static(img)
        if self.pipeline.dynamic is not None:
            if seed is None:
                x = self.pipeline.dynamic(x)
            else:
                with seeded(seed):
                    x = self.pipeline.dynamic(x)
        return x, y

    def __getitems__(self, keys: list) -> list[tuple[torch.Tensor, int]]:
        if self.cached is not None and self.pipeline.dynamic is None:  # fast path: one gather for the batch
            index = torch.tensor([k[0] if isinstance(k, tuple) else k for k in keys])
            return [(self.cached[index], self.labels[index])]
        return [self[k] for k in keys]


def _collate(items: list) -> tuple[torch.Tensor, torch.Tensor]:
    if len(items) == 1 and isinstance(items[0][1], torch.Tensor):  # already a batch (fast path)
        return items[0]
    return torch.stack([x for x, _ in items]), torch.tensor([y for _, y in items], dtype=torch.int64)


class _Loader(DataLoader):
    """A DataLoader whose worker errors read like the single-process ones (one line, the same type)."""

    def __iter__(self) -> Iterator:
        it = super().__iter__()
        while True:
            try:
                batch = next(it)
            except StopIteration:
                return
            except Exception as e:
                raise _unwrap_worker_error(e) from None
            yield batch


def _unwrap_worker_error(e: Exception) -> Exception:
    """Return ``e`` without the worker's traceback that torch puts in the message ("Caught X in DataLoader worker")."""
    text = str(e)
    if "Original Traceback" not in text:
        return e
    last = [ln for ln in text.splitlines() if ln.strip()][-1]
    _, sep, message = last.partition(": ")  # "module.ErrorType: message"
    try:
        return type(e)(message if sep else last)
    except Exception:  # an exception type that takes other arguments: keep it whole
        return e


def make_loader(
    dataset: TransformedDataset,
    sampler: Sampler,
    *,
    batch_size: int,
    num_workers: int = 0,
    pin_memory: bool = False,
) -> DataLoader:
    """Return a DataLoader over ``dataset`` in ``sampler``'s order, keeping the last partial batch."""
    return _Loader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        num_workers=num_workers,
        collate_fn=_collate,
        pin_memory=pin_memory,
        drop_last=False,
        persistent_workers=False,
    )
