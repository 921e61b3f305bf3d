"""``lrn-vs-bn``: AlexNet's local response normalisation against BatchNorm and against nothing.

Krizhevsky, Sutskever & Hinton 2012, §3.3: LRN "reduces our top-1 and top-5 error rates by
1.4% and 1.2%" on ImageNet and the four-layer CIFAR-10 net's test error from 13% to 11%.
Later networks dropped LRN (Simonyan & Zisserman 2015, §4.1: "does not improve the
performance") and normalised with BatchNorm (Ioffe & Szegedy 2015) instead. The same small
AlexNet-shaped :class:`.nets.ConvNet` is trained by the trainer three times per seed: with
LRN after each ReLU (the paper's k=2, n=5, alpha=1e-4, beta=0.75), with BN before each ReLU,
and with neither.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .base import Experiment, Unit, by_condition, recipe, seeds_of, verdict_from_seeds
from .report import fmt_ms, new_figure, plot_band, save
from .report import mean_of as _m

NORMS = ("none", "lrn", "bn")
LABELS = {"none": "no normalisation", "lrn": "LRN (AlexNet)", "bn": "BatchNorm"}


def _unit(b: dict[str, Any], norm: str, seed: int):  # noqa: ANN202
    def run(ctx) -> dict[str, Any]:  # noqa: ANN001
        cfg = recipe(
            "exp_convnet", seed=seed, epochs=b["epochs"], data="mnist5k", optim="sgd", lr=b["lr"], image_size=28,
            schedule="cosine", train_subset=b["train_subset"], test_subset=b["test_subset"],
            kwargs={"norm": norm, "widths": b["widths"], "hidden": b["hidden"]},
        )  # fmt: skip
        r = ctx.train(cfg)
        return {
            "test_top1": r["summary"]["final_top1"],
            "test_curve": [h["test_top1"] for h in r["history"]],
            "train_loss": [h["train_loss"] for h in r["history"]],
        }

    return run


def plan(budget: dict[str, Any], seeds: list[int]) -> list[Unit]:
    return [Unit(f"{n}-s{s}", s, {"norm": n}, _unit(budget, n, s)) for s in seeds for n in NORMS]


def verdict(results: dict[str, Any]):  # noqa: ANN201
    c = by_condition(results)
    per_seed, parts = {}, []
    for s in seeds_of(results):
        a = {n: c[n][s]["test_top1"] for n in NORMS}
        per_seed[s] = a["lrn"] > a["none"] and a["bn"] > a["lrn"]
        parts.append(f"seed {s}: none {a['none']:.1f}%, LRN {a['lrn']:.1f}%, BN {a['bn']:.1f}%")
    return verdict_from_seeds(per_seed, "Held-out top-1: " + "; ".join(parts) + ".")


def figures(results: dict[str, Any], out: Path) -> list[Path]:
    c = by_condition(results)
    seeds = seeds_of(results)
    fig, axes = new_figure(2, width=5.2)
    for n in NORMS:
        runs = [c[n][s]["test_curve"] for s in seeds]
        x = list(range(1, len(runs[0]) + 1))
        plot_band(axes[0], x, runs, label=LABELS[n])
        plot_band(axes[1], x, [c[n][s]["train_loss"] for s in seeds], label=LABELS[n])
    axes[0].set(xlabel="epoch", ylabel="held-out top-1 (%)", ylim=(0, 100))
    axes[0].set_title("Held-out accuracy on mnist5k")
    axes[0].legend(loc="lower right", fontsize=8)
    axes[1].set(xlabel="epoch", ylabel="training cross-entropy (nats)")
    axes[1].set_title("Training loss (colours as on the left)")
    return [save(fig, out / "lrn_vs_bn.png")]


def table(results: dict[str, Any]) -> str:
    c = by_condition(results)
    seeds = seeds_of(results)
    rows = ["| normalisation | held-out top-1 | final training loss |", "|---|---:|---:|"]
    for n in NORMS:
        rows.append(
            f"| {LABELS[n]} | {fmt_ms([c[n][s]['test_top1'] for s in seeds], 1, '%')} | "
            f"{fmt_ms([c[n][s]['train_loss'][-1] for s in seeds], 3)} |"
        )
    return "\n".join(rows)


def headline(results: dict[str, Any]) -> str:
    c, ss = by_condition(results), seeds_of(results)
    a = {n: _m(c[n][s]["test_top1"] for s in ss) for n in NORMS}
    return f"top-1: none {a['none']:.1f}%, LRN {a['lrn']:.1f}%, BN {a['bn']:.1f}%"


EXPERIMENT = Experiment(
    name="lrn-vs-bn",
    title="LRN against BatchNorm and nothing",
    claim="Local response normalisation improves a convolutional network's accuracy a little over no "
    "normalisation (AlexNet), and BatchNorm, which replaced it, improves it more.",
    source="Krizhevsky, Sutskever & Hinton 2012, §3.3 (LRN: -1.4% top-1 on ImageNet, 13% -> 11% on CIFAR-10); "
    "Simonyan & Zisserman 2015, §4.1; Ioffe & Szegedy 2015.",
    protocol="`exp_convnet` (5x5, 5x5 and 3x3 convs of {widths} channels, FC-{hidden}, ReLU) with norm=none, lrn (after ReLU, "
    "k=2, n=5, alpha=1e-4, beta=0.75) or bn (before ReLU), trained by the trainer on mnist5k ({train_subset} "
    "training / {test_subset} test images), SGD lr {lr} momentum 0.9, cosine, batch 64, {epochs} epochs.",
    rule="Per seed: the claim holds if held-out top-1 with LRN is above that with no normalisation, and with BN "
    "above that with LRN.",
    budgets={
        "full": {
            "widths": [16, 32, 32],
            "hidden": 64,
            "train_subset": 2000,
            "test_subset": 1000,
            "lr": 0.02,
            "epochs": 8,
        },
        "quick": {
            "widths": [8, 16, 16],
            "hidden": 32,
            "train_subset": 200,
            "test_subset": 100,
            "lr": 0.02,
            "epochs": 1,
        },
    },
    plan=plan,
    verdict=verdict,
    figures=figures,
    table=table,
    headline=headline,
    notes="Digits instead of ImageNet/CIFAR-10 (small nets without normalisation stay near chance on shapes10 "
    "within this budget, see small-filters); a small net trained for minutes.",
)
