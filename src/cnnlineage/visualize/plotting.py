"""Figures shared by every visualisation: image grids, heatmaps over the image, colour bars, footers.

matplotlib (Agg) draws; :func:`cnnlineage.common.atomic_savefig` writes, so a figure is
never left half-written. Every heatmap is drawn over its image, with a colour bar that says
what its values are; every figure names the model, the method and how the input was resized.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

__all__ = ["grid_figure", "normalise", "save", "show_image", "heatmap_panel", "panel_figure"]


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def normalise(a: np.ndarray, *, symmetric: bool = False) -> np.ndarray:
    """Return ``a`` scaled to [0, 1] (by its min/max, or by its largest magnitude about 0.5)."""
    a = np.asarray(a, dtype=np.float64)
    if symmetric:
        m = np.abs(a).max()
        return 0.5 + 0.5 * a / m if m > 0 else np.full_like(a, 0.5)
    lo, hi = a.min(), a.max()
    return (a - lo) / (hi - lo) if hi > lo else np.zeros_like(a)


def show_image(ax, img: np.ndarray, *, title: str | None = None) -> None:  # noqa: ANN001
    """Draw an (H, W) grey or (H, W, 3) RGB image in [0, 1] without axes."""
    if img.ndim == 2:
        ax.imshow(img, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    else:
        ax.imshow(np.clip(img, 0, 1), interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=9)


def heatmap_panel(
    fig,  # noqa: ANN001
    ax,  # noqa: ANN001
    image: np.ndarray,
    heat: np.ndarray,
    *,
    title: str,
    cbar_label: str,
    cmap: str = "jet",
    alpha: float = 0.5,
    symmetric: bool = False,
) -> None:
    """Draw ``heat`` (H, W) over ``image`` in grey, with a colour bar labelled ``cbar_label``."""
    grey = image if image.ndim == 2 else image.mean(axis=-1)
    ax.imshow(grey, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    if symmetric:
        m = float(np.abs(heat).max()) or 1.0
        # signed maps: more opaque, so that white (zero) and the reds stay readable over a black background
        im = ax.imshow(heat, cmap="RdBu_r", vmin=-m, vmax=m, alpha=max(alpha, 0.75), interpolation="bilinear")
    else:
        im = ax.imshow(heat, cmap=cmap, alpha=alpha, interpolation="bilinear")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title, fontsize=9)
    cb = fig.colorbar(im, ax=ax, fraction=0.046, pad=0.03)
    cb.set_label(cbar_label, fontsize=8)
    cb.ax.tick_params(labelsize=7)


def panel_figure(ncols: int, nrows: int = 1, *, width: float = 3.4, height: float = 3.0):
    """Return (figure, axes as a 2-D array) with constrained layout (no overlapping labels)."""
    plt = _plt()
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(width * ncols, height * nrows + 0.6), squeeze=False, layout="constrained"
    )
    return fig, axes


def grid_figure(
    tiles: Sequence[np.ndarray],
    *,
    titles: Sequence[str] | None = None,
    suptitle: str,
    footer: str = "",
    cmap: str = "viridis",
    cbar_label: str | None = None,
    shared_scale: bool = False,
    max_cols: int = 8,
    tile_inches: float = 1.3,
    images: int = 0,
    symmetric: bool = False,
):
    """Return a figure with the tiles (H, W) or (H, W, 3) in a grid; one colour bar when scales are shared.

    The first ``images`` tiles are pictures (grey or RGB in [0, 1]), drawn as they are and
    left out of the shared colour scale.
    """
    plt = _plt()
    n = len(tiles)
    cols = min(max_cols, n) or 1
    rows = max(1, math.ceil(n / cols))
    fig, axes = plt.subplots(
        rows,
        cols,
        figsize=(tile_inches * cols + (1.0 if cbar_label else 0.3), tile_inches * rows + 1.0),
        squeeze=False,
        layout="constrained",
    )
    vmin = vmax = None
    if shared_scale and n:
        vmin = min(float(np.min(t)) for t in tiles[images:])
        vmax = max(float(np.max(t)) for t in tiles[images:])
        if symmetric:  # zero in the middle of the colour map
            vmax = max(abs(vmin), abs(vmax))
            vmin = -vmax
    im = None
    for i, ax in enumerate(axes.flat):
        ax.set_xticks([])
        ax.set_yticks([])
        if i >= n:
            ax.axis("off")
            continue
        t = tiles[i]
        if i < images:
            show_image(ax, t)
        elif t.ndim == 3:
            ax.imshow(np.clip(t, 0, 1), interpolation="nearest")
        else:
            im = ax.imshow(t, cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest")
        if titles:
            ax.set_title(titles[i], fontsize=7, pad=2)
    if cbar_label and im is not None:
        cb = fig.colorbar(im, ax=axes, fraction=0.03, pad=0.02, shrink=0.9)
        cb.set_label(cbar_label, fontsize=8)
        cb.ax.tick_params(labelsize=7)
    fig.suptitle(suptitle, fontsize=10)
    if footer:
        fig.text(0.5, -0.01, footer, ha="center", va="top", fontsize=7, wrap=True)
    return fig


def save(fig, out_dir: str | os.PathLike, filename: str) -> Path:  # noqa: ANN001
    """Write the figure to ``out_dir/filename`` atomically, close it, and return the path."""
    from ..common import atomic_savefig

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = atomic_savefig(fig, out / filename)
    _plt().close(fig)
    return path


def footer_text(*lines: str) -> str:
    """Return footer lines joined for :func:`fig.text`."""
    return "\n".join(x for x in lines if x)
