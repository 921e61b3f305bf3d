"""``gradient-flow``: in a deep sigmoid net the gradient vanishes towards the input; BN, shortcuts, gates and
dense connections keep it alive.

Hochreiter 1991 and Bengio, Simard & Frasconi 1994 identified the vanishing gradient;
Glorot & Bengio 2010 (§3-4, Fig. 7) measured back-propagated gradients shrinking layer by
layer in deep sigmoid networks. The remedies of the lineage: BatchNorm (Ioffe & Szegedy
2015), highway gates (Srivastava et al. 2015), identity shortcuts (He et al. 2015) and dense
connections (Huang et al. 2017). This experiment measures, for each weighted layer, the norm
of the loss gradient with respect to its weights, at initialisation and after a few SGD
steps, on batches of mnist5k digits.

It measures gradients, not training results, so it uses a direct loop of a few steps rather
than the trainer (whose ``run.grad_norms`` reports epoch means per layer, not the value at
initialisation).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from .base import Experiment, Unit, by_condition, seeds_of, split_tensors, verdict_from_seeds
from .report import fmt_ms, new_figure, plot_band, save

NETS = ("sigmoid_mlp", "relu_mlp", "bn_mlp", "residual_mlp", "highway_mlp", "dense_block")
LABELS = {
    "sigmoid_mlp": "sigmoid MLP",
    "relu_mlp": "ReLU MLP",
    "bn_mlp": "ReLU MLP + BatchNorm",
    "residual_mlp": "residual MLP (BN in the branch)",
    "highway_mlp": "highway MLP",
    "dense_block": "DenseNet block (conv)",
}
ALIVE = ("bn_mlp", "residual_mlp", "highway_mlp", "dense_block")  # the remedies the rule checks


class DenseBlockNet(nn.Module):
    """4×4 stride-4 stem, one DenseNet-BC block (Huang et al. 2017), BN-ReLU, global pool, classifier."""

    def __init__(self, *, layers: int, growth: int = 12) -> None:
        super().__init__()
        from ..models.densenet import DenseBlock

        self.stem = nn.Conv2d(1, 2 * growth, 4, stride=4, bias=False)  # 28x28 -> 7x7: keeps the block cheap
        self.block = DenseBlock(layers, 2 * growth, growth)
        self.head = nn.Sequential(
            nn.BatchNorm2d(self.block.out_chs), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(1)
        )
        self.fc = nn.Linear(self.block.out_chs, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.head(self.block(self.stem(x))))


def build_net(name: str, depth: int, width: int) -> tuple[nn.Module, list[nn.Module]]:
    """Return (model, its same-shaped inner layers from input to output).

    The layers whose gradients are compared all have one shape (width x width, or the dense
    layers' 3x3 convolutions), so their norms are comparable: the 784-input first layer and
    the classifier are left out.
    """
    from ..registry import create_model
    from .nets import ResidualMLP

    if name in ("sigmoid_mlp", "relu_mlp"):
        act = nn.Sigmoid if name == "sigmoid_mlp" else nn.ReLU
        m = create_model("mlp", hidden=(width,) * depth, act_layer=act)
        return m, [l for l in m.hidden if isinstance(l, nn.Linear)][1:]
    if name in ("bn_mlp", "residual_mlp"):
        m = ResidualMLP(depth=depth, width=width, kind="bn" if name == "bn_mlp" else "residual")
        return m, [l[0] for l in m.layers]
    if name == "highway_mlp":
        m = create_model("highway_mlp", depth=depth, width=width)
        return m, [l.transform[0] for l in m.layers]
    if name == "dense_block":  # (depth-1)/2 dense layers of two convolutions each; their 3x3 convs compared
        m = DenseBlockNet(layers=max(2, (depth - 1) // 2))
        return m, [layer.conv2 for layer in m.block.values()]
    raise ValueError(f"unknown network {name!r}; expected one of {', '.join(NETS)}")


def _norms(layers: list[nn.Module]) -> list[float]:
    return [float(l.weight.grad.norm()) for l in layers]


def _measure(b: dict[str, Any], name: str, seed: int) -> dict[str, Any]:
    torch.manual_seed(seed)
    model, layers = build_net(name, b["depth"], b["width"])
    images, labels = split_tensors("mnist5k", train=True)
    g = torch.Generator().manual_seed(seed)
    mean, std = 0.1307, 0.3081  # mnist statistics, as the trainer's pipeline

    def batch() -> tuple[torch.Tensor, torch.Tensor]:
        idx = torch.randint(len(images), (b["batch"],), generator=g)
        return (images[idx].float() / 255 - mean) / std, labels[idx]

    opt = torch.optim.SGD(model.parameters(), lr=b["lr"], momentum=0.9)
    model.train()
    out: dict[str, Any] = {}
    for step in range(b["steps"] + 1):
        x, y = batch()
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        if step == 0:
            out["init"] = _norms(layers)
            out["init_loss"] = float(loss.detach())
        if step == b["steps"]:
            out["trained"] = _norms(layers)
            out["trained_loss"] = float(loss.detach())
            break
        opt.step()
    for when in ("init", "trained"):
        n = out[when]
        out[f"{when}_ratio"] = n[0] / n[-1] if n[-1] > 0 else None  # first layer / last layer
    return out


def plan(budget: dict[str, Any], seeds: list[int]) -> list[Unit]:
    return [
        Unit(f"{n}-s{s}", s, {"net": n}, lambda ctx, n=n, s=s: _measure(budget, n, s))
        for s in seeds
        for n in NETS
    ]


def verdict(results: dict[str, Any]):  # noqa: ANN201
    c, b = by_condition(results), results["budget"]
    per_seed, parts = {}, []
    for s in seeds_of(results):
        sig = c["sigmoid_mlp"][s]["init_ratio"] or 0.0
        alive = {n: c[n][s]["init_ratio"] or 0.0 for n in ALIVE}
        per_seed[s] = sig < b["vanished"] and all(v >= b["alive"] for v in alive.values())
        parts.append(f"seed {s}: sigmoid {sig:.1e}, " + ", ".join(f"{n} {v:.2g}" for n, v in alive.items()))
    return verdict_from_seeds(
        per_seed, "First / last inner layer gradient norm at initialisation: " + "; ".join(parts) + "."
    )


def figures(results: dict[str, Any], out: Path) -> list[Path]:
    c = by_condition(results)
    seeds = seeds_of(results)
    fig, axes = new_figure(2, width=5.6)
    for ax, when, title in zip(
        axes, ("init", "trained"), ("at initialisation", f"after {results['budget']['steps']} SGD steps")
    ):
        for n in NETS:
            runs = [c[n][s][when] for s in seeds]
            step = (
                2 if n == "dense_block" else 1
            )  # a dense layer holds two convolutions: place it at its depth
            plot_band(ax, [step * (i + 1) for i in range(len(runs[0]))], runs, label=LABELS[n])
        ax.set(
            xlabel="inner layer (1 = nearest the input)",
            ylabel="gradient norm ||dL/dW|| (log scale)",
            yscale="log",
        )
        ax.set_title(f"Per-layer gradient norm {title}")
    axes[1].legend(loc="center left", bbox_to_anchor=(1.02, 0.5), fontsize=8)
    return [save(fig, out / "gradient_flow.png")]


def table(results: dict[str, Any]) -> str:
    c = by_condition(results)
    seeds = seeds_of(results)
    rows = ["| network | first/last inner layer gradient, init | after training steps | loss at init | after |",
            "|---|---:|---:|---:|---:|"]  # fmt: skip
    for n in NETS:
        d = c[n]
        ri = [d[s]["init_ratio"] for s in seeds]
        rt = [d[s]["trained_ratio"] for s in seeds]
        rows.append(
            f"| {LABELS[n]} | {_sci(ri)} | {_sci(rt)} | {fmt_ms([d[s]['init_loss'] for s in seeds], 3)} | "
            f"{fmt_ms([d[s]['trained_loss'] for s in seeds], 3)} |"
        )
    return "\n".join(rows)


def _sci(values: list[float | None]) -> str:
    xs = [v for v in values if v is not None]
    if not xs:
        return "n/a"
    return f"{min(xs):.2g} .. {max(xs):.2g}" if len(xs) > 1 else f"{xs[0]:.2g}"


def headline(results: dict[str, Any]) -> str:
    c, ss = by_condition(results), seeds_of(results)

    def med(n: str) -> float:
        xs = sorted(c[n][s]["init_ratio"] or 0.0 for s in ss)
        return xs[len(xs) // 2]

    return "first/last gradient at init: sigmoid {:.0e}, ReLU {:.0e}, BN {:.2g}, residual {:.2g}, highway {:.2g}, dense {:.2g}".format(
        *(med(n) for n in NETS)
    )


EXPERIMENT = Experiment(
    name="gradient-flow",
    title="Vanishing gradients, and what keeps them alive",
    claim="In a deep sigmoid network the gradient reaching the first layers is orders of magnitude smaller than "
    "at the last; BatchNorm, identity shortcuts, highway gates and dense connections keep it of the same order.",
    source="Glorot & Bengio, AISTATS 2010, §4 and Fig. 7; Ioffe & Szegedy 2015 §3; Srivastava et al. 2015 §4.1; "
    "He et al. 2015 §3; Huang et al. 2017 §3.",
    protocol="{depth} weighted layers of width {width} on mnist5k batches of {batch}: `mlp` with sigmoid or ReLU, "
    "an MLP with BatchNorm, a residual MLP (relu(x + BN(Wx)), He et al.'s block), `highway_mlp`, and a DenseNet-BC block (stem + 2 convs per layer). "
    "PyTorch's / each model's own initialisation. Norm of dL/dW per layer at initialisation and after "
    "{steps} SGD steps (lr {lr}, momentum 0.9).",
    rule="Per seed, at initialisation: the claim holds if the sigmoid MLP's gradient-norm ratio first / last inner "
    "layer (layers of one shape: width x width, or the dense layers' 3x3 convs) "
    "is below 1e-2 (vanished) and the BN, residual, highway and DenseNet ratios are all at least 0.1 (alive).",
    budgets={
        "full": {
            "depth": 30,
            "width": 64,
            "batch": 128,
            "steps": 50,
            "lr": 0.01,
            "vanished": 0.01,
            "alive": 0.1,
        },
        "quick": {
            "depth": 10,
            "width": 32,
            "batch": 64,
            "steps": 5,
            "lr": 0.01,
            "vanished": 0.01,
            "alive": 0.1,
        },
    },
    plan=plan,
    verdict=verdict,
    figures=figures,
    table=table,
    headline=headline,
    notes="The plain ReLU MLP is shown but not part of the rule.",
)
