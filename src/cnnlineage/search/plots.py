"""Figures of a search: the derived cells, α over the search, EDFs of design spaces, scaling curves (matplotlib)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..common import atomic_savefig
from ..models.darts import PRIMITIVES, Genotype
from .design_space import edf

__all__ = ["plot_alphas", "plot_compound", "plot_edf", "plot_genotype", "plot_random"]

_OP_COLOURS = {
    "max_pool_3x3": "#8c564b", "avg_pool_3x3": "#e377c2", "skip_connect": "#7f7f7f",
    "sep_conv_3x3": "#1f77b4", "sep_conv_5x5": "#17becf", "dil_conv_3x3": "#2ca02c", "dil_conv_5x5": "#bcbd22",
}  # fmt: skip


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_genotype(genotype: Genotype, path: Path, *, title: str = "") -> Path:
    """Draw the normal and the reduction cell as graphs (inputs left, output right); return the path."""
    import math

    plt = _plt()
    fig, axes = plt.subplots(2, 1, figsize=(11, 8.5))
    for ax, kind in zip(axes, ("normal", "reduce")):
        edges = getattr(genotype, kind)
        concat = getattr(genotype, f"{kind}_concat")
        steps = len(edges) // 2
        pos = {0: (0.0, 1.2), 1: (0.0, -1.2)}
        for i in range(steps):
            pos[2 + i] = (2.2 * (i + 1), 0.9 if i % 2 == 0 else -0.9)
        out = (2.2 * (steps + 1), 0.0)
        for n in concat:
            ax.annotate(
                "",
                xy=out,
                xytext=pos[n],
                arrowprops=dict(arrowstyle="-|>", color="#cccccc", lw=1, shrinkA=16, shrinkB=18),
            )
        for e, (op, src) in enumerate(edges):
            dst = 2 + e // 2
            (x0, y0), (x1, y1) = pos[src], pos[dst]
            rad = 0.25 if src >= 2 and dst - src > 1 else 0.0  # arc over the nodes it would cross
            ax.annotate("", xy=(x1, y1), xytext=(x0, y0),
                        arrowprops=dict(arrowstyle="-|>", color=_OP_COLOURS[op], lw=2.2, shrinkA=16, shrinkB=16,
                                        connectionstyle=f"arc3,rad={rad}"))  # fmt: skip
            xm, ym = (x0 + x1) / 2, (y0 + y1) / 2
            if (
                rad
            ):  # arc3's control point is the chord's midpoint + rad·(dy, -dx); the curve passes halfway there
                xm, ym = xm + rad / 2 * (y1 - y0), ym - rad / 2 * (x1 - x0)
            angle = math.degrees(math.atan2(y1 - y0, x1 - x0))
            angle = angle - 180 if angle > 90 else angle + 180 if angle < -90 else angle
            ax.text(xm, ym, op, fontsize=9, color=_OP_COLOURS[op], ha="center", va="center", rotation=angle,
                    rotation_mode="anchor", bbox=dict(boxstyle="round,pad=0.12", fc="white", ec="none", alpha=0.9))  # fmt: skip
        labels = {0: "c(k-2)", 1: "c(k-1)"} | {2 + i: f"node {i}" for i in range(steps)}
        for n, (x, y) in pos.items():
            fc = "#dfefff" if n < 2 else "#fff2cc"
            ax.text(
                x,
                y,
                labels[n],
                ha="center",
                va="center",
                fontsize=10,
                bbox=dict(boxstyle="round", fc=fc, ec="#555555"),
            )
        ax.text(
            *out,
            "c(k)\nconcat",
            ha="center",
            va="center",
            fontsize=10,
            bbox=dict(boxstyle="round", fc="#e2f0d9", ec="#555555"),
        )
        ax.set_xlim(-0.8, out[0] + 0.8)
        ax.set_ylim(-1.9, 1.9)
        ax.axis("off")
        ax.set_title(
            f"{kind} cell" + ("  (edges from c(k-2) and c(k-1) have stride 2)" if kind == "reduce" else "")
        )
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    atomic_savefig(fig, path)
    plt.close(fig)
    return path


def plot_alphas(history: list[dict[str, Any]], path: Path) -> Path:
    """Plot, per operation, its mean mixture weight over the edges of each cell kind, epoch by epoch; return the path."""
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(12, 4), sharey=True)
    epochs = [h["epoch"] for h in history]
    for ax, kind in zip(axes, ("normal", "reduce")):
        w = np.array([h[f"alphas_{kind}"] for h in history])  # (epochs, edges, ops)
        for o, op in enumerate(PRIMITIVES):
            ax.plot(epochs, w[:, :, o].mean(axis=1), marker="o", ms=3, label=op,
                    color=_OP_COLOURS.get(op, "black"), ls="--" if op == "none" else "-")  # fmt: skip
        ax.axhline(1 / len(PRIMITIVES), color="#999999", lw=0.8, ls=":")
        ax.set_title(f"{kind} cell: mean softmax(α) per operation")
        ax.set_xlabel("search epoch")
        ax.xaxis.get_major_locator().set_params(integer=True)
    axes[0].set_ylabel("mixture weight (uniform = 1/8, dotted)")
    axes[1].legend(fontsize=8, loc="center left", bbox_to_anchor=(1.0, 0.5))
    fig.tight_layout()
    atomic_savefig(fig, path)
    plt.close(fig)
    return path


def plot_edf(models: dict[str, list[dict[str, Any]]], path: Path, *, data: str) -> Path:
    """Plot the error EDF of each design space (Radosavovic et al. Fig. 2 style); return the path."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    errors = [m["error"] for ms in models.values() for m in ms]
    grid = np.linspace(min(errors) - 1, max(errors) + 1, 400)
    for (space, ms), colour in zip(models.items(), ("#d62728", "#1f77b4")):
        e = [m["error"] for m in ms]
        ax.step(grid, edf(e, grid), where="post", color=colour, lw=2,
                label=f"{'AnyNetX' if space == 'anynetx' else 'RegNetX'} (n={len(e)}, min {min(e):.1f}%, median {np.median(e):.1f}%)")  # fmt: skip
    ax.set_xlabel(f"validation error on {data} (%)")
    ax.set_ylabel("cumulative fraction of models")
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=9)
    ax.set_title("Error EDF of two design spaces (higher and further left is better)")
    fig.tight_layout()
    atomic_savefig(fig, path)
    plt.close(fig)
    return path


