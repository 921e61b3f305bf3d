"""EfficientNet's compound-coefficient search at laptop scale (Tan & Le, ICML 2019, arXiv:1905.11946, §3.3).

Step 1: fix φ = 1 and grid-search the depth, width and resolution bases α, β, γ ≥ 1
under α·β²·γ² ≈ 2 (so one step of φ roughly doubles the FLOPs); the paper found
α = 1.2, β = 1.1, γ = 1.15 for B0. Step 2: scale the base by (α^φ, β^φ, γ^φ) and compare
with scaling one axis alone to the same FLOPs (Fig. 3 and 8 of the paper).

The base network is EfficientNet-B0's architecture (``cnnlineage.models.efficientnet``,
MBConv stages of Table 1) at a quarter of its width and depth and at 20x20 pixels, so
that resolution can grow to 32x32 — the native size of shapes10 — without inventing
detail by upsampling. FLOPs come from cnnlineage's analyzer. Every candidate is trained
with the same short proxy recipe and ranked on the validation half of the training split.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import torch

from ..analysis import profile
from ..models.efficientnet import EfficientNet, EfficientNetConfig
from .common import SearchData, SearchState, load_search_data, proxy_train

__all__ = ["BASE", "base_config", "compound_grid", "run_compound", "scaled_config"]

BASE = dict(width=0.25, depth=0.25, resolution=20)  # the small base network (φ = 0)


def base_config() -> EfficientNetConfig:
    """Return the base network's config: B0's stages at width 0.25, depth 0.25, 20x20 input."""
    return EfficientNetConfig(
        width=BASE["width"], depth=BASE["depth"], resolution=BASE["resolution"], dropout=0.0
    )


def scaled_config(depth: float, width: float, resolution: float) -> EfficientNetConfig:
    """Return the base config with depth, width and resolution multiplied (resolution rounded to pixels)."""
    b = base_config()
    return replace(
        b,
        depth=b.depth * depth,
        width=b.width * width,
        resolution=max(8, int(round(b.resolution * resolution))),
    )


def compound_grid(
    *, step: float = 0.05, lo: float = 1.0, hi: float = 1.4, tol: float = 0.1
) -> list[tuple[float, float, float]]:
    """Return every (α, β, γ) on a grid of ``step`` in [lo, hi] with |α·β²·γ² − 2| ≤ ``tol``."""
    n = int(round((hi - lo) / step))
    axis = [round(lo + i * step, 4) for i in range(n + 1)]
    return [
        (a, b, g) for a, b, g in itertools.product(axis, axis, axis) if abs(a * b * b * g * g - 2.0) <= tol
    ]


def _flops(cfg: EfficientNetConfig, num_classes: int, in_chans: int) -> int:
    with torch.device("meta"):
        model = EfficientNet(config=cfg, num_classes=num_classes, in_chans=in_chans, drop_path_rate=0.0)
    return profile(model, (in_chans, cfg.resolution, cfg.resolution)).total_flops


def run_compound(
    data_name: str,
    out_dir: str,
    *,
    phis: tuple[int, ...] = (1, 2),
    epochs: float = 2.0,
    max_grid: int = 12,
    budget_minutes: float = 0.0,
    limit: int = 4000,
    seed: int = 0,
    progress: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Return the record of the compound search: the grid (step 1), the chosen (α, β, γ), and the scaling curves (step 2).

    ``max_grid`` keeps that many grid points, spread evenly over the grid (all when 0).
    """
    # What decides each run's result; --budget may change on resume (to extend a search).
    args = dict(data=data_name, phis=list(phis), epochs=epochs, max_grid=max_grid, limit=limit, seed=seed)
    store = SearchState(out_dir, method="compound", args=args)
    state = store.load() or {"runs": {}, "seconds": 0.0}
    cache: dict[int, SearchData] = {}

    def data_at(r: int) -> SearchData:
        if r not in cache:
            cache[r] = load_search_data(data_name, size=(r, r), seed=seed, limit=limit)
        return cache[r]

    def evaluate(key: str, d: float, w: float, r: float, **extra: Any) -> dict[str, Any]:
        if key in state["runs"]:
            return state["runs"][key]
        n_done = len(state["runs"])
        if budget_minutes > 0 and n_done and state["seconds"] * (n_done + 1) / n_done > budget_minutes * 60:
            raise TimeoutError(key)
        cfg = scaled_config(d, w, r)
        data = data_at(cfg.resolution)
        torch.manual_seed(seed)
        model = EfficientNet(
            config=cfg, num_classes=data.num_classes, in_chans=data.in_chans, drop_path_rate=0.0
        )
        t = time.perf_counter()
        res = proxy_train(model, data, epochs=epochs, seed=seed, lr=0.1)
        seconds = time.perf_counter() - t
        run = {"depth": d, "width": w, "resolution": r, "pixels": cfg.resolution,
               "flops": _flops(cfg, data.num_classes, data.in_chans), "val_top1": res["val_top1"],
               "seconds": seconds, **extra}  # fmt: skip
        state["runs"][key] = run
        state["seconds"] += seconds
        store.save(state)
        if progress:
            progress({"run": key, "val_top1": res["val_top1"], "done": len(state["runs"])})
        return run

    grid = compound_grid()
    if max_grid and len(grid) > max_grid:
        grid = [grid[round(i * (len(grid) - 1) / (max_grid - 1))] for i in range(max_grid)]
    out: dict[str, Any] = {"method": "compound", "grid": [], "curves": {}, "base": BASE}
    try:
        base = evaluate("base", 1.0, 1.0, 1.0, phi=0)
        for a, b, g in grid:  # step 1: φ = 1
            out["grid"].append(evaluate(f"grid:{a}:{b}:{g}", a, b, g, alpha=a, beta=b, gamma=g, phi=1))
        best = max(out["grid"], key=lambda r: r["val_top1"])
        alpha, beta, gamma = best["alpha"], best["beta"], best["gamma"]
        out["chosen"] = {"alpha": alpha, "beta": beta, "gamma": gamma, "product": alpha * beta**2 * gamma**2}
        curves: dict[str, list[dict[str, Any]]] = {
            "compound": [base],
            "depth": [base],
            "width": [base],
            "resolution": [base],
        }
        for phi in phis:  # step 2: equal FLOP targets, ~2^φ x base
            curves["compound"].append(evaluate(f"compound:{phi}", alpha**phi, beta**phi, gamma**phi, phi=phi))
            curves["depth"].append(evaluate(f"depth:{phi}", 2.0**phi, 1.0, 1.0, phi=phi))
            curves["width"].append(evaluate(f"width:{phi}", 1.0, 2.0 ** (phi / 2), 1.0, phi=phi))
            curves["resolution"].append(evaluate(f"resolution:{phi}", 1.0, 1.0, 2.0 ** (phi / 2), phi=phi))
        out["curves"] = curves
        out["complete"] = True
    except TimeoutError:
        out["complete"] = False
    if not out["grid"]:
        raise ValueError("the budget ran out before one grid point was trained; raise --budget")
    out["search_seconds"] = state["seconds"]
    out["data"] = data_at(BASE["resolution"]).describe()
    return out
