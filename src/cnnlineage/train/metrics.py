"""What a run reports: accuracy from a confusion matrix, the progress display, plots and TensorBoard.

Only rank 0 writes. Plots use matplotlib's Agg backend (no display needed).
"""

from __future__ import annotations

import math
import shutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

__all__ = [
    "Progress",
    "TensorBoard",
    "accuracy_from_confusion",
    "plot_confusion",
    "plot_learning_curves",
    "topk_correct",
]


def topk_correct(logits: torch.Tensor, labels: torch.Tensor, k: int) -> int:
    """Return how many rows of ``logits`` have their label among the top ``k`` scores."""
    k = min(k, logits.shape[1])
    top = logits.topk(k, dim=1).indices  # (B, k)
    return int((top == labels[:, None]).any(dim=1).sum())


def accuracy_from_confusion(confusion: torch.Tensor) -> tuple[float, list[float | None]]:
    """Return (top-1 %, per-class recall % or None for a class with no samples) from a (true, predicted) matrix."""
    total = int(confusion.sum())
    top1 = 100.0 * float(confusion.diag().sum()) / max(1, total)
    rows = confusion.sum(dim=1)
    per_class = [100.0 * float(confusion[i, i]) / int(n) if n else None for i, n in enumerate(rows.tolist())]
    return top1, per_class


