"""``xor``: a single-layer perceptron cannot learn XOR; one hidden layer trained by back-propagation can.

Minsky & Papert (Perceptrons, 1969) proved that no single layer of threshold units computes
XOR (the classes are not linearly separable); Rumelhart, Hinton & Williams (Nature 1986)
showed a hidden layer trained by back-propagation learns it. The registry's ``perceptron``
(trained by Rosenblatt's rule, ``rosenblatt_update``) and ``mlp`` (one hidden layer) are
trained on the four XOR points. The trainer takes image datasets only, so the four points
are trained with a direct loop of a few lines (full batch, as the 1986 paper did).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from .base import Experiment, Unit, by_condition, seeds_of, verdict_from_seeds
from .report import fmt_ms, new_figure, plot_band, save
from .report import mean_of as _m

X = torch.tensor([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
Y = torch.tensor([0, 1, 1, 0])
GRID = 31  # decision-boundary grid points per axis over [-0.5, 1.5]


def _grid() -> torch.Tensor:
    t = torch.linspace(-0.5, 1.5, GRID)
    gy, gx = torch.meshgrid(t, t, indexing="ij")
    return torch.stack([gx.flatten(), gy.flatten()], 1)  # (GRID², 2): x then y


def _inputs(x: torch.Tensor) -> torch.Tensor:
    return x.view(-1, 2, 1, 1)  # the registry's models take (B, C, H, W): two 1×1 "channels"


def _run_perceptron(seed: int, epochs: int) -> dict[str, Any]:
    from ..registry import create_model

    model = create_model("perceptron", num_classes=1, in_chans=2, img_size=1)
    g = torch.Generator().manual_seed(seed)
    acc, mistakes = [], []
    for _ in range(epochs):
        order = torch.randperm(4, generator=g)  # online rule, samples in a seeded order each epoch
        mistakes.append(model.rosenblatt_update(_inputs(X[order]), Y[order], lr=1.0))
        acc.append(100.0 * float((model.predict(_inputs(X)) == Y).float().mean()))
    with torch.no_grad():
        grid = model.predict(_inputs(_grid())).float()
    return {"accuracy": acc, "mistakes": mistakes, "grid": grid.tolist()}


def _run_mlp(seed: int, epochs: int, hidden: int, lr: float) -> dict[str, Any]:
    from ..registry import create_model

    torch.manual_seed(seed)
    model = create_model("mlp", num_classes=2, in_chans=2, img_size=1, hidden=(hidden,))
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    acc = []
    for _ in range(epochs):  # full-batch gradient descent on cross-entropy
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(_inputs(X)), Y)
        loss.backward()
        opt.step()
        with torch.no_grad():
            acc.append(100.0 * float((model(_inputs(X)).argmax(1) == Y).float().mean()))
    with torch.no_grad():
        grid = model(_inputs(_grid())).softmax(1)[:, 1]
    return {"accuracy": acc, "final_loss": float(loss.detach()), "grid": grid.tolist()}


def plan(budget: dict[str, Any], seeds: list[int]) -> list[Unit]:
    units = []
    for s in seeds:
        units.append(
            Unit(
                f"perceptron-s{s}",
                s,
                {"model": "perceptron"},
                lambda ctx, s=s: _run_perceptron(s, budget["epochs"]),
            )
        )
        units.append(
            Unit(
                f"mlp-s{s}", s, {"model": "mlp", "hidden": budget["hidden"]},
                lambda ctx, s=s: _run_mlp(s, budget["epochs"], budget["hidden"], budget["lr"]),
            )
        )  # fmt: skip
    return units


def verdict(results: dict[str, Any]):  # noqa: ANN201
    c = by_condition(results)
    per_seed, parts = {}, []
    for s in seeds_of(results):
        p = c["perceptron"][s]["accuracy"][-1]
        m = c["mlp"][s]["accuracy"][-1]
        per_seed[s] = p < 100.0 and m == 100.0
        parts.append(f"seed {s}: perceptron {p:.0f}%, MLP {m:.0f}%")
    return verdict_from_seeds(per_seed, "Final accuracy on the 4 XOR points: " + "; ".join(parts) + ".")


def figures(results: dict[str, Any], out: Path) -> list[Path]:
    c = by_condition(results)
    seeds = seeds_of(results)
    fig, axes = new_figure(2, width=4.6, height=4.2)
    t = torch.linspace(-0.5, 1.5, GRID)
    for ax, name, title in zip(
        axes, ("perceptron", "mlp"), ("perceptron (Rosenblatt rule)", "MLP, 1 hidden layer")
    ):
        grid = torch.tensor(c[name][seeds[0]]["grid"]).view(GRID, GRID)
        cs = ax.contourf(t, t, grid, levels=[0, 0.5, 1.0], colors=["#cfe0f3", "#f6d2c4"])
        ax.contour(t, t, grid, levels=[0.5], colors="k", linewidths=1)
        for label, marker, color in ((0, "o", "#1f5fa8"), (1, "s", "#b2401a")):
            pts = X[Y == label]
            ax.scatter(
                pts[:, 0], pts[:, 1], marker=marker, s=80, c=color, edgecolors="k", label=f"XOR = {label}"
            )
        acc = c[name][seeds[0]]["accuracy"][-1]
        ax.set(
            title=f"{title}: {acc:.0f}% (seed {seeds[0]})", xlabel="input x1 (0/1)", ylabel="input x2 (0/1)"
        )
        ax.legend(loc="center", fontsize=8, framealpha=0.9)
        del cs
    paths = [save(fig, out / "xor_decision_boundaries.png")]
    fig, axes = new_figure(1)
    ax = axes[0]
    for name, label in (("perceptron", "perceptron"), ("mlp", "MLP (1 hidden layer)")):
        runs = [c[name][s]["accuracy"] for s in seeds]
        plot_band(ax, list(range(1, len(runs[0]) + 1)), runs, label=label)
    ax.set(
        xlabel="epoch (passes over the 4 points)", ylabel="training accuracy (%)", ylim=(0, 105), xscale="log"
    )
    ax.set_title("XOR: accuracy during training")
    ax.legend(loc="lower right")
    paths.append(save(fig, out / "xor_accuracy.png"))
    return paths


def table(results: dict[str, Any]) -> str:
    c = by_condition(results)
    seeds = seeds_of(results)
    p = [c["perceptron"][s]["accuracy"][-1] for s in seeds]
    m = [c["mlp"][s]["accuracy"][-1] for s in seeds]
    mis = [c["perceptron"][s]["mistakes"][-1] for s in seeds]
    return "\n".join(
        [
            "| model | final accuracy on XOR | mistakes in the last epoch |",
            "|---|---:|---:|",
            f"| perceptron | {fmt_ms(p, 1, '%')} | {fmt_ms(mis, 1)} |",
            f"| MLP | {fmt_ms(m, 1, '%')} | - |",
        ]
    )


def headline(results: dict[str, Any]) -> str:
    c, ss = by_condition(results), seeds_of(results)
    p, m = _m(c["perceptron"][s]["accuracy"][-1] for s in ss), _m(c["mlp"][s]["accuracy"][-1] for s in ss)
    return f"XOR accuracy: perceptron {p:.0f}%, MLP {m:.0f}%"


EXPERIMENT = Experiment(
    name="xor",
    title="A perceptron cannot learn XOR; a hidden layer can",
    claim="No single layer of threshold units computes XOR; a network with one hidden layer trained by "
    "back-propagation learns it.",
    source="Minsky & Papert, Perceptrons (1969), §2; Rumelhart, Hinton & Williams, Nature 323 (1986), Fig. 2 "
    "(XOR with hidden units).",
    protocol="The four XOR points. `perceptron` (1 unit, zero start) trained by Rosenblatt's rule for {epochs} "
    "epochs in a seeded order; `mlp` (2-{hidden}-2, tanh) trained full-batch by SGD (lr {lr}, momentum 0.9) "
    "for {epochs} steps.",
    rule="Per seed: the claim holds if the perceptron ends below 100% accuracy and the MLP at 100%.",
    budgets={
        "full": {"epochs": 500, "hidden": 4, "lr": 0.1},
        "quick": {"epochs": 100, "hidden": 4, "lr": 0.2},
    },
    plan=plan,
    verdict=verdict,
    figures=figures,
    table=table,
    headline=headline,
    default_seeds=5,
    notes="A direct loop instead of the trainer: the trainer takes image datasets, XOR is four points.",
)
