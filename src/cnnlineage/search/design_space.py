"""RegNet's design-space methodology at laptop scale (Radosavovic et al., CVPR 2020, arXiv:2003.13678).

Instead of the best single network, compare *populations*: sample N models from a design
space, train each briefly, and plot the empirical distribution function of their errors,
F(e) = fraction of models with error < e (§2.2, Fig. 2). A space whose EDF lies higher
and to the left is the better space. Two spaces are compared here:

- AnyNetX (§3.1): four free stages, each with depth d_i, width w_i, bottleneck ratio
  b_i in {1, 2, 4} and group width g_i — the unconstrained space;
- RegNetX (§3.3): six numbers (d, w0, wa, wm, g; b = 1) whose stage widths follow the
  quantised linear rule of ``cnnlineage.models.regnet``.

The ranges are the paper's shrunk to small images and minutes of CPU (stated in
``ANYNETX_RANGES``/``REGNETX_RANGES``); every model is trained by the same short proxy,
``PROXY`` (16x16 images, 312 SGD steps; why: see there). Then the paper's observation that good networks
have linearly growing widths is tested by fitting u_j = w0 + wa·j to the per-block widths
of the best AnyNetX models and w_m to their stage steps (§3.3, Fig. 8).
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from ..models.anynet import AnyNet
from ..models.regnet import RegNetParams, regnet_stages
from .common import SearchData, SearchState, proxy_train

__all__ = [
    "ANYNETX_RANGES",
    "PROXY",
    "REGNETX_RANGES",
    "edf",
    "fit_linear_widths",
    "run_design_space",
    "sample_anynetx",
    "sample_regnetx",
]

# Paper: d_i <= 16, w_i <= 1024 (multiples of 8), b_i in {1, 2, 4}, g_i in {1, 2, ..., 32}.
ANYNETX_RANGES = dict(depth=(1, 4), width=(8, 128), bottleneck=(1, 2, 4), group=(1, 2, 4, 8, 16))
# Paper: d < 64, w0 < 256, 0 < wa < 256, 1.5 < wm < 3, b = 1; here also at most 4 stages.
REGNETX_RANGES = dict(depth=(4, 12), w0=(8, 64), wa=(4.0, 32.0), wm=(1.5, 3.0), group=(1, 2, 4, 8, 16))


# The proxy training of every sampled model (the default of `search design-space`).
# shapes10 at 32x32 with 1 epoch of 2,000 images (31 steps of lr 0.05) left every sampled
# network at chance: these bottleneck networks need hundreds of SGD steps before their loss
# leaves ln 10 (ResNet-20, under the same proxy, is at 41% error after 200 steps). Images at
# 16x16 make a step about 3x cheaper (ResNet-20 still learns shapes10 at 16x16: 50% accuracy
# after 400 steps), so a model gets 312 steps (4 epochs of the 5,000-image search half) at
# the shipped shapes10 recipe's lr 0.1 after a short linear warm-up, and 2 x 32 models fit
# in 30 minutes on one core (measured: 25 min; docs/search.md).
PROXY = dict(size=16, limit=0, epochs=4.0, lr=0.1, warmup_steps=40)


def _log_uniform(rng: random.Random, lo: float, hi: float) -> float:
    return math.exp(rng.uniform(math.log(lo), math.log(hi)))


def sample_anynetx(rng: random.Random) -> list[list[float]]:
    """Return four AnyNetX stages [d, w, b, g] drawn from :data:`ANYNETX_RANGES` (g divides w / b)."""
    r = ANYNETX_RANGES
    stages = []
    for _ in range(4):
        d = rng.randint(*r["depth"])
        w = 8 * rng.randint(r["width"][0] // 8, r["width"][1] // 8)
        b = rng.choice([b for b in r["bottleneck"] if (w // b) * b == w and w // b >= 1])
        g = rng.choice([g for g in r["group"] if (w // b) % g == 0])
        stages.append([d, w, b, g])
    return stages


def sample_regnetx(rng: random.Random) -> tuple[dict[str, float], list[list[float]]]:
    """Return (the six RegNet numbers, the stages they generate), drawn from :data:`REGNETX_RANGES`.

    Draws that generate more than four stages are redrawn, as the paper keeps four.
    """
    r = REGNETX_RANGES
    while True:
        d = rng.randint(*r["depth"])
        w0 = 8 * rng.randint(r["w0"][0] // 8, r["w0"][1] // 8)
        wa = _log_uniform(rng, *r["wa"])
        wm = _log_uniform(rng, *r["wm"])
        g = rng.choice(r["group"])
        stages = regnet_stages(
            RegNetParams(depth=d, w0=w0, wa=wa, wm=wm, group_width=g), group_rounding="paper"
        )
        if len(stages) <= 4:
            params = dict(depth=d, w0=w0, wa=wa, wm=wm, group_width=g)
            return params, [[s.depth, s.width, 1, min(s.group_width, s.width)] for s in stages]


def edf(errors: list[float], grid: np.ndarray) -> np.ndarray:
    """Return F(e) = fraction of ``errors`` below each value of ``grid`` (the paper's Eq. 1)."""
    e = np.sort(np.asarray(errors, dtype=float))
    return np.searchsorted(e, grid, side="right") / max(1, len(e))


def fit_linear_widths(stage_lists: list[list[list[float]]]) -> dict[str, float]:
    """Return the least-squares w0, wa of u_j = w0 + wa·j over the per-block widths of the given networks.

    Also w_m: the median ratio between consecutive stage widths, and the mean squared
    error of the fit in log space (the paper's e_fit, §3.3).
    """
    js, ws, ratios = [], [], []
    for stages in stage_lists:
        blocks = [w for d, w, _, _ in stages for _ in range(int(d))]
        js += list(range(len(blocks)))
        ws += blocks
        ratios += [stages[i + 1][1] / stages[i][1] for i in range(len(stages) - 1)]
    if len(set(js)) < 2:
        raise ValueError("fitting the width rule needs networks of at least two blocks")
    wa, w0 = np.polyfit(np.asarray(js, float), np.asarray(ws, float), 1)
    pred = np.maximum(w0 + wa * np.asarray(js, float), 1.0)
    e_fit = float(np.mean((np.log(ws) - np.log(pred)) ** 2))
    return {
        "w0": float(w0),
        "wa": float(wa),
        "wm": float(np.median(ratios)) if ratios else float("nan"),
        "e_fit": e_fit,
    }


def run_design_space(
    data: SearchData,
    out_dir: str,
    *,
    samples: int = 32,
    epochs: float = PROXY["epochs"],
    lr: float = PROXY["lr"],
    warmup_steps: int = PROXY["warmup_steps"],
    budget_minutes: float = 0.0,
    seed: int = 0,
    progress: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Return the record of a design-space comparison: every sampled model's error per space, the EDFs' summary and the width fit.

    Models are sampled alternately from the two spaces, so a budget that runs out leaves
    both with (nearly) the same number; model ``i`` of a space depends only on (seed, i).
    """
    # What decides each model's result; --samples and --budget may change on resume (to extend a search).
    args = dict(
        data=data.name, n_search=len(data.y_search), size=list(data.size), epochs=epochs, lr=lr,
        warmup_steps=warmup_steps, seed=seed,
    )  # fmt: skip
    store = SearchState(out_dir, method="design-space", args=args)
    state = store.load() or {"models": {"anynetx": [], "regnetx": []}, "seconds": 0.0}
    models = state["models"]
    while min(len(models["anynetx"]), len(models["regnetx"])) < samples:
        space = "anynetx" if len(models["anynetx"]) <= len(models["regnetx"]) else "regnetx"
        i = len(models[space])
        n_done = len(models["anynetx"]) + len(models["regnetx"])
        if budget_minutes > 0 and n_done:
            if state["seconds"] + state["seconds"] / n_done > budget_minutes * 60:
                break
        s = seed * 1_000_003 + i * 2 + (space == "regnetx")
        rng = random.Random(s)
        params: dict[str, Any] = {}
        if space == "anynetx":
            stages = sample_anynetx(rng)
        else:
            params, stages = sample_regnetx(rng)
        torch.manual_seed(s)
        net = AnyNet(stages, num_classes=data.num_classes, in_chans=data.in_chans, stem_width=16)
        n_params = sum(p.numel() for p in net.parameters())
        t = time.perf_counter()
        r = proxy_train(net, data, epochs=epochs, seed=s, lr=lr, warmup_steps=warmup_steps)
        seconds = time.perf_counter() - t
        if budget_minutes > 0 and not n_done and seconds > budget_minutes * 60:
            raise ValueError(
                f"a budget of {budget_minutes:g} min is too small: one model takes {seconds:.0f} s here; "
                f"give --budget {seconds / 60 * 4:.1f} or more"
            )
        models[space].append(
            {
                "stages": stages,
                "params": n_params,
                "regnet": params,
                "error": 100.0 - r["val_top1"],
                "seconds": seconds,
            }
        )
        state["seconds"] += seconds
        store.save(state)
        if progress:
            progress({"space": space, "model": i + 1, "of": samples, "error": 100.0 - r["val_top1"]})
    if not models["anynetx"] or not models["regnetx"]:
        raise ValueError("the budget ran out before one model of each space was trained; raise --budget")
    best = sorted(models["anynetx"], key=lambda m: m["error"])[: max(2, len(models["anynetx"]) // 4)]
    summary = {
        space: {
            "n": len(ms),
            "min_error": min(m["error"] for m in ms),
            "median_error": float(np.median([m["error"] for m in ms])),
        }
        for space, ms in models.items()
    }
    return {
        "method": "design-space",
        "models": models,
        "summary": summary,
        "width_fit_top_anynetx": fit_linear_widths([m["stages"] for m in best]),
        "search_seconds": state["seconds"],
        "data": data.describe(),
    }
