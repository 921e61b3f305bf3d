"""``highway``: plain fully connected nets get harder to train as they deepen; highway nets do not.

Srivastava, Greff & Schmidhuber 2015 (arXiv:1507.06228), §3.1 and Fig. 1: on MNIST, plain
networks of 10, 20, 50 and 100 layers reach worse and worse best training loss (the 100-layer
one barely trains), while highway networks of the same depths all train to low loss. The
registry's ``plain_mlp`` (71 units per layer) and ``highway_mlp`` (50 blocks per layer, about
the same parameters per layer, gate bias -2) are trained by the trainer at each depth.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .base import Experiment, Unit, by_condition, recipe, seeds_of, verdict_from_seeds
from .report import fmt_ms, new_figure, plot_band, save
from .report import mean_of as _m

KINDS = ("plain_mlp", "highway_mlp")


def _unit(b: dict[str, Any], kind: str, depth: int, seed: int):  # noqa: ANN202
    def run(ctx) -> dict[str, Any]:  # noqa: ANN001
        cfg = recipe(
            kind, seed=seed, epochs=b["epochs"], data="mnist5k", lr=b["lr"], train_subset=b["train_subset"],
            test_subset=b["test_subset"], kwargs={"depth": depth},
        )  # fmt: skip
        r = ctx.train(cfg)
        losses = [h["train_loss"] for h in r["history"]]
        return {"params": r["summary"]["params"], "train_loss": losses, "best_train_loss": min(losses),
                "test_top1": r["summary"]["final_top1"]}  # fmt: skip

    return run


def plan(budget: dict[str, Any], seeds: list[int]) -> list[Unit]:
    return [
        Unit(f"{k}-d{d}-s{s}", s, {"model": k, "depth": d}, _unit(budget, k, d, s))
        for s in seeds
        for k in KINDS
        for d in budget["depths"]
    ]


def verdict(results: dict[str, Any]):  # noqa: ANN201
    c, b = by_condition(results), results["budget"]
    lo, hi = min(b["depths"]), max(b["depths"])
    per_seed, parts = {}, []
    for s in seeds_of(results):
        p = {d: c[f"plain_mlp-d{d}"][s]["best_train_loss"] for d in b["depths"]}
        h = {d: c[f"highway_mlp-d{d}"][s]["best_train_loss"] for d in b["depths"]}
        plain_degrades = p[hi] > 2 * p[lo]
        highway_holds = h[hi] <= 2 * h[lo] and h[hi] < p[hi]
        per_seed[s] = plain_degrades and highway_holds
        parts.append(f"seed {s}: plain {p[lo]:.3f} -> {p[hi]:.3f}, highway {h[lo]:.3f} -> {h[hi]:.3f}")
    return verdict_from_seeds(per_seed, f"Best training loss, depth {lo} -> {hi}: " + "; ".join(parts) + ".")


def figures(results: dict[str, Any], out: Path) -> list[Path]:
    c, b = by_condition(results), results["budget"]
    seeds = seeds_of(results)
    fig, axes = new_figure(1)
    ax = axes[0]
    for k, label in (("plain_mlp", "plain (71 units/layer)"), ("highway_mlp", "highway (50 blocks/layer)")):
        runs = [[c[f"{k}-d{d}"][s]["best_train_loss"] for d in b["depths"]] for s in seeds]
        plot_band(ax, b["depths"], runs, label=label)
    ax.set(
        xscale="log",
        yscale="log",
        xlabel="depth (hidden layers)",
        ylabel="best training cross-entropy (nats, log scale)",
    )
    from matplotlib.ticker import NullLocator

    ax.xaxis.set_minor_locator(NullLocator())  # only the measured depths are labelled
    ax.set_xticks(b["depths"], [str(d) for d in b["depths"]])
    ax.set_title(f"Best training loss vs depth, mnist5k, {b['epochs']} epochs")
    ax.legend(loc="lower right")
    return [save(fig, out / "highway.png")]


def table(results: dict[str, Any]) -> str:
    c, b = by_condition(results), results["budget"]
    seeds = seeds_of(results)
    rows = ["| depth | plain: best training loss | plain: test top-1 | highway: best training loss | highway: test top-1 |",
            "|---:|---:|---:|---:|---:|"]  # fmt: skip
    for d in b["depths"]:
        cells = []
        for k in KINDS:
            x = c[f"{k}-d{d}"]
            cells += [
                fmt_ms([x[s]["best_train_loss"] for s in seeds], 3),
                fmt_ms([x[s]["test_top1"] for s in seeds], 1, "%"),
            ]
        rows.append(f"| {d} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def headline(results: dict[str, Any]) -> str:
    c, b, ss = by_condition(results), results["budget"], seeds_of(results)
    lo, hi = min(b["depths"]), max(b["depths"])
    v = [_m(c[f"{k}-d{d}"][s]["best_train_loss"] for s in ss) for k in KINDS for d in (lo, hi)]
    return f"best train loss, depth {lo} -> {hi}: plain {v[0]:.3f} -> {v[1]:.3f}, highway {v[2]:.3f} -> {v[3]:.3f}"


EXPERIMENT = Experiment(
    name="highway",
    title="Highway networks train at depths where plain nets stall",
    claim="As fully connected networks deepen from 10 to 100 layers, plain networks reach much worse training loss, "
    "while highway networks keep training to low loss.",
    source="Srivastava, Greff & Schmidhuber, Training Very Deep Networks (NeurIPS 2015, arXiv:1507.06228), §3.1, "
    "Fig. 1.",
    protocol="`plain_mlp` and `highway_mlp` at depths {depths}, trained by the trainer on mnist5k ({train_subset} "
    "training images, 0 = all 4,000; {test_subset} test), SGD lr {lr} momentum 0.9, constant lr, batch 64, "
    "{epochs} epochs; the best (lowest) epoch training loss per run.",
    rule="Per seed: the claim holds if the deepest plain net's best training loss is more than twice the shallowest "
    "plain net's, while the deepest highway net's is at most twice the shallowest highway net's and below the "
    "deepest plain net's.",
    budgets={
        "full": {
            "depths": [10, 20, 50, 100],
            "train_subset": 2000,
            "test_subset": 500,
            "lr": 0.01,
            "epochs": 8,
        },
        "quick": {"depths": [2, 10], "train_subset": 300, "test_subset": 100, "lr": 0.01, "epochs": 1},
    },
    plan=plan,
    verdict=verdict,
    figures=figures,
    table=table,
    headline=headline,
    notes="8 epochs on 2,000 digits instead of 400 epochs on 60,000, and one setting (SGD lr 0.01, gate bias -2) "
    "instead of the paper's random search of learning rate and gate bias per depth; at 50 and 100 layers that one "
    "setting does not train the highway net either.",
)
