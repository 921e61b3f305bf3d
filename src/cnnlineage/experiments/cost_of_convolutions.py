"""``cost-of-convolutions``: cheaper convolutions cut MACs 8-9×; does the CPU's measured time fall as much?

A 3×3 convolution C→C costs 9·C² MACs per position. ResNet's bottleneck (He et al. 2015,
Fig. 5: 1×1 to C/4, 3×3 at C/4, 1×1 back to C) costs 17/16·C²; a depthwise-separable
convolution (Howard et al. 2017, §3.1) 9·C + C²; a grouped convolution with g groups
(Krizhevsky 2012; Xie et al. 2017, ResNeXt) 9·C²/g. The analytic MACs come from the
analyzer (:func:`cnnlineage.analysis.profile`); the latencies are measured here, on this
machine, as medians of repeated forward passes interleaved with the standard convolution's in
the same process. No training: the trainer is not involved.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from .base import Experiment, Unit, by_condition, seeds_of, verdict_from_seeds
from .report import fmt_ms, new_figure, save
from .report import mean_of as _m

DESIGNS = ("standard", "bottleneck", "depthwise_separable", "grouped")
LABELS = {
    "standard": "3x3 conv",
    "bottleneck": "1x1-3x3-1x1 bottleneck (C/4)",
    "depthwise_separable": "depthwise 3x3 + pointwise 1x1",
    "grouped": "grouped 3x3",
}


def build_design(name: str, channels: int, groups: int) -> nn.Module:
    """Return the C→C design ``name`` (no bias, no norm or activation: convolutions only)."""
    c, m = channels, channels // 4
    if name == "standard":
        return nn.Conv2d(c, c, 3, padding=1, bias=False)
    if name == "bottleneck":  # He et al. 2015, Fig. 5 right: 256-d → 64 → 64 → 256
        return nn.Sequential(
            nn.Conv2d(c, m, 1, bias=False),
            nn.Conv2d(m, m, 3, padding=1, bias=False),
            nn.Conv2d(m, c, 1, bias=False),
        )
    if name == "depthwise_separable":  # Howard et al. 2017, Fig. 2
        return nn.Sequential(
            nn.Conv2d(c, c, 3, padding=1, groups=c, bias=False), nn.Conv2d(c, c, 1, bias=False)
        )
    if name == "grouped":
        return nn.Conv2d(c, c, 3, padding=1, groups=groups, bias=False)
    raise ValueError(f"unknown design {name!r}; expected one of {', '.join(DESIGNS)}")


def _time_round(b: dict[str, Any], seed: int) -> dict[str, Any]:
    from ..analysis import profile

    torch.manual_seed(seed)
    c, s = b["channels"], b["size"]
    mods = {d: build_design(d, c, b["groups"]).eval() for d in DESIGNS}
    macs = {d: profile(mods[d], (c, s, s)).total_macs for d in DESIGNS}
    params = {d: sum(p.numel() for p in mods[d].parameters()) for d in DESIGNS}
    x = torch.randn(b["batch"], c, s, s)
    times: dict[str, list[float]] = {d: [] for d in DESIGNS}
    with torch.inference_mode():
        for d in DESIGNS:  # warm-up: allocator and kernel selection
            mods[d](x)
        for r in range(b["repeats"]):
            order = (
                DESIGNS[r % len(DESIGNS) :] + DESIGNS[: r % len(DESIGNS)]
            )  # rotate: no design always first
            for d in order:
                t0 = time.perf_counter()
                mods[d](x)
                times[d].append(time.perf_counter() - t0)
    median_ms = {d: 1000 * statistics.median(times[d]) for d in DESIGNS}
    return {
        "macs_per_image": macs,
        "params": params,
        "median_ms": median_ms,
        "macs_ratio": {d: macs["standard"] / macs[d] for d in DESIGNS},
        "time_ratio": {d: median_ms["standard"] / median_ms[d] for d in DESIGNS},
        "threads": torch.get_num_threads(),
    }


def plan(budget: dict[str, Any], seeds: list[int]) -> list[Unit]:
    return [Unit(f"round-s{s}", s, {}, lambda ctx, s=s: _time_round(budget, s)) for s in seeds]


def verdict(results: dict[str, Any]):  # noqa: ANN201
    c, b = by_condition(results)["round"], results["budget"]
    per_seed, parts = {}, []
    cheap = DESIGNS[1:]
    for s in seeds_of(results):
        per_seed[s] = all(c[s]["time_ratio"][d] >= b["claimed"] for d in cheap)
        parts.append(
            f"round {s}: "
            + ", ".join(
                f"{d} {c[s]['macs_ratio'][d]:.1f}x MACs / {c[s]['time_ratio'][d]:.1f}x time" for d in cheap
            )
        )
    return verdict_from_seeds(
        per_seed, "Fewer MACs vs measured speed-up against the 3x3 conv: " + "; ".join(parts) + "."
    )


def figures(results: dict[str, Any], out: Path) -> list[Path]:
    import numpy as np

    c, b = by_condition(results)["round"], results["budget"]
    seeds = seeds_of(results)
    cheap = DESIGNS[1:]
    fig, axes = new_figure(1, width=7.0)
    ax = axes[0]
    x = np.arange(len(cheap))
    mac = [c[seeds[0]]["macs_ratio"][d] for d in cheap]
    tr = np.array([[c[s]["time_ratio"][d] for d in cheap] for s in seeds])
    ax.bar(x - 0.2, mac, 0.4, label="analytic MACs ratio (exact)", color="#4c72b0")
    err = tr.std(axis=0, ddof=1) if len(seeds) > 1 else None
    ax.bar(x + 0.2, tr.mean(axis=0), 0.4, yerr=err, capsize=4, color="#dd8452",
           label=f"measured CPU time ratio (mean ± sd of {len(seeds)} rounds)")  # fmt: skip
    ax.axhline(1, color="grey", linewidth=1)
    ax.set_xticks(x, [LABELS[d] for d in cheap], fontsize=8)
    ax.set(
        ylabel="times cheaper than the 3x3 conv (x)",
        xlabel=f"design, C={b['channels']}, {b['size']}x{b['size']} map",
    )
    ax.set_title("Analytic MACs vs measured latency")
    ax.legend(loc="upper right", fontsize=8)
    ax.set_ylim(0, max(max(mac), float(tr.max())) * 1.3)
    return [save(fig, out / "cost_of_convolutions.png")]


def table(results: dict[str, Any]) -> str:
    c = by_condition(results)["round"]
    seeds = seeds_of(results)
    rows = [
        "| design | params | MACs / image | MACs ratio | median time (ms) | time ratio |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for d in DESIGNS:
        r0 = c[seeds[0]]
        rows.append(
            f"| {LABELS[d]} | {r0['params'][d]:,} | {r0['macs_per_image'][d]:,} | {r0['macs_ratio'][d]:.2f}x | "
            f"{fmt_ms([c[s]['median_ms'][d] for s in seeds], 2)} | {fmt_ms([c[s]['time_ratio'][d] for s in seeds], 2)}x |"
        )
    return "\n".join(rows)


def headline(results: dict[str, Any]) -> str:
    c, ss = by_condition(results)["round"], seeds_of(results)
    cheap = DESIGNS[1:]
    macs = "/".join(f"{c[ss[0]]['macs_ratio'][d]:.1f}" for d in cheap)
    time_ = "/".join(f"{_m(c[s]['time_ratio'][d] for s in ss):.1f}" for d in cheap)
    return f"bottleneck/depthwise-sep./grouped: {macs}x fewer MACs, {time_}x faster on this CPU"


EXPERIMENT = Experiment(
    name="cost-of-convolutions",
    title="1x1 bottlenecks, depthwise-separable and grouped convolutions: MACs vs measured time",
    claim="Replacing a 3x3 convolution by a 1x1 bottleneck, a depthwise-separable or a grouped convolution cuts "
    "its cost 8-10x.",
    source="He et al. 2015 (arXiv:1512.03385), Fig. 5; Howard et al. 2017 (MobileNets, arXiv:1704.04861), §3.1 "
    "('8 to 9 times less computation'); Xie et al. 2017 (ResNeXt), §3.3.",
    protocol="C={channels} -> C on a {size}x{size} map, batch {batch}: 3x3 conv; 1x1 (C/4) - 3x3 (C/4) - 1x1 (C) "
    "bottleneck; depthwise 3x3 + pointwise 1x1; 3x3 with {groups} groups. MACs from the analyzer; forward "
    "latency on this CPU (inference mode, float32, torch's threads), median of {repeats} interleaved repeats "
    "per round, one round per seed.",
    rule="Per round: the claim (as a statement about cost on this machine) holds if every cheaper design runs at "
    "least {claimed}x faster than the 3x3 convolution, the lower end of the claimed 8-10x.".replace(
        "{claimed}", "8"
    ),
    budgets={
        "full": {"channels": 256, "size": 14, "batch": 8, "groups": 8, "repeats": 50, "claimed": 8.0},
        "quick": {"channels": 64, "size": 14, "batch": 2, "groups": 8, "repeats": 5, "claimed": 8.0},
    },
    plan=plan,
    verdict=verdict,
    figures=figures,
    table=table,
    headline=headline,
    seed_word="timing round",
    notes="Latency is measured on a shared machine (other processes compete for the cores); ratios are taken "
    "within one process, interleaved, which cancels much of that noise.",
)
