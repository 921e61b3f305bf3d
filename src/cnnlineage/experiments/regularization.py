"""``regularization``: dropout and data augmentation shrink the gap between training and test accuracy.

Krizhevsky, Sutskever & Hinton 2012 (AlexNet), §4: "Without dropout, our network exhibits
substantial overfitting" (§4.2), and label-preserving transformations enlarge the data set
(§4.1); Srivastava et al. 2014 (JMLR 15, dropout), Fig. 4. The small AlexNet-shaped
:class:`.nets.ConvNet` is trained by the trainer on few digits, so that it can overfit, with
nothing, dropout 0.5 before both fully connected layers, random affine distortions (the
trainer's augmentation), or both. The gap is measured at the end on clean images: top-1 on
the training images (evaluation mode, no augmentation) minus held-out top-1.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .base import (
    Experiment,
    Unit,
    accuracy,
    by_condition,
    load_trained,
    recipe,
    seeds_of,
    split_tensors,
    verdict_from_seeds,
)
from .report import fmt_ms, new_figure, plot_band, save
from .report import mean_of as _m

CONDITIONS = ("none", "dropout", "augmentation", "both")


def _unit(b: dict[str, Any], cond: str, seed: int):  # noqa: ANN202
    def run(ctx) -> dict[str, Any]:  # noqa: ANN001
        dropout = b["dropout"] if cond in ("dropout", "both") else 0.0
        aug = b["augment"] if cond in ("augmentation", "both") else {}
        cfg = recipe(
            "exp_convnet", seed=seed, epochs=b["epochs"], data="mnist5k", optim="adam", lr=b["lr"],
            train_subset=b["train_subset"], test_subset=b["test_subset"],
            kwargs={"dropout": dropout, "widths": b["widths"], "hidden": b["hidden"]}, augment=aug, batch_size=32,
        )  # fmt: skip
        cfg["data"]["image_size"] = 28
        r = ctx.train(cfg)
        model, state = load_trained(r["run_dir"])
        x, y = split_tensors("mnist5k", train=True, subset=b["train_subset"])
        clean_train = accuracy(model, x, y, state)
        test = r["summary"]["final_top1"]
        hist = r["history"]
        return {
            "clean_train_top1": clean_train,
            "test_top1": test,
            "gap": clean_train - test,
            "gap_curve": [h["train_top1"] - h["test_top1"] for h in hist],
            "test_curve": [h["test_top1"] for h in hist],
        }

    return run


def plan(budget: dict[str, Any], seeds: list[int]) -> list[Unit]:
    return [Unit(f"{c}-s{s}", s, {"condition": c}, _unit(budget, c, s)) for s in seeds for c in CONDITIONS]


def verdict(results: dict[str, Any]):  # noqa: ANN201
    c = by_condition(results)
    per_seed, parts = {}, []
    for s in seeds_of(results):
        g = {k: c[k][s]["gap"] for k in CONDITIONS}
        per_seed[s] = all(g[k] < g["none"] for k in CONDITIONS[1:])
        parts.append(f"seed {s}: " + ", ".join(f"{k} {v:.1f}" for k, v in g.items()))
    return verdict_from_seeds(
        per_seed, "Clean train top-1 minus held-out top-1 (points): " + "; ".join(parts) + "."
    )


def figures(results: dict[str, Any], out: Path) -> list[Path]:
    c = by_condition(results)
    seeds = seeds_of(results)
    fig, axes = new_figure(2, width=5.2)
    for k in CONDITIONS:
        runs = [c[k][s]["gap_curve"] for s in seeds]
        x = list(range(1, len(runs[0]) + 1))
        plot_band(axes[0], x, runs, label=k)
        plot_band(axes[1], x, [c[k][s]["test_curve"] for s in seeds], label=k)
    axes[0].axhline(0, color="grey", linewidth=1)
    axes[0].set(xlabel="epoch", ylabel="running train top-1 (regularised) - test top-1 (points)")
    axes[0].set_title("Generalisation gap during training")
    axes[0].legend(loc="upper left", fontsize=8)
    axes[1].set(xlabel="epoch", ylabel="held-out top-1 (%)")
    axes[1].set_title("Held-out accuracy")
    axes[1].legend(loc="lower right", fontsize=8)
    return [save(fig, out / "regularization.png")]


def table(results: dict[str, Any]) -> str:
    c = by_condition(results)
    seeds = seeds_of(results)
    rows = ["| regulariser | clean train top-1 | held-out top-1 | gap (points) |", "|---|---:|---:|---:|"]
    for k in CONDITIONS:
        d = c[k]
        rows.append(
            f"| {k} | {fmt_ms([d[s]['clean_train_top1'] for s in seeds], 1, '%')} | "
            f"{fmt_ms([d[s]['test_top1'] for s in seeds], 1, '%')} | {fmt_ms([d[s]['gap'] for s in seeds], 1)} |"
        )
    return "\n".join(rows)


_AUG = {"affine_degrees": 15.0, "affine_translate": 0.1, "affine_scale": 0.1}


def headline(results: dict[str, Any]) -> str:
    c, ss = by_condition(results), seeds_of(results)
    g = {k: _m(c[k][s]["gap"] for s in ss) for k in CONDITIONS}
    return "train-test gap (points): " + ", ".join(f"{k} {v:.1f}" for k, v in g.items())


EXPERIMENT = Experiment(
    name="regularization",
    title="Dropout and augmentation shrink overfitting",
    claim="On a small training set a convolutional network overfits; dropout, data augmentation and both together "
    "each shrink the gap between training and test accuracy.",
    source="Krizhevsky, Sutskever & Hinton 2012 (AlexNet), §4.1-4.2; Srivastava et al., Dropout (JMLR 2014), "
    "Fig. 4.",
    protocol="`exp_convnet` on 1x28x28 digits (5x5, 5x5 and 3x3 convs of {widths} channels, FC-{hidden}, ReLU), trained by the "
    "trainer on {train_subset} mnist5k training images ({test_subset} held out), Adam lr {lr}, constant lr, "
    "batch 32, {epochs} epochs; dropout p={dropout} before both FC layers; augmentation = random affine "
    "({augment}). Gap = top-1 on the clean training images minus held-out top-1, after the last epoch.",
    rule="Per seed: the claim holds if dropout, augmentation and both each end with a smaller gap than no "
    "regularisation.",
    budgets={
        "full": {
            "widths": [16, 32, 32],
            "hidden": 64,
            "train_subset": 500,
            "test_subset": 500,
            "lr": 0.001,
            "epochs": 20,
            "dropout": 0.5,
            "augment": _AUG,
        },
        "quick": {
            "widths": [8, 16, 16],
            "hidden": 32,
            "train_subset": 100,
            "test_subset": 100,
            "lr": 0.001,
            "epochs": 2,
            "dropout": 0.5,
            "augment": _AUG,
        },
    },  # fmt: skip
    plan=plan,
    verdict=verdict,
    figures=figures,
    table=table,
    headline=headline,
    notes="Digits and random affine distortions instead of ImageNet crops and PCA colour noise; 500 training "
    "images so that overfitting shows within the budget.",
)
