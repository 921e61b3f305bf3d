"""The lineage comparison: one row per model from the registry and the profiler, and its plots."""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from .counting import SDPA_OPS
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
    top1_kind: str | None = (
        None  # "paper" (the paper's table) or "recipe" (released weights of a later recipe)
    )
    global_rf: bool = False  # attention mixes every position: each output sees the whole input


# operators that mix tokens by attention (dot products between positions), whatever kernel runs them
_ATTENTION_OPS = SDPA_OPS | {"MultiheadAttention", "bmm", "baddbmm"}


def compare(
    names: Sequence[str], progress: Callable[[str], None] | None = None, *, top1_kind: str | None = None
) -> list[LineageRow]:
    """Return the lineage table for ``names``, profiling each at its default input.

    ``top1_kind`` ("paper" or "recipe") keeps only top-1 figures of that kind, so a table
    never sets a paper's number beside a later recipe's; the others read "-".
    """
    from ..registry import TOP1_KINDS, model_info

    if top1_kind is not None and top1_kind not in TOP1_KINDS:
        raise ValueError(f"top1_kind must be one of {', '.join(TOP1_KINDS)}, got {top1_kind!r}")

    rows = []
    for name in names:
        card = model_info(name)
        if progress:
            progress(name)
        p = profile(name)
        rows.append(LineageRow(
            name=name, family=card.family, year=card.year, params=p.total_params, gmacs=p.total_macs / 1e9,
            input_size="x".join(map(str, card.input_size)), peak_activation_mib=p.peak_activation_bytes / 2**20,
            receptive_field=p.receptive_field, **_top1(card, top1_kind),
            global_rf=any(r.type in _ATTENTION_OPS for r in p.rows),
        ))  # fmt: skip
    return rows


def _top1(card: object, kind: str | None) -> dict:
    if kind is not None and card.ref_top1_kind != kind:  # type: ignore[attr-defined]
        return dict(top1=None, top1_source=None, top1_kind=None)
    return dict(top1=card.ref_top1, top1_source=card.ref_top1_source, top1_kind=card.ref_top1_kind)  # type: ignore[attr-defined]


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
    "top-1 kind",
    "top-1 source",
]


def _cells(r: LineageRow) -> list[str]:
    rf = (
        "x".join(map(str, r.receptive_field))
        if isinstance(r.receptive_field, tuple)
        else str(r.receptive_field)
    )
    rf = f"global (local {rf})" if r.global_rf else rf  # as `summary` marks attention rows
    return [r.name, r.family, str(r.year), f"{r.params:,}", f"{r.gmacs:.3f}", r.input_size,
            f"{r.peak_activation_mib:.1f}", rf, "-" if r.top1 is None else f"{r.top1:.2f}", r.top1_kind or "-",
            r.top1_source or "-"]  # fmt: skip


def rows_to_table(rows: Sequence[LineageRow]) -> str:
    """Return the lineage table as aligned text."""
    from ..common import format_table

    return format_table([_cells(r) for r in rows], _HEADERS, "lllrrlrrrll")


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
    """Write the lineage plots as PNG files into ``out_dir`` and return their paths (see ``lineage_plots``).

    - ``top1_vs_gmacs.png``: published top-1 against GMACs, marker area by parameters;
    - ``params_by_year.png`` and ``gmacs_by_year.png``: log-scale growth over the years.
    """
    from .lineage_plots import plot_lineage as plot

    return plot(rows, out_dir)
