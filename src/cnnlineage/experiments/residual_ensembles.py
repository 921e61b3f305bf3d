"""``residual-ensembles``: deleting one block from a trained ResNet barely hurts; deleting one from a plain net does.

Veit, Wilber & Belongie 2016 (arXiv:1605.06431), §4.1 and Fig. 3: removing a single residual
block at test time leaves a ResNet's error almost unchanged (downsampling blocks aside),
while removing a layer from VGG drops it to chance — residual networks behave like
ensembles of many paths of different lengths. A ResNet and its plain twin
(:class:`cnnlineage.models.resnet_cifar.CifarResNet`, narrower stages) are trained by the
trainer, then every block is deleted in turn: in the ResNet the block's output becomes its
shortcut's (``relu(shortcut(x))``), in the plain net a shape-preserving block becomes the
identity (the two downsampling blocks of a plain net cannot be deleted).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from .base import (
    Experiment,
    Unit,
    by_condition,
    load_trained,
    recipe,
    seeds_of,
    split_tensors,
    verdict_from_seeds,
)
from .report import fmt_ms, new_figure, save
from .report import mean_of as _m


class _Deleted(nn.Module):
    """A deleted block: the residual block's shortcut alone, or the identity for a plain block."""

    def __init__(self, block: nn.Module) -> None:
        super().__init__()
        self.block = block

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b = self.block
        return b.act(b.shortcut(x)) if b.shortcut is not None else x


@torch.no_grad()
def _accuracy_at(
    model: nn.Module, images: torch.Tensor, labels: torch.Tensor, state: dict[str, Any], size: int
) -> float:
    from torchvision.transforms.v2 import functional as TF

    if images.shape[-1] != size:  # the trainer's resize (torchvision, antialiased, on the uint8 images)
        images = TF.resize(images, [size, size], antialias=True)
    mean = torch.tensor(state["mean"]).view(1, -1, 1, 1)
    std = torch.tensor(state["std"]).view(1, -1, 1, 1)
    x = (images.float() / 255.0 - mean) / std
    return 100.0 * float((model(x).argmax(1) == labels).float().mean())


def _unit(b: dict[str, Any], residual: bool, seed: int):  # noqa: ANN202
    def run(ctx) -> dict[str, Any]:  # noqa: ANN001
        cfg = recipe(
            "exp_cifar_resnet", seed=seed, epochs=b["epochs"], data=b["data"], lr=b["lr"], schedule="cosine",
            warmup_epochs=b["warmup_epochs"], weight_decay=1e-4, batch_size=128, train_subset=b["train_subset"],
            test_subset=b["test_subset"], image_size=b["image_size"],
            kwargs={"depth": b["depth"], "residual": residual, "widths": b["widths"]},
        )  # fmt: skip
        r = ctx.train(cfg)
        model, state = load_trained(r["run_dir"])
        images, labels = split_tensors(b["data"], subset=b["test_subset"])
        full = _accuracy_at(model, images, labels, state, b["image_size"])
        blocks = []
        for stage in ("layer1", "layer2", "layer3"):
            seq = getattr(model, stage)
            for j, block in enumerate(seq):
                reshapes = _changes_shape(block)
                if not residual and reshapes:
                    blocks.append({"block": f"{stage}.{j}", "downsampling": True, "accuracy": None})
                    continue
                seq[j] = _Deleted(block)
                acc = _accuracy_at(model, images, labels, state, b["image_size"])
                seq[j] = block
                blocks.append({"block": f"{stage}.{j}", "downsampling": reshapes, "accuracy": acc})
        return {"full_accuracy": full, "blocks": blocks}

    return run


def _changes_shape(block: nn.Module) -> bool:
    convs = [m for m in block.modules() if isinstance(m, nn.Conv2d)]
    first, last = convs[0], convs[-1]
    return first.stride != (1, 1) or first.in_channels != last.out_channels


def plan(budget: dict[str, Any], seeds: list[int]) -> list[Unit]:
    return [
        Unit(f"{'resnet' if r else 'plain'}-s{s}", s, {"residual": r}, _unit(budget, r, s))
        for s in seeds
        for r in (True, False)
    ]


def _mean_drop(d: dict[str, Any]) -> float:
    drops = [
        d["full_accuracy"] - x["accuracy"]
        for x in d["blocks"]
        if not x["downsampling"] and x["accuracy"] is not None
    ]
    return sum(drops) / len(drops)


def verdict(results: dict[str, Any]):  # noqa: ANN201
    c, b = by_condition(results), results["budget"]
    per_seed, parts = {}, []
    for s in seeds_of(results):
        res, plain = _mean_drop(c["resnet"][s]), _mean_drop(c["plain"][s])
        per_seed[s] = res < plain and res <= b["small_drop"]
        parts.append(f"seed {s}: ResNet {res:.1f}, plain {plain:.1f} points")
    return verdict_from_seeds(
        per_seed, "Mean top-1 drop when one shape-preserving block is deleted: " + "; ".join(parts) + "."
    )


