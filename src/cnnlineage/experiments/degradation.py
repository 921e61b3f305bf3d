"""``degradation``: a deeper plain net trains worse than a shallower one; a deeper residual net does not.

He, Zhang, Ren & Sun 2015 (arXiv:1512.03385), Fig. 1 and Fig. 6: on CIFAR-10 the 56-layer
plain network has *higher training error* than the 20-layer one (so it is not overfitting,
it is harder to optimise), while ResNet-56 trains to lower error than ResNet-20. The same
6n+2 networks (:class:`cnnlineage.models.resnet_cifar.CifarResNet`, option-A shortcuts, or
none) are built through :mod:`.nets` with narrower stages to fit the budget, and trained by
the trainer with the paper's recipe shape (SGD momentum 0.9, weight decay 1e-4, lr 0.1 after
a warm-up, as the paper does for its deepest nets).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .base import Experiment, Unit, by_condition, recipe, seeds_of, verdict_from_seeds
from .report import fmt_ms, new_figure, plot_band, save
from .report import mean_of as _m


def _conditions(b: dict[str, Any]) -> list[tuple[str, int, bool]]:
    return [(f"{'resnet' if res else 'plain'}{d}", d, res) for res in (False, True) for d in b["depths"]]


def _unit(b: dict[str, Any], depth: int, residual: bool, seed: int):  # noqa: ANN202
    def run(ctx) -> dict[str, Any]:  # noqa: ANN001
        cfg = recipe(
            "exp_cifar_resnet", seed=seed, epochs=b["epochs"], data=b["data"], lr=b["lr"], schedule="cosine",
            warmup_epochs=b["warmup_epochs"], weight_decay=1e-4, batch_size=128, train_subset=b["train_subset"],
            test_subset=b["test_subset"], image_size=b["image_size"],
            kwargs={"depth": depth, "residual": residual, "widths": b["widths"]},
        )  # fmt: skip
        r = ctx.train(cfg)
        return {
            "params": r["summary"]["params"],
            "train_error": [100.0 - h["train_top1"] for h in r["history"]],
            "test_error": [100.0 - h["test_top1"] for h in r["history"]],
        }

    return run


def plan(budget: dict[str, Any], seeds: list[int]) -> list[Unit]:
    return [
        Unit(f"{name}-s{s}", s, {"depth": d, "residual": res}, _unit(budget, d, res, s))
        for s in seeds
        for name, d, res in _conditions(budget)
    ]


def verdict(results: dict[str, Any]):  # noqa: ANN201
    c, b = by_condition(results), results["budget"]
    lo, hi = min(b["depths"]), max(b["depths"])
    tol = b["tolerance"]
    per_seed, parts = {}, []
    for s in seeds_of(results):
        e = {name: c[name][s]["train_error"][-1] for name, _, _ in _conditions(b)}
        plain_worse = e[f"plain{hi}"] > e[f"plain{lo}"] + tol
        res_ok = e[f"resnet{hi}"] <= e[f"resnet{lo}"] + tol
        per_seed[s] = plain_worse and res_ok
        parts.append(
            f"seed {s}: plain {lo}/{hi} {e[f'plain{lo}']:.1f}%/{e[f'plain{hi}']:.1f}%, "
            f"resnet {lo}/{hi} {e[f'resnet{lo}']:.1f}%/{e[f'resnet{hi}']:.1f}%"
        )
    return verdict_from_seeds(per_seed, "Final training error: " + "; ".join(parts) + ".")


def figures(results: dict[str, Any], out: Path) -> list[Path]:
    c, b = by_condition(results), results["budget"]
    seeds = seeds_of(results)
    fig, axes = new_figure(2, width=5.2)
    for ax, res in zip(axes, (False, True)):
        for (name, _, _), color in zip([x for x in _conditions(b) if x[2] == res], ("#4c72b0", "#c44e52")):
            train = [c[name][s]["train_error"] for s in seeds]
            test = [c[name][s]["test_error"] for s in seeds]
            x = list(range(1, len(train[0]) + 1))
            plot_band(ax, x, train, label=f"{name} training", color=color)
            plot_band(ax, x, test, label=f"{name} test", color=color, linestyle="--")
        ax.set(xlabel="epoch", ylabel="error (%)", ylim=(0, 100))
        ax.set_title(f"{'residual' if res else 'plain'} networks (solid: training, dashed: test)")
        ax.legend(loc="center right", fontsize=7)
    return [save(fig, out / "degradation.png")]


def table(results: dict[str, Any]) -> str:
    c, b = by_condition(results), results["budget"]
    seeds = seeds_of(results)
    rows = ["| network | params | final training error | final test error |", "|---|---:|---:|---:|"]
    for name, _, _ in _conditions(b):
        d = c[name]
        rows.append(
            f"| {name} | {d[seeds[0]]['params']:,} | {fmt_ms([d[s]['train_error'][-1] for s in seeds], 1, '%')} | "
            f"{fmt_ms([d[s]['test_error'][-1] for s in seeds], 1, '%')} |"
        )
    return "\n".join(rows)


def headline(results: dict[str, Any]) -> str:
    c, b, ss = by_condition(results), results["budget"], seeds_of(results)
    v = {n: _m(c[n][s]["train_error"][-1] for s in ss) for n, _, _ in _conditions(b)}
    lo, hi = min(b["depths"]), max(b["depths"])
    return (
        f"final train error: plain-{lo} {v[f'plain{lo}']:.1f}%, plain-{hi} {v[f'plain{hi}']:.1f}%, "
        f"ResNet-{lo} {v[f'resnet{lo}']:.1f}%, ResNet-{hi} {v[f'resnet{hi}']:.1f}%"
    )


EXPERIMENT = Experiment(
    name="degradation",
    title="Deeper plain nets train worse; deeper residual nets do not",
    claim="Adding layers to a plain network raises its training error (degradation), while the same depth with "
    "identity shortcuts trains at least as well as the shallower residual network.",
    source="He, Zhang, Ren & Sun, Deep Residual Learning for Image Recognition (arXiv:1512.03385), Fig. 1 and "
    "Fig. 6 (CIFAR-10, plain-20/56 vs ResNet-20/56).",
    protocol="`exp_cifar_resnet` (CifarResNet, option A, stage widths {widths} instead of 16/32/64) at depths "
    "{depths}, plain and residual; trained by the trainer on {data} at {image_size}x{image_size} "
    "({train_subset} training / {test_subset} test images), SGD lr {lr} momentum 0.9, weight decay 1e-4, "
    "batch 128, {warmup_epochs} warm-up epoch(s) then cosine, {epochs} epochs.",
    rule="Per seed, on the final epoch's training error with a tolerance of 1 percentage point: the claim holds "
    "if the deeper plain net's error exceeds the shallower plain net's by more than the tolerance AND the deeper "
    "residual net's error is not above the shallower residual net's by more than the tolerance.",
    budgets={
        "full": {
            "data": "mnist5k",
            "depths": [20, 56],
            "widths": [8, 16, 32],
            "image_size": 16,
            "train_subset": 1500,
            "test_subset": 1000,
            "lr": 0.1,
            "warmup_epochs": 1,
            "epochs": 8,
            "tolerance": 1.0,
        },
        "quick": {
            "data": "mnist5k",
            "depths": [8, 14],
            "widths": [4, 8, 16],
            "image_size": 16,
            "train_subset": 200,
            "test_subset": 100,
            "lr": 0.1,
            "warmup_epochs": 0.5,
            "epochs": 1,
            "tolerance": 1.0,
        },
    },  # fmt: skip
    plan=plan,
    verdict=verdict,
    figures=figures,
    table=table,
    headline=headline,
    notes="Half-width stages (8/16/32), 16x16 digits, 1,500 training images and 8 epochs instead of CIFAR-10 for "
    "64k iterations: the budget of 15 CPU minutes. A first full run on 16x16 shapes10 was stopped after 10 of 12 "
    "runs: every network stayed at 60-89% training error, too little training to say anything.",
)
