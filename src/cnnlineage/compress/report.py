"""What compression cost and bought: held-out top-1, file size and batch-1 latency, side by side.

Every artifact is scored on the held-out split of the first one's dataset, in the same
process. Latency is batch 1 on the CPU, all candidates timed *interleaved* (round-robin, so a
change in machine load hits them alike) and reported as the median over rounds, with the
ratio to the first (the fp32 baseline). Sizes are the bytes of what one would ship: the fp32
weights as a state_dict file, the int8 program (.pt2 or .onnx) as written.
"""

from __future__ import annotations

import io
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from ..common import atomic_savefig, format_table
from ._data import load_checkpoint_data
from .quantize import load_quantized

__all__ = ["ReportRow", "build_report", "measure_latency", "plot_report", "rows_to_table", "state_dict_bytes"]


@dataclass
class ReportRow:
    label: str
    kind: str  # fp32, int8 (pt2e), int8 (onnxruntime), pruned, student, ...
    top1: float
    size_bytes: int
    latency_ms: float = float("nan")
    weight_bytes: int = 0  # the tensors alone, without a file format's graph or metadata
    params: int = 0
    path: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def state_dict_bytes(model: torch.nn.Module) -> int:
    """Return the bytes of ``torch.save(model.state_dict())``: the fp32 weights one would ship."""
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    return buf.tell()


def measure_latency(
    candidates: dict[str, Callable[[torch.Tensor], Any]],
    x: torch.Tensor,
    *,
    rounds: int = 30,
    inner: int = 5,
    warmup: int = 3,
) -> dict[str, float]:
    """Return {name: median milliseconds per call}, all candidates timed interleaved round by round."""
    samples: dict[str, list[float]] = {k: [] for k in candidates}
    with torch.no_grad():
        for fn in candidates.values():
            for _ in range(warmup):
                fn(x)
        for _ in range(rounds):
            for name, fn in candidates.items():
                t = time.perf_counter()
                for _ in range(inner):
                    fn(x)
                samples[name].append((time.perf_counter() - t) / inner * 1e3)
    return {k: statistics.median(v) for k, v in samples.items()}


def _kind(path: Path, meta: dict[str, Any]) -> str:
    cfg = meta.get("config", {})
    if cfg.get("model", {}).get("pruned"):
        return "pruned"
    if cfg.get("distill", {}).get("teacher"):
        return "distilled"
    return "fp32"


def build_report(
    items: list[tuple[str, str]],
    *,
    rounds: int = 30,
    compile_fp32: bool = True,
    threads: int = 1,
    test_subset: int = 0,
    log: Callable[[str], None] = lambda s: None,
) -> list[ReportRow]:
    """Return one row per (label, path): a checkpoint or a quantized directory, scored on the first's held-out split.

    With ``compile_fp32`` the first (fp32) model is also timed compiled by inductor, the
    fair baseline for an int8 program that inductor compiles.
    """
    if not items:
        raise ValueError("give at least one checkpoint or quantized directory")
    torch.set_num_threads(threads)
    rows: list[ReportRow] = []
    fns: dict[str, Callable] = {}
    base = None
    for label, p in items:
        path = Path(p)
        log(f"scoring {label} ({path})")
        if path.is_dir():
            q = load_quantized(path, threads=threads)  # ONNX Runtime gets the same thread count as torch
            data = base or load_checkpoint_data(q.info["checkpoint"], test_subset=test_subset)
            size = (path / q.info["file"]).stat().st_size
            top1 = data.evaluate(q)["top1"]
            wb = int(q.info.get("weight_bytes", 0))
            rows.append(ReportRow(label, f"int8 ({q.method})", top1, size, path=str(path), weight_bytes=wb))
            fns[label] = q
        else:
            data = load_checkpoint_data(path, test_subset=test_subset)
            m = data.model
            top1 = data.evaluate(m)["top1"]
            params = sum(t.numel() for t in m.parameters())
            wb = sum(t.numel() * t.element_size() for t in m.state_dict().values())
            rows.append(
                ReportRow(
                    label,
                    _kind(path, data.meta),
                    top1,
                    state_dict_bytes(m),
                    params=params,
                    path=str(path),
                    weight_bytes=wb,
                )
            )
            fns[label] = m
            if base is None and compile_fp32:
                from .quantize import _compile

                compiled = _compile(m)
                fns[f"{label} (inductor)"] = compiled
                rows.append(
                    ReportRow(
                        f"{label} (inductor)",
                        "fp32 compiled",
                        top1,
                        rows[-1].size_bytes,
                        params=params,
                        path=str(path),
                        weight_bytes=wb,
                    )
                )
        base = base or data
    x = base.example(1)
    log(f"timing {len(fns)} models at batch 1, {rounds} interleaved rounds, {threads} thread(s)")
    lat = measure_latency(fns, x, rounds=rounds)
    for r in rows:
        r.latency_ms = lat[r.label]
    return rows


def rows_to_table(rows: list[ReportRow]) -> str:
    """Return the report as a text table with top-1 change, size and speed ratios against the first row."""
    b = rows[0]
    out = [
        (
            r.label,
            r.kind,
            f"{r.top1:.2f}",
            f"{r.top1 - b.top1:+.2f}",
            f"{r.size_bytes / 1024:.1f}",
            f"{b.size_bytes / r.size_bytes:.2f}x",
            f"{r.weight_bytes / 1024:.1f}",
            f"{r.latency_ms:.3f}",
            f"{b.latency_ms / r.latency_ms:.2f}x",
        )
        for r in rows
    ]
    headers = [
        "model",
        "kind",
        "top-1 %",
        "Δ top-1",
        "file KiB",
        "smaller",
        "weights KiB",
        "latency ms",
        "faster",
    ]
    return format_table(out, headers, "llrrrrrrr")


def plot_report(rows: list[ReportRow], path: str | Path, *, title: str = "") -> Path:
    """Plot held-out top-1 against batch-1 latency, marker area proportional to file size; return the PNG path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    biggest = max(r.size_bytes for r in rows)
    for i, r in enumerate(rows):
        ax.scatter(r.latency_ms, r.top1, s=40 + 600 * r.size_bytes / biggest, alpha=0.6)
        ax.annotate(
            f"{r.label}\n{r.size_bytes / 1024:.0f} KiB",
            (r.latency_ms, r.top1),
            fontsize=7,
            xytext=(6, -14 + 12 * (i % 4)),
            textcoords="offset points",
        )  # staggered: close points
    ax.set_xlabel("batch-1 latency, ms (median, CPU)")
    ax.set_ylabel("held-out top-1 %")
    ax.set_title(title or "accuracy vs latency (marker area: file size)", pad=18)
    ax.grid(alpha=0.3)
    atomic_savefig(fig, path)
    plt.close(fig)
    return Path(path)