def plot_compound(record: dict[str, Any], path: Path, *, data: str) -> Path:
    """Plot validation top-1 against measured MFLOPs for compound and single-axis scaling; return the path."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    styles = {
        "compound": ("#d62728", "o"),
        "depth": ("#1f77b4", "s"),
        "width": ("#2ca02c", "^"),
        "resolution": ("#9467bd", "D"),
    }
    for name, runs in record.get("curves", {}).items():
        c, m = styles[name]
        label = (
            name
            if name != "compound"
            else "compound (α={alpha}, β={beta}, γ={gamma})".format(**record["chosen"])
        )
        ax.plot(
            [r["flops"] / 1e6 for r in runs], [r["val_top1"] for r in runs], color=c, marker=m, label=label
        )
    ax.set_xlabel("FLOPs per image (millions, analyzer)")
    ax.set_ylabel(f"validation top-1 on {data} (%)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title("Scaling a small EfficientNet: compound vs one axis")
    fig.tight_layout()
    atomic_savefig(fig, path)
    plt.close(fig)
    return path


def plot_random(candidates: list[dict[str, Any]], path: Path, *, darts_val: float | None = None) -> Path:
    """Plot each random candidate's validation top-1 in order, and the best so far; return the path."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.5, 4))
    acc = [c["val_top1"] for c in candidates]
    xs = range(1, len(acc) + 1)
    ax.plot(xs, acc, "o", color="#7f7f7f", label="candidate")
    ax.plot(xs, np.maximum.accumulate(acc), color="#d62728", label="best so far")
    if darts_val is not None:
        ax.axhline(darts_val, color="#1f77b4", ls="--", label="DARTS genotype (same proxy training)")
    ax.set_xlabel("candidate")
    ax.set_ylabel("validation top-1 (%)")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    atomic_savefig(fig, path)
    plt.close(fig)
    return path
