"""The lineage plots: accuracy against compute, and parameters and compute by year.

Readable at any size, from three models to the whole registry: colour and marker by
family with a legend; every point labelled when there are few, otherwise a chosen
subset (the model that opened each family and the accuracy/compute Pareto front),
placed off the markers and off each other by adjustText; the year axis broken at its
widest gap so 1958-1998 does not squeeze 2012-2022. matplotlib (Agg) draws,
adjustText places the labels, ``atomic_savefig`` writes.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..common import atomic_savefig

__all__ = ["plot_lineage"]

LABEL_ALL = 16  # up to this many models every point is labelled
MIN_GAP = 8  # break the year axis at a gap of at least this many years
_MARKERS = "osD^v<>ph*"


def plot_lineage(rows: Sequence[Any], out_dir: str | os.PathLike) -> list[Path]:
    """Write ``top1_vs_gmacs.png``, ``params_by_year.png`` and ``gmacs_by_year.png`` into ``out_dir``; return their paths."""
    import matplotlib

    matplotlib.use("Agg", force=False)

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    style = _family_style(rows)
    return [
        _top1_vs_gmacs(rows, style, out / "top1_vs_gmacs.png"),
        _by_year(rows, style, "params", "parameters", out / "params_by_year.png"),
        _by_year(rows, style, "gmacs", "GMACs at the default input", out / "gmacs_by_year.png"),
    ]


def _family_style(rows: Sequence[Any]) -> dict[str, dict[str, Any]]:
    """Return colour and marker per family, families in order of first appearance (year)."""
    import matplotlib.pyplot as plt

    families = list(dict.fromkeys(r.family for r in sorted(rows, key=lambda r: r.year)))
    cmap = plt.get_cmap("tab10")
    return {
        f: {"color": cmap(i % 10), "marker": _MARKERS[(i // 10) % len(_MARKERS)]}
        for i, f in enumerate(families)
    }


def _legend(ax: Any, style: dict[str, dict[str, Any]], families: Sequence[str]) -> None:
    import matplotlib.pyplot as plt

    handles = [
        plt.Line2D([], [], ls="", markeredgecolor="k", markeredgewidth=0.5, markersize=6, label=f, **style[f])
        for f in style
        if f in families
    ]
    ax.legend(handles=handles, title="family", fontsize=7, title_fontsize=8, loc="upper left",
              bbox_to_anchor=(1.01, 1.0), ncol=1 if len(handles) <= 22 else 2, frameon=False)  # fmt: skip


def _chosen(rows: Sequence[Any], key: str) -> set[str]:
    """Return the names to label: all when few; else the first model of each family and the Pareto front."""
    if len(rows) <= LABEL_ALL:
        return {r.name for r in rows}
    chosen: set[str] = set()
    seen: set[str] = set()
    for r in sorted(rows, key=lambda r: r.year):
        if r.family not in seen:
            seen.add(r.family)
            chosen.add(r.name)
    if key == "top1":  # the models no cheaper model beats: the accuracy/compute frontier
        best = -1.0
        for r in sorted(rows, key=lambda r: r.gmacs):
            if r.top1 > best:
                best = r.top1
                chosen.add(r.name)
    else:  # and the largest and smallest overall
        chosen |= {
            max(rows, key=lambda r: getattr(r, key)).name,
            min(rows, key=lambda r: getattr(r, key)).name,
        }
    return chosen


def _place_labels(ax: Any, points: list[tuple[float, float, str]], markers: list[Any]) -> None:
    """Write the labels next to their points, moved off every marker (whole disc) and each other (adjustText).

    Each label starts just outside its own marker, up and to the right; adjustText then
    moves the labels apart and away from all markers, drawing a thin line where one moved.
    """
    from adjustText import adjust_text
    from matplotlib.transforms import Bbox

    if not points:
        return
    ax.figure.canvas.draw()  # final limits before anything is measured in pixels
    radius = {}
    discs = []
    for m in markers:  # one scatter call per model: its position and its size (points²)
        (cx, cy), r = ax.transData.transform(m.get_offsets()[0]), math.sqrt(float(m.get_sizes()[0])) / 2
        r = r * ax.figure.dpi / 72 + 1.5
        radius[(round(cx), round(cy))] = r
        discs.append(Bbox.from_extents(cx - r, cy - r, cx + r, cy + r))
    texts = []
    for x, y, name in points:
        cx, cy = ax.transData.transform((x, y))
        step = 0.75 * radius.get((round(cx), round(cy)), 4.0) + 2
        tx, ty = ax.transData.inverted().transform((cx + step, cy + step))
        texts.append(ax.text(tx, ty, name, fontsize=7))
    adjust_text(texts, x=[p[0] for p in points], y=[p[1] for p in points], objects=discs, ax=ax,
                target_x=[p[0] for p in points], target_y=[p[1] for p in points], expand=(1.3, 1.6),
                arrowprops={"arrowstyle": "-", "color": "0.45", "lw": 0.5})  # fmt: skip


def _top1_vs_gmacs(rows: Sequence[Any], style: dict, path: Path) -> Path:
    import matplotlib.pyplot as plt

    ranked = [r for r in rows if r.top1 is not None and r.gmacs > 0]
    missing = [r.name for r in rows if r.top1 is None]
    fig, ax = plt.subplots(figsize=(11, 7))
    markers = [
        ax.scatter(
            r.gmacs,
            r.top1,
            s=max(r.params / 1e6 * 3, 12),
            alpha=0.75,
            edgecolors="k",
            linewidths=0.5,
            zorder=3,
            **style[r.family],
        )  # fmt: skip
        for r in ranked
    ]
    chosen = _chosen(ranked, "top1")
    if ranked:
        from matplotlib.ticker import FuncFormatter

        ax.set_xscale("log")
        plain = FuncFormatter(lambda v, _: f"{v:g}")  # 0.3, 2, 10 rather than 3x10^-1
        ax.xaxis.set_major_formatter(plain)
        if (
            max(r.gmacs for r in ranked) / min(r.gmacs for r in ranked) < 30
        ):  # few decades: label the minors too
            ax.xaxis.set_minor_formatter(plain)
    _place_labels(ax, [(r.gmacs, r.top1, r.name) for r in ranked if r.name in chosen], markers)
    ax.set_xlabel("GMACs at the default input (log scale)")
    ax.set_ylabel("published ImageNet top-1 (%)")
    ax.set_title("Accuracy against compute (marker area ∝ parameters)")
    ax.grid(True, which="both", alpha=0.3)
    _legend(ax, style, {r.family for r in ranked})
    notes = []
    if len(chosen) < len(ranked):
        notes.append(f"Labelled: {len(chosen)} of {len(ranked)} models (the first of each family and the "
                     "accuracy/compute front); every model is in lineage.csv.")  # fmt: skip
    if missing:
        shown = ", ".join(missing[:8]) + (f" and {len(missing) - 8} more" if len(missing) > 8 else "")
        notes.append(f"Not shown: {len(missing)} model(s) without a published ImageNet top-1 ({shown}).")
    if not ranked:
        ax.text(0.5, 0.5, "no model here has a published ImageNet top-1", ha="center", va="center",
                transform=ax.transAxes)  # fmt: skip
    if notes:
        fig.text(0.01, 0.005, "\n".join(notes), fontsize=7, va="bottom", ha="left", color="0.3")
        fig.subplots_adjust(bottom=0.1 + 0.02 * len(notes))
    atomic_savefig(fig, path)
    plt.close(fig)
    return path


def _year_panels(years: Sequence[int]) -> list[tuple[float, float]]:
    """Return the x ranges of the panels: one, or two split at the last gap of MIN_GAP years or more.

    The last wide gap separates the dense recent era (2012 on, for the whole registry) from
    the few early models, which share a narrow first panel.
    """
    distinct = sorted(set(years))
    wide = [i for i, (a, b) in enumerate(zip(distinct, distinct[1:])) if b - a >= MIN_GAP]
    if not wide:
        return [(distinct[0] - 1, distinct[-1] + 1)]
    i = wide[-1]
    return [(distinct[0] - 3, distinct[i] + 3), (distinct[i + 1] - 0.7, distinct[-1] + 0.7)]


def _by_year(rows: Sequence[Any], style: dict, key: str, label: str, path: Path) -> Path:
    import matplotlib.pyplot as plt

    shown = [r for r in rows if getattr(r, key) > 0]
    panels = _year_panels([r.year for r in shown] or [2000])
    widths = [1.0] if len(panels) == 1 else [1.0, 3.2]
    fig, axes = plt.subplots(1, len(panels), figsize=(13, 7), sharey=True, squeeze=False,
                             gridspec_kw={"width_ratios": widths, "wspace": 0.04})  # fmt: skip
    axes = list(axes[0])
    # Models of one year spread sideways by family, so a year's column does not stack into one line.
    offsets: dict[tuple[int, str], float] = {}
    for year in {r.year for r in shown}:
        fams = list(dict.fromkeys(r.family for r in shown if r.year == year))
        for j, f in enumerate(fams):
            offsets[(year, f)] = (j - (len(fams) - 1) / 2) * min(0.12, 0.8 / max(len(fams), 1))
    chosen = _chosen(shown, key)
    from matplotlib.ticker import MaxNLocator

    placed = []
    for ax, (lo, hi) in zip(axes, panels):
        inside = [r for r in shown if lo <= r.year <= hi]
        markers = [
            ax.scatter(
                r.year + offsets[(r.year, r.family)],
                getattr(r, key),
                alpha=0.8,
                edgecolors="k",
                linewidths=0.5,
                s=30,
                zorder=3,
                **style[r.family],
            )  # fmt: skip
            for r in inside
        ]
        ax.set_xlim(lo, hi)
        ax.set_yscale("log")
        ax.grid(True, which="both", alpha=0.3)
        ax.xaxis.set_major_locator(
            MaxNLocator(nbins=4 if len(panels) == 2 and ax is axes[0] else 10, integer=True)
        )
        placed.append((ax, inside, markers))
    for ax, inside, markers in placed:  # once every panel is drawn, so the shared y range is final
        _place_labels(ax, [(r.year + offsets[(r.year, r.family)], getattr(r, key), r.name)
                           for r in inside if r.name in chosen], markers)  # fmt: skip
    if len(axes) == 2:  # the break: hide the facing spines and draw the usual diagonal marks
        axes[0].spines["right"].set_visible(False)
        axes[1].spines["left"].set_visible(False)
        axes[1].tick_params(left=False, which="both")
        d = 0.012
        for ax, x in ((axes[0], 1.0), (axes[1], 0.0)):
            for y in (0.0, 1.0):
                scale = 3.2 if ax is axes[0] else 1.0  # same slant in both panels despite their widths
                ax.plot((x - d * scale, x + d * scale), (y - 3 * d, y + 3 * d), transform=ax.transAxes,
                        color="k", lw=0.8, clip_on=False)  # fmt: skip
    axes[0].set_ylabel(f"{label} (log scale)")
    fig.supxlabel(
        "year" + (" (axis broken between the two panels)" if len(axes) == 2 else ""), fontsize=10, y=0.04
    )
    title = "Parameters by year" if key == "params" else "GMACs by year (at each model's default input)"
    fig.suptitle(title)
    _legend(axes[-1], style, {r.family for r in shown})
    if len(chosen) < len(shown):
        fig.text(0.01, 0.005, f"Labelled: {len(chosen)} of {len(shown)} models (the first of each family, the largest "
                 "and the smallest); every model is in lineage.csv.", fontsize=7,
                 color="0.3")  # fmt: skip
    atomic_savefig(fig, path)
    plt.close(fig)
    return path
