"""The lineage comparison: one row per model from the registry and the profiler, and its plots."""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from ..common import atomic_savefig
from .profiler import profile

__all__ = ["LineageRow", "compare", "rows_to_csv", "rows_to_markdown", "plot_lineage"]


@dataclass
class LineageRow:
    """One model of the lineage table."""

    name: str
    family: str
    year: int
    params: int
    gmacs: float  # at the default input size, batch 1
    input_size: str
    peak_activation_mib: float  # inference, fp32, batch 1
    receptive_field: int | tuple[int, int] | None  # local field of the last spatial layer
    top1: float | None  # published ImageNet top-1 (%)
    top1_source: str | None


def compare(names: Sequence[str], progress: Callable[[str], None] | None = None) -> list[LineageRow]:
    """Return the lineage table for ``names``, profiling each at its default input."""
    from ..registry import model_info

    rows = []
    for name in names:
        card = model_info(name)
        if progress:
            progress(name)
        p = profile(name)
        rows.append(LineageRow(
            name=name, family=card.family, year=card.year, params=p.total_params, gmacs=p.total_macs / 1e9,
            input_size="x".join(map(str, card.input_size)), peak_activation_mib=p.peak_activation_bytes / 2**20,
            receptive_field=p.receptive_field, top1=card.ref_top1, top1_source=card.ref_top1_source,
        ))  # fmt: skip
    return rows


_HEADERS = [
    "name",
    "family",
    "year",
    "params",
    "GMACs",
    "input",
    "peak act. MiB",
    "RF",
    "top-1",
    "top-1 source",
]


def _cells(r: LineageRow) -> list[str]:
    rf = (
        "x".join(map(str, r.receptive_field))
        if isinstance(r.receptive_field, tuple)
        else str(r.receptive_field)
    )
    return [r.name, r.family, str(r.year), f"{r.params:,}", f"{r.gmacs:.3f}", r.input_size,
            f"{r.peak_activation_mib:.1f}", rf, "-" if r.top1 is None else f"{r.top1:.2f}", r.top1_source or "-"]  # fmt: skip


def rows_to_table(rows: Sequence[LineageRow]) -> str:
    """Return the lineage table as aligned text."""
    from ..common import format_table

    return format_table([_cells(r) for r in rows], _HEADERS, "lllrrlrrrl")


def rows_to_markdown(rows: Sequence[LineageRow]) -> str:
    """Return the lineage table as Markdown."""
    lines = ["| " + " | ".join(_HEADERS) + " |", "|" + "---|" * len(_HEADERS)]
    lines += ["| " + " | ".join(_cells(r)) + " |" for r in rows]
    return "\n".join(lines)


def rows_to_csv(rows: Sequence[LineageRow]) -> str:
    """Return the lineage table as CSV."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(LineageRow.__dataclass_fields__))  # type: ignore[attr-defined]
    w.writeheader()
    for r in rows:
        w.writerow(asdict(r))
    return buf.getvalue()


def plot_lineage(rows: Sequence[LineageRow], out_dir: str | os.PathLike) -> list[Path]:
    """Write the lineage plots as PNG files into ``out_dir`` and return their paths.

    - ``top1_vs_gmacs.png``: published top-1 against GMACs, marker area by parameters;
    - ``params_by_year.png`` and ``gmacs_by_year.png``: log-scale growth over the years.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    families = sorted({r.family for r in rows})
    cmap = plt.get_cmap("tab20", max(len(families), 1))
    color = {f: cmap(i) for i, f in enumerate(families)}

    ranked = [r for r in rows if r.top1 is not None]
    fig, ax = plt.subplots(figsize=(9, 6))
    for r in ranked:
        ax.scatter(r.gmacs, r.top1, s=max(r.params / 1e6 * 4, 8), color=color[r.family], alpha=0.7,
                   edgecolors="k", linewidths=0.5)  # fmt: skip
        ax.annotate(r.name, (r.gmacs, r.top1), fontsize=6, xytext=(3, 3), textcoords="offset points")
    ax.set_xscale("log")
    ax.set_xlabel("GMACs at the default input (log scale)")
    ax.set_ylabel("published ImageNet top-1 (%)")
    ax.set_title("Accuracy against compute (marker area ∝ parameters)")
    ax.grid(True, which="both", alpha=0.3)
    handles = [plt.Line2D([], [], marker="o", ls="", color=color[f], label=f) for f in families
               if any(r.family == f for r in ranked)]  # fmt: skip
    if handles:
        ax.legend(handles=handles, fontsize=7, ncol=2, loc="lower right")
    paths.append(out / "top1_vs_gmacs.png")
    atomic_savefig(fig, paths[-1])
    plt.close(fig)

    for key, label, fname in (("params", "parameters", "params_by_year.png"),
                              ("gmacs", "GMACs at the default input", "gmacs_by_year.png")):  # fmt: skip
        fig, ax = plt.subplots(figsize=(9, 5))
        for r in rows:
            v = getattr(r, key)
            if v <= 0:
                continue
            ax.scatter(r.year, v, color=color[r.family], alpha=0.8, edgecolors="k", linewidths=0.5)
            ax.annotate(r.name, (r.year, v), fontsize=6, xytext=(3, 2), textcoords="offset points")
        ax.set_yscale("log")
        ax.set_xlabel("year")
        ax.set_ylabel(f"{label} (log scale)")
        ax.set_title(f"{label.capitalize().split(' at ')[0]} by year")
        ax.grid(True, which="both", alpha=0.3)
        paths.append(out / fname)
        atomic_savefig(fig, paths[-1])
        plt.close(fig)
    return paths
