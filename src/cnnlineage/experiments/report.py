"""Markdown for experiments (one section each) and the plotting helpers they share (mean ± spread over seeds)."""

from __future__ import annotations

import json
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..common import atomic_savefig

__all__ = ["assemble_report", "experiment_markdown", "mean_spread", "new_figure", "plot_band", "save"]


def mean_spread(values: Sequence[float | None]) -> tuple[float, float]:
    """Return (mean, sample standard deviation) of the finite values; spread 0 for one value, NaN for none."""
    xs = [float(v) for v in values if v is not None and v == v]
    if not xs:
        return float("nan"), float("nan")
    return statistics.fmean(xs), (statistics.stdev(xs) if len(xs) > 1 else 0.0)


def mean_of(values: Sequence[float | None]) -> float:
    """Return the mean of the finite values (NaN for none)."""
    return mean_spread(list(values))[0]


def fmt_ms(values: Sequence[float | None], digits: int = 2, unit: str = "") -> str:
    """Return 'mean ± std' of the values (just the value for one seed), e.g. '97.20 ± 0.31%'."""
    m, s = mean_spread(values)
    if m != m:
        return "n/a"
    n = len([v for v in values if v is not None])
    return f"{m:.{digits}f}{unit}" if n == 1 else f"{m:.{digits}f} ± {s:.{digits}f}{unit}"


def new_figure(ncols: int = 1, *, width: float = 6.0, height: float = 4.2):  # noqa: ANN201
    """Return (figure, axes) from matplotlib's Agg backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, ncols, figsize=(width * ncols, height), squeeze=False)
    return fig, axes[0]


def plot_band(ax, x: Sequence[float], runs: Sequence[Sequence[float | None]], *, label: str, **kw) -> None:  # noqa: ANN001, ANN003
    """Plot the mean over runs (seeds) with a ±1 standard deviation band; ``runs`` is one sequence per seed."""
    import warnings

    import numpy as np

    arr = np.array([[np.nan if v is None else float(v) for v in r] for r in runs], dtype=float)
    n = len(runs)
    label = f"{label} (mean ± sd, {n} seeds)" if n > 1 else label
    if np.isnan(arr).all():  # nothing measured (e.g. never reached): keep the legend entry, draw nothing
        ax.plot([], [], label=f"{label}: no value", **kw)
        return
    with warnings.catch_warnings():  # columns where every seed is missing stay NaN (a gap in the line)
        warnings.simplefilter("ignore", RuntimeWarning)
        mean = np.nanmean(arr, axis=0)
        sd = np.nanstd(arr, axis=0, ddof=1) if n > 1 else None
    marker = "o" if len(x) <= 40 else None
    (line,) = ax.plot(x, mean, marker=marker, markersize=3, label=label, **kw)
    if sd is not None:
        sd = np.nan_to_num(sd)
        ax.fill_between(x, mean - sd, mean + sd, color=line.get_color(), alpha=0.2, linewidth=0)


def save(fig, path: Path) -> Path:  # noqa: ANN001
    """Lay out, save atomically as PNG and close the figure; return the path."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    atomic_savefig(fig, path)
    plt.close(fig)
    return path


def experiment_markdown(results: dict[str, Any], exp: Any = None, *, figure_dir: str = "") -> str:
    """Return the Markdown section of one experiment's results (figures linked relative to ``figure_dir``)."""
    from . import get_experiment

    exp = exp or get_experiment(results["experiment"])
    v = results["verdict"]
    seeds = results["seeds"]
    per_seed = ", ".join(f"{exp.seed_word} {k}: {'yes' if ok else 'no'}" for k, ok in v["per_seed"].items())
    prefix = f"{figure_dir.rstrip('/')}/" if figure_dir else ""
    env = results.get("environment", {})
    lines = [
        f"## {results['experiment']}: {results['title']}",
        "",
        f"**Claim.** {results['claim']}  ",
        f"**Source.** {results['source']}",
        "",
        f"**Protocol** ({results['budget_name']} budget, {len(seeds)} {exp.seed_word}s). {results['protocol']}",
        "",
    ]
    if results.get("notes"):
        lines += [f"**Deviations from the paper.** {results['notes']}", ""]
    lines += [
        f"**Rule.** {results['rule']}",
        "",
        f"**Verdict: {v['outcome']}.** {v['reason']} (claim held per {exp.seed_word}: {per_seed})",
        "",
        exp.table(results),
        "",
    ]
    for name in results.get("figures", []):
        lines += [f"![{name}]({prefix}{name})", ""]
    lines.append(
        f"Measured time: {results['seconds']:.0f} s of work (torch {env.get('torch', '?')}, "
        f"{env.get('torch_threads', '?')} threads, {env.get('processor', '?')})."
    )
    return "\n".join(lines) + "\n"


def assemble_report(dirs: Sequence[str | Path], *, relative_to: str | Path | None = None) -> str:
    """Return one Markdown document: a verdict table, then one section per experiment directory."""
    import os

    sections, rows = [], []
    for d in dirs:
        d = Path(d)
        path = d / "results.json"
        if not path.is_file():
            raise ValueError(
                f"{d} has no results.json: expected the --out directory of a finished `cnnlineage experiment run`"
            )
        results = json.loads(path.read_text())
        fig_dir = os.path.relpath(d, relative_to) if relative_to is not None else str(d)
        sections.append(experiment_markdown(results, figure_dir=fig_dir))
        rows.append(
            f"| `{results['experiment']}` | {results['verdict']['outcome']} | {results.get('headline', '')} | "
            f"{results['budget_name']} | {len(results['seeds'])} | {results['seconds']:.0f} s |"
        )
    head = [
        "# cnnlineage experiments",
        "",
        "| experiment | verdict | key numbers | budget | seeds | time |",
        "|---|---|---|---|---:|---:|",
        *rows,
        "",
    ]
    return "\n".join(head) + "\n" + "\n".join(sections)
