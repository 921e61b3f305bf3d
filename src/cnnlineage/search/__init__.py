"""Architecture search at laptop scale: DARTS, random search, RegNet design spaces, EfficientNet's compound grid.

``run_search(method, ...)`` runs one method into an output directory and writes
``results.json`` (every raw number), PNG figures and ``report.md``. Every method is
resumable: rerunning the same command continues from ``search_state.pt``. For ``darts``
and ``random`` the chosen genotype is then trained from scratch by the trainer
(``cnnlineage.train``) as the registered ``darts`` model into ``<out>/retrain`` and
evaluated on the held-out split, which the search itself never sees.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..common import atomic_write_text
from ..models.darts import Genotype

__all__ = ["METHODS", "run_search"]

METHODS = {
    "darts": "DARTS (Liu et al. 2019): differentiable cell search, --order 1 or 2, optional --cost macs|latency",
    "random": "random search over the same cell space (Li & Talwalkar 2019), the honest baseline",
    "design-space": "sample AnyNetX and RegNetX populations, compare their error EDFs, fit the width rule",
    "compound": "EfficientNet step 1: grid-search α, β, γ under α·β²·γ² ≈ 2, then scale vs single axes",
}

# Search-time sizes: the paper's (8 cells, 16 channels, 32x32) shrunk to CPU minutes.
_SEARCH_SIZE = 16  # images are searched at most 16x16 (USPS digits are 16x16)
_QUICK_NET = dict(channels=4, layers=3)  # --quick: a network that trains in seconds


def _retrain(
    genotype: Genotype,
    data: str,
    out: Path,
    *,
    epochs: int,
    seed: int,
    quick: bool,
    log: Callable[[str], None],
) -> dict[str, Any]:
    from ..data import DATASET_INFO
    from ..train import train
    from ..train.config import config_from_dict

    run_dir = out / "retrain"
    native = DATASET_INFO[data].size[0] if data in DATASET_INFO else 0
    side = (
        (16 if quick else native - native % 4) if native >= 8 else 0
    )  # the data's own size, a multiple of 4
    if (run_dir / "summary.json").exists():
        return json.loads((run_dir / "summary.json").read_text())
    cfg = config_from_dict(
        {
            "model": {
                "name": "darts",
                "kwargs": {"genotype": genotype.to_json(), **(_QUICK_NET if quick else {})},
            },
            "data": {
                "name": data,
                "batch_size": 64,
                "image_size": side,
                **({"train_subset": 256, "test_subset": 200} if quick else {}),
            },
            "optim": {"name": "sgd", "lr": 0.05, "momentum": 0.9, "weight_decay": 3e-4, "nesterov": True},
            "schedule": {"name": "cosine", "warmup_epochs": 0.5 if epochs > 2 else 0.0},
            "run": {"out_dir": str(run_dir), "progress": "none", "tensorboard": False},
            "epochs": epochs,
            "seed": seed,
        }
    )
    resume = (run_dir / "checkpoints" / "last.pt").exists()
    log(f"retraining the derived network from scratch with the trainer -> {run_dir}")
    return train(cfg, resume=resume, log=log)


def run_search(
    method: str,
    *,
    out_dir: str | Path,
    data: str = "mnist5k",
    budget_minutes: float = 0.0,
    seed: int = 0,
    quick: bool = False,
    order: int = 1,
    cost: str = "none",
    cost_weight: float = 0.0,
    epochs: int | None = None,
    retrain_epochs: int | None = None,
    samples: int = 32,
    candidates: int = 8,
    log: Callable[[str], None] = print,
    progress: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Return the results of search ``method`` (also written to ``out_dir``/results.json with figures and report.md)."""
    if method not in METHODS:
        close = difflib.get_close_matches(method, list(METHODS), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ValueError(f"unknown search method {method!r}{hint}; expected one of {', '.join(METHODS)}")
    if budget_minutes < 0 or budget_minutes != budget_minutes:
        raise ValueError(f"--budget is in minutes and must be >= 0 (0 = no limit), got {budget_minutes}")
    if cost not in ("none", "macs", "latency"):
        raise ValueError(f"--cost must be none, macs or latency, got {cost!r}")
    if cost != "none" and method != "darts":
        raise ValueError("--cost (hardware-aware search) applies to darts only")
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file; give a directory for the search's outputs")
    out.mkdir(parents=True, exist_ok=True)
    from . import plots
    from .common import load_search_data

    limit = 256 if quick else 0
    result: dict[str, Any]
    if method in ("darts", "random"):
        from ..data import DATASET_INFO

        native = DATASET_INFO[data].size if data in DATASET_INFO else (0, 0)
        side = min(_SEARCH_SIZE, native[0]) if native[0] else _SEARCH_SIZE
        side -= side % 4  # two reductions with even sides
        sdata = load_search_data(data, size=(side, side), seed=seed, limit=limit)
        log(f"search data: {sdata.describe()}")
        net = _QUICK_NET if quick else dict(channels=8, layers=5)
        if method == "darts":
            from .darts import run_darts

            result = run_darts(
                sdata, str(out), order=order, epochs=epochs or (1 if quick else 20), budget_minutes=budget_minutes,
                seed=seed, cost=cost, cost_weight=cost_weight, progress=progress, batch_size=32 if quick else 64, **net,
            )  # fmt: skip
            plots.plot_alphas(result["history"], out / "alphas.png")
        else:
            from .random_search import run_random_search

            result = run_random_search(
                sdata, str(out), budget_minutes=budget_minutes, max_candidates=2 if quick else candidates,
                candidate_epochs=1.0 if quick else float(epochs or 2), seed=seed, progress=progress, **net,
            )  # fmt: skip
            plots.plot_random(result["candidates"], out / "candidates.png")
        genotype = Genotype.from_dict(result["genotype"])
        atomic_write_text(out / "genotype.json", json.dumps(genotype.to_dict(), indent=2) + "\n")
        plots.plot_genotype(genotype, out / "cells.png", title=f"{result['method']} on {data}")
        summary = _retrain(
            genotype,
            data,
            out,
            epochs=retrain_epochs or (1 if quick else 10),
            seed=seed,
            quick=quick,
            log=log,
        )
        result["retrain"] = {
            k: summary.get(k)
            for k in ("final_top1", "best_top1", "epochs", "wall_seconds", "params")
            if k in summary
        }
        from ..registry import create_model

        info = DATASET_INFO.get(data)
        model = create_model("darts", genotype=genotype, num_classes=info.num_classes if info else 10,
                             in_chans=info.in_chans if info else 3, **(_QUICK_NET if quick else {}))  # fmt: skip
        result["retrain"]["params"] = sum(p.numel() for p in model.parameters())
        result["train_command"] = (
            f"cnnlineage train darts --data {data} --set model.kwargs.genotype={out / 'genotype.json'}"
        )
    elif method == "design-space":
        from .design_space import PROXY, run_design_space

        side = PROXY["size"]
        sdata = load_search_data(data, size=(side, side), seed=seed, limit=limit or PROXY["limit"])
        log(f"search data: {sdata.describe()}")
        result = run_design_space(
            sdata, str(out), samples=2 if quick else samples, epochs=0.25 if quick else float(epochs or PROXY["epochs"]),
            budget_minutes=budget_minutes, seed=seed, progress=progress,
        )  # fmt: skip
        plots.plot_edf(result["models"], out / "edf.png", data=data)
    else:
        from .compound import run_compound

        result = run_compound(
            data, str(out), phis=(1,) if quick else (1, 2), epochs=0.25 if quick else float(epochs or 2),
            max_grid=2 if quick else 12, budget_minutes=budget_minutes, limit=limit or 4000, seed=seed,
            progress=progress,
        )  # fmt: skip
        if result.get("curves"):
            plots.plot_compound(result, out / "scaling.png", data=data)
    result.update(data_set=data, seed=seed, quick=quick, budget_minutes=budget_minutes)
    result["verdict"] = verdict(result)
    atomic_write_text(out / "results.json", json.dumps(result, indent=1, default=float) + "\n")
    atomic_write_text(out / "report.md", report(result, out))
    return result


def verdict(result: dict[str, Any]) -> str:
    """Return the one-sentence finding of a search, computed from its numbers."""
    m = result["method"]
    if m == "design-space":
        s = result["summary"]
        a, r = s["anynetx"], s["regnetx"]
        better = "lower" if r["median_error"] < a["median_error"] else "higher"
        return (
            f"RegNetX's median error {r['median_error']:.1f}% is {better} than AnyNetX's {a['median_error']:.1f}% "
            f"(n = {r['n']} and {a['n']}; best {r['min_error']:.1f}% vs {a['min_error']:.1f}%)"
        )
    if m == "compound":
        if not result.get("complete"):
            return "incomplete: the budget ran out before the scaling curves were measured"
        last = {k: v[-1] for k, v in result["curves"].items()}
        best_single = max(("depth", "width", "resolution"), key=lambda k: last[k]["val_top1"])
        c, s = last["compound"], last[best_single]
        word = "beats" if c["val_top1"] > s["val_top1"] else "does not beat"
        return (
            f"at φ = {c['phi']}, compound scaling ({c['val_top1']:.1f}%, {c['flops'] / 1e6:.2f} MFLOPs) {word} the best "
            f"single axis, {best_single} ({s['val_top1']:.1f}%, {s['flops'] / 1e6:.2f} MFLOPs)"
        )
    rt = result.get("retrain", {})
    return f"derived network: {rt.get('params', 0):,} parameters, held-out top-1 {rt.get('final_top1', float('nan')):.2f}%"


def report(result: dict[str, Any], out: Path) -> str:
    """Return the Markdown report of a search (figures linked relative to ``out``)."""
    lines = [f"# Search: {result['method']} on {result['data_set']}", "", f"- data: {result['data']}",
             f"- search time: {result['search_seconds'] / 60:.1f} min (seed {result['seed']}"
             + (", quick mode" if result["quick"] else "") + ")",
             f"- finding: {result['verdict']}", ""]  # fmt: skip
    figures = [
        f
        for f in ("cells.png", "alphas.png", "candidates.png", "edf.png", "scaling.png")
        if (out / f).exists()
    ]
    if "genotype" in result:
        lines += ["Train the derived network again with:", "", f"    {result['train_command']}", ""]
    if "width_fit_top_anynetx" in result:
        f = result["width_fit_top_anynetx"]
        lines += [f"Linear width rule fitted to the best quarter of AnyNetX: w0 = {f['w0']:.1f}, wa = {f['wa']:.1f}, "
                  f"wm = {f['wm']:.2f} (e_fit {f['e_fit']:.3f})", ""]  # fmt: skip
    if "chosen" in result:
        c = result["chosen"]
        lines += [f"Chosen bases: α = {c['alpha']}, β = {c['beta']}, γ = {c['gamma']} (α·β²·γ² = {c['product']:.2f}; "
                  "the paper found 1.2, 1.1, 1.15 on ImageNet)", ""]  # fmt: skip
    lines += [f"![{f}]({f})" for f in figures]
    return "\n".join(lines) + "\n"
