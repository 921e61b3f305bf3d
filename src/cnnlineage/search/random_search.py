"""Random search over the DARTS cell space: the honest baseline (Li & Talwalkar, UAI 2019, arXiv:1902.07638).

Li and Talwalkar showed that random search with the same budget comes close to DARTS on
its own search space. Here each candidate is a genotype drawn uniformly — for every
node two distinct earlier nodes and, for each edge, one of the seven non-zero
operations — built at the search network's size, trained briefly on the search half of
the training split and ranked on the validation half. The best candidate is the result.
This is the plain variant (independent candidates, no weight sharing); candidate ``i``
depends only on (seed, i), so a killed search resumes by skipping what is done.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any

import torch

from ..models.darts import PRIMITIVES, DartsNetwork, Genotype
from .common import SearchData, SearchState, proxy_train

__all__ = ["run_random_search", "sample_genotype"]


def sample_genotype(rng: random.Random, *, steps: int = 4) -> Genotype:
    """Return a genotype drawn uniformly from the DARTS cell space (two distinct inputs per node)."""
    ops = [p for p in PRIMITIVES if p != "none"]

    def cell() -> tuple[tuple[str, int], ...]:
        edges: list[tuple[str, int]] = []
        for i in range(steps):
            for j in sorted(rng.sample(range(2 + i), 2)):
                edges.append((rng.choice(ops), j))
        return tuple(edges)

    concat = tuple(range(2, 2 + steps))
    return Genotype(cell(), concat, cell(), concat)


def run_random_search(
    data: SearchData,
    out_dir: str,
    *,
    budget_minutes: float = 0.0,
    max_candidates: int = 8,
    candidate_epochs: float = 1.0,
    channels: int = 8,
    layers: int = 5,
    seed: int = 0,
    progress: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Return the record of a random search (every candidate's validation top-1, the best genotype).

    Stops after ``max_candidates`` or when the next candidate would overrun
    ``budget_minutes`` (> 0), timed by the candidates already trained.
    """
    # What decides each candidate's result; --budget and --candidates may change on resume (to extend a search).
    args = dict(
        data=data.name, candidate_epochs=candidate_epochs, channels=channels, layers=layers, seed=seed
    )
    store = SearchState(out_dir, method="random", args=args)
    state = store.load() or {"candidates": [], "seconds": 0.0}
    while len(state["candidates"]) < max_candidates:
        i = len(state["candidates"])
        done = state["candidates"]
        if budget_minutes > 0 and done:
            mean = state["seconds"] / len(done)
            if state["seconds"] + mean > budget_minutes * 60:
                break
        genotype = sample_genotype(random.Random(seed * 100_003 + i))
        torch.manual_seed(seed * 100_003 + i)
        net = DartsNetwork(
            genotype, channels=channels, layers=layers, num_classes=data.num_classes, in_chans=data.in_chans,
            input_size=(data.in_chans, *data.size),
        )  # fmt: skip
        t = time.perf_counter()
        r = proxy_train(net, data, epochs=candidate_epochs, seed=seed * 100_003 + i, lr=0.025)
        seconds = time.perf_counter() - t
        if budget_minutes > 0 and not done and seconds > budget_minutes * 60:
            raise ValueError(
                f"a budget of {budget_minutes:g} min is too small: one candidate takes {seconds:.0f} s "
                f"here; give --budget {seconds / 60 * 2:.1f} or more"
            )
        done.append({"genotype": genotype.to_json(), "val_top1": r["val_top1"], "seconds": seconds})
        state["seconds"] += seconds
        store.save(state)
        if progress:
            progress({"candidate": i + 1, "of": max_candidates, "val_top1": r["val_top1"]})
    if not state["candidates"]:
        raise ValueError("the random search trained no candidate; raise --budget or --candidates")
    best = max(state["candidates"], key=lambda c: c["val_top1"])
    return {
        "method": "random",
        "genotype": Genotype.parse(best["genotype"]).to_dict(),
        "best_val_top1": best["val_top1"],
        "candidates": state["candidates"],
        "search_seconds": state["seconds"],
        "search_network": {"channels": channels, "layers": layers},
        "data": data.describe(),
    }