def figures(results: dict[str, Any], out: Path) -> list[Path]:
    import warnings

    import numpy as np

    c = by_condition(results)
    seeds = seeds_of(results)
    fig, axes = new_figure(1, width=8.0)
    ax = axes[0]
    names = [x["block"] for x in c["resnet"][seeds[0]]["blocks"]]
    x = np.arange(len(names))
    for off, key, label, color in (
        (-0.2, "resnet", "ResNet", "#4c72b0"),
        (0.2, "plain", "plain twin", "#c44e52"),
    ):
        acc = np.array(
            [[np.nan if v["accuracy"] is None else v["accuracy"] for v in c[key][s]["blocks"]] for s in seeds]
        )
        with warnings.catch_warnings():  # the plain net's downsampling blocks are NaN in every seed
            warnings.simplefilter("ignore", RuntimeWarning)
            mean = np.nanmean(acc, axis=0)
            sd = np.nan_to_num(np.nanstd(acc, axis=0, ddof=1)) if len(seeds) > 1 else None
        full = np.mean([c[key][s]["full_accuracy"] for s in seeds])
        ax.bar(x + off, mean, 0.4, yerr=sd, capsize=3, color=color, label=f"{label} with the block deleted")
        ax.axhline(full, color=color, linestyle="--", linewidth=1, label=f"{label}, all blocks ({full:.1f}%)")
    for i, v in enumerate(c["plain"][seeds[0]]["blocks"]):
        if v["accuracy"] is None:
            ax.text(i + 0.2, 2, "n/a", ha="center", fontsize=7, rotation=90)
    ax.axhline(10, color="grey", linestyle=":", linewidth=1, label="chance (10%)")
    ax.set_xticks(x, names, rotation=45, fontsize=8)
    ax.set(
        xlabel="deleted block (n/a: a plain downsampling block cannot be deleted)",
        ylabel="held-out top-1 (%)",
        ylim=(0, 119),
    )
    ax.set_title(f"Deleting one block at test time (mean ± sd of {len(seeds)} seeds)")
    ax.legend(loc="upper center", ncol=3, fontsize=7)
    return [save(fig, out / "residual_ensembles.png")]


def table(results: dict[str, Any]) -> str:
    c = by_condition(results)
    seeds = seeds_of(results)
    rows = [
        "| network | top-1, all blocks | mean top-1 drop, one block deleted | worst drop |",
        "|---|---:|---:|---:|",
    ]
    for key in ("resnet", "plain"):
        d = c[key]
        worst = [
            max(d[s]["full_accuracy"] - x["accuracy"] for x in d[s]["blocks"] if x["accuracy"] is not None)
            for s in seeds
        ]
        rows.append(
            f"| {key} | {fmt_ms([d[s]['full_accuracy'] for s in seeds], 1, '%')} | "
            f"{fmt_ms([_mean_drop(d[s]) for s in seeds], 1)} | {fmt_ms(worst, 1)} |"
        )
    return "\n".join(rows)


def headline(results: dict[str, Any]) -> str:
    c, ss = by_condition(results), seeds_of(results)
    r, p = _m(_mean_drop(c["resnet"][s]) for s in ss), _m(_mean_drop(c["plain"][s]) for s in ss)
    return f"mean top-1 drop deleting one block: ResNet {r:.1f}, plain {p:.1f} points"


EXPERIMENT = Experiment(
    name="residual-ensembles",
    title="Residual networks behave like ensembles: deleting a block barely hurts",
    claim="Deleting a single block from a trained residual network at test time changes its accuracy little, while "
    "deleting a layer from a plain network of the same shape breaks it.",
    source="Veit, Wilber & Belongie, Residual Networks Behave Like Ensembles of Relatively Shallow Networks "
    "(NeurIPS 2016, arXiv:1605.06431), §4.1, Fig. 3.",
    protocol="`exp_cifar_resnet` depth {depth} (widths {widths}), residual and plain, trained by the trainer on "
    "{data} at {image_size}x{image_size} ({train_subset} training / {test_subset} test images), SGD lr {lr} "
    "momentum 0.9, weight decay 1e-4, batch 128, {warmup_epochs} warm-up epoch(s) then cosine, {epochs} epochs. Then each block "
    "is deleted in turn and the held-out top-1 measured.",
    rule="Per seed: the claim holds if the ResNet's mean accuracy drop over its shape-preserving blocks is smaller "
    "than the plain net's and at most {small_drop} points.".replace("{small_drop}", "10"),
    budgets={
        "full": {
            "data": "mnist5k",
            "depth": 20,
            "widths": [8, 16, 32],
            "image_size": 16,
            "train_subset": 2000,
            "test_subset": 1000,
            "lr": 0.1,
            "warmup_epochs": 1,
            "epochs": 8,
            "small_drop": 10.0,
        },
        "quick": {
            "data": "mnist5k",
            "depth": 8,
            "widths": [4, 8, 16],
            "image_size": 16,
            "train_subset": 200,
            "test_subset": 100,
            "lr": 0.1,
            "warmup_epochs": 0.5,
            "epochs": 1,
            "small_drop": 10.0,
        },
    },  # fmt: skip
    plan=plan,
    verdict=verdict,
    figures=figures,
    table=table,
    headline=headline,
    notes="A 20-layer ResNet on 16x16 digits instead of ResNet-110 on CIFAR-10, and its plain twin instead of "
    "VGG. Digits, not shapes10: these narrow nets stayed at 60-90% training error on 16x16 shapes10.",
)