class Progress:
    """Per-batch progress: a tqdm bar on a terminal, plain lines every ``every`` steps otherwise, or nothing."""

    def __init__(
        self, mode: str, *, total: int, initial: int, desc: str, every: int, enabled: bool = True
    ) -> None:
        if mode == "auto":  # a bar needs a terminal with a width (a pty of 0 columns shows nothing)
            mode = "bar" if sys.stderr.isatty() and shutil.get_terminal_size((0, 0)).columns > 0 else "lines"
        self.mode = mode if enabled else "none"
        self.total, self.desc, self.every, self.n = total, desc, every, initial
        self.bar = None
        if self.mode == "bar":
            from tqdm import tqdm

            self.bar = tqdm(
                total=total, initial=initial, desc=desc, leave=False, dynamic_ncols=True, file=sys.stderr
            )

    def update(self, stats: dict[str, float]) -> None:
        self.n += 1
        text = f"loss {stats['loss']:.4f}  acc {stats['acc']:.1f}%  {stats['ips']:,.0f} img/s"
        if self.bar is not None:
            self.bar.update(1)
            if self.n % 5 == 0 or self.n == self.total:
                self.bar.set_postfix_str(text, refresh=False)
        elif self.mode == "lines" and (self.n % self.every == 0):
            print(f"{self.desc} step {self.n}/{self.total}  {text}", flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


class TensorBoard:
    """TensorBoard scalars under ``<run>/tb``; events past ``purge_step`` are dropped on resume."""

    def __init__(self, log_dir: Path, *, purge_step: int | None = None) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(log_dir=str(log_dir), purge_step=purge_step)

    def scalars(self, values: dict[str, Any], step: int) -> None:
        for k, v in values.items():
            if isinstance(v, (int, float)) and v is not None:
                self.writer.add_scalar(k, v, step)
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def plot_learning_curves(history: Sequence[dict[str, Any]], path: Path, *, title: str = "") -> Path:
    """Write loss and top-1 per epoch (train and test) to a PNG; return its path.

    Epochs are whole numbers on the x axis; a run of one epoch shows its single point in
    a window of half an epoch either side rather than matplotlib's fractional ticks.
    """
    from ..common import atomic_savefig

    plt = _pyplot()
    fig = learning_curves_figure(history, title=title)
    atomic_savefig(fig, path, dpi=100)
    plt.close(fig)
    return path


def learning_curves_figure(history: Sequence[dict[str, Any]], *, title: str = ""):  # noqa: ANN201
    """Return the matplotlib figure of :func:`plot_learning_curves` (left open for the caller)."""
    from matplotlib.ticker import MaxNLocator

    plt = _pyplot()
    epochs = [h["epoch"] for h in history]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    ax1.plot(epochs, [h["train_loss"] for h in history], "o-", label="train")
    ax1.plot(epochs, [h["test_loss"] for h in history], "s-", label="test")
    ax1.set(xlabel="epoch", ylabel="cross-entropy loss", title="loss")
    losses = [
        v for h in history for v in (h["train_loss"], h["test_loss"]) if v is not None and math.isfinite(v)
    ]
    if losses:
        ax1.set_ylim(0, max(losses) * 1.1 or 1.0)
    ax2.plot(epochs, [h["train_top1"] for h in history], "o-", label="train")
    ax2.plot(epochs, [h["test_top1"] for h in history], "s-", label="test")
    if any("ema_top1" in h for h in history):
        ax2.plot(epochs, [h.get("ema_top1") for h in history], "^-", label="test (EMA)")
    ax2.set(xlabel="epoch", ylabel="top-1 (%)", title="accuracy")
    accs = [
        v for h in history for k in ("train_top1", "test_top1", "ema_top1") if (v := h.get(k)) is not None
    ]
    if accs:  # at least 10 points of range, so one epoch (or a flat curve) is not magnified into noise
        mid, half = (min(accs) + max(accs)) / 2, max((max(accs) - min(accs)) / 2 * 1.15, 5.0)
        lo, hi = max(0.0, mid - half), min(100.0, mid + half)
        ax2.set_ylim(lo, hi)
    for ax in (ax1, ax2):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if epochs and min(epochs) == max(epochs):
            ax.set_xlim(epochs[0] - 0.5, epochs[0] + 0.5)
            ax.set_xticks([epochs[0]])
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_confusion(confusion: torch.Tensor, classes: Sequence[str], path: Path, *, title: str = "") -> Path:
    """Write the confusion matrix (rows: true class, columns: predicted) to a PNG; return its path."""
    from ..common import atomic_savefig

    plt = _pyplot()
    fig = confusion_figure(confusion, classes, title=title)
    atomic_savefig(fig, path, dpi=100)
    plt.close(fig)
    return path


def confusion_figure(confusion: torch.Tensor, classes: Sequence[str], *, title: str = ""):  # noqa: ANN201
    """Return the matplotlib figure of :func:`plot_confusion` (left open for the caller)."""
    from matplotlib.ticker import MaxNLocator

    plt = _pyplot()
    n = confusion.shape[0]
    fig, ax = plt.subplots(figsize=(min(14, 3 + 0.45 * n), min(12, 2.5 + 0.4 * n)))
    im = ax.imshow(confusion.numpy(), cmap="Blues")
    bar = fig.colorbar(im, ax=ax)
    bar.set_label("test images (count)")
    bar.ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    if n <= 30:
        names = list(classes) if len(classes) == n else [str(i) for i in range(n)]
        ax.set_xticks(range(n), names, rotation=90 if max(map(len, names)) > 2 else 0)
        ax.set_yticks(range(n), names)
    if n <= 20:
        limit = float(confusion.max()) / 2 if confusion.numel() else 0
        for i in range(n):
            for j in range(n):
                v = int(confusion[i, j])
                if v:
                    ax.text(
                        j,
                        i,
                        str(v),
                        ha="center",
                        va="center",
                        fontsize=7,
                        color="white" if v > limit else "black",
                    )
    ax.set(xlabel="predicted class", ylabel="true class", title=title or "confusion matrix")
    fig.tight_layout()
    return fig


class Timer:
    """Wall-clock seconds, accumulated across pauses (e.g. evaluation) and restored on resume."""

    def __init__(self, elapsed: float = 0.0) -> None:
        self.elapsed, self._start = elapsed, None

    def start(self) -> None:
        self._start = time.perf_counter()

    def stop(self) -> float:
        if self._start is not None:
            self.elapsed += time.perf_counter() - self._start
            self._start = None
        return self.elapsed

    def peek(self) -> float:
        return self.elapsed + (time.perf_counter() - self._start if self._start is not None else 0.0)
