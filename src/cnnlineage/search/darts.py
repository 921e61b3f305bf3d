"""DARTS search (Liu, Simonyan & Yang, ICLR 2019, arXiv:1806.09055), first and second order.

Every edge of a cell computes a softmax-weighted mixture of all candidate operations
(§2.2, Eq. 2); the mixture logits α of the normal and the reduction cell are the
architecture. Weights w and architecture α are optimised alternately: w by SGD on one
half of the training split, α by Adam on the other half (the bi-level problem of Eq. 3-4).

- first order (§2.3, ξ = 0): α follows ∇α L_val(w, α) at the current weights;
- second order: α follows ∇α L_val(w', α) at the weights after one virtual SGD step,
  w' = w − ξ ∇w L_train(w, α), with the Hessian-vector product of Eq. 7 approximated by
  central finite differences, ε = 0.01 / ‖∇w' L_val(w', α)‖ (Eq. 8).

Hardware-aware option (FBNet, Wu et al. 2019; ProxylessNAS, Cai et al. 2019): add
λ · E[cost] / cost₀ to the architecture loss, where E[cost] = Σ softmax(α)·cost(op) is the
expected cost of the mixture network, the cost of each candidate op being its MACs
(counted by cnnlineage's analyzer) or its latency measured on this machine, and cost₀ that
expectation at uniform α.

The derived genotype keeps, for every node, the two strongest incoming edges by their
strongest non-zero operation, and that operation (§2.4). The operations, the genotype
and the network built from it live in ``cnnlineage.models.darts``; this module holds the
search-time network (mixed operations, α) and the search loop, written here in plain
PyTorch (``torch.func.functional_call`` evaluates the virtual step without copying the network).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.func import functional_call

from ..models.darts import PRIMITIVES, FactorizedReduce, Genotype, ReLUConvBN, make_op
from .common import SearchData, SearchState, evaluate_tensors

__all__ = [
    "Architect",
    "MixedOp",
    "SearchCell",
    "SearchNetwork",
    "derive_genotype",
    "expected_cost",
    "op_costs",
    "run_darts",
]


# --------------------------------------------------------------------------- search network
class MixedOp(nn.Module):
    """One edge: Σ_o softmax(α)_o · o(x) over every candidate operation (Eq. 2)."""

    def __init__(self, channels: int, stride: int) -> None:
        super().__init__()
        ops = []
        for name in PRIMITIVES:
            op = make_op(name, channels, stride, affine=False)
            if "pool" in name:  # pooling gets a (non-affine) BN, as the convolutions have one
                op = nn.Sequential(op, nn.BatchNorm2d(channels, affine=False))
            ops.append(op)
        self.ops = nn.ModuleList(ops)

    def forward(self, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        return sum(w * op(x) for w, op in zip(weights, self.ops))


class SearchCell(nn.Module):
    """A cell whose every edge from an earlier node to an intermediate node is a :class:`MixedOp`."""

    def __init__(
        self,
        c_prev_prev: int,
        c_prev: int,
        channels: int,
        *,
        reduction: bool,
        reduction_prev: bool,
        steps: int,
    ) -> None:
        super().__init__()
        self.reduction = reduction
        self.steps = steps
        self.preprocess0 = (
            FactorizedReduce(c_prev_prev, channels, affine=False)
            if reduction_prev
            else ReLUConvBN(c_prev_prev, channels, 1, 1, 0, affine=False)
        )
        self.preprocess1 = ReLUConvBN(c_prev, channels, 1, 1, 0, affine=False)
        self.edges = nn.ModuleList(
            MixedOp(channels, 2 if reduction and j < 2 else 1) for i in range(steps) for j in range(2 + i)
        )

    def forward(self, s0: torch.Tensor, s1: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        offset = 0
        for _ in range(self.steps):
            states.append(sum(self.edges[offset + j](h, weights[offset + j]) for j, h in enumerate(states)))
            offset += len(states) - 1
        return torch.cat(states[2:], dim=1)  # (B, steps*C, H, W)


class SearchNetwork(nn.Module):
    """The over-parameterised network of the search: stem, ``layers`` search cells, pool, fc; α as parameters."""

    def __init__(
        self,
        *,
        channels: int = 16,
        layers: int = 8,
        num_classes: int = 10,
        in_chans: int = 3,
        steps: int = 4,
        stem_multiplier: int = 3,
    ) -> None:
        super().__init__()
        if layers < 3:
            raise ValueError(f"a DARTS search network needs at least 3 cells, got {layers}")
        self.steps, self.layers = steps, layers
        c = stem_multiplier * channels
        self.stem = nn.Sequential(nn.Conv2d(in_chans, c, 3, padding=1, bias=False), nn.BatchNorm2d(c))
        c_pp, c_p, c = c, c, channels
        self.cells = nn.ModuleList()
        reduction_prev = False
        for i in range(layers):
            reduction = i in (layers // 3, 2 * layers // 3)
            c = c * 2 if reduction else c
            self.cells.append(
                SearchCell(c_pp, c_p, c, reduction=reduction, reduction_prev=reduction_prev, steps=steps)
            )
            reduction_prev = reduction
            c_pp, c_p = c_p, steps * c
        self.global_pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_p, num_classes)
        k = sum(2 + i for i in range(steps))  # edges per cell: 14 for 4 nodes
        self.alphas_normal = nn.Parameter(1e-3 * torch.randn(k, len(PRIMITIVES)))
        self.alphas_reduce = nn.Parameter(1e-3 * torch.randn(k, len(PRIMITIVES)))

    def arch_parameters(self) -> list[nn.Parameter]:
        """Return [α_normal, α_reduce]."""
        return [self.alphas_normal, self.alphas_reduce]

    def named_weights(self) -> list[tuple[str, nn.Parameter]]:
        """Return the (name, parameter) pairs of the network weights w (everything but α)."""
        return [(n, p) for n, p in self.named_parameters() if not n.startswith("alphas_")]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w_normal = F.softmax(self.alphas_normal, dim=-1)
        w_reduce = F.softmax(self.alphas_reduce, dim=-1)
        s0 = s1 = self.stem(x)
        for cell in self.cells:
            s0, s1 = s1, cell(s0, s1, w_reduce if cell.reduction else w_normal)
        return self.classifier(torch.flatten(self.global_pool(s1), 1))

    def genotype(self) -> Genotype:
        """Return the genotype derived from the current α (§2.4)."""
        with torch.no_grad():
            return derive_genotype(
                F.softmax(self.alphas_normal, dim=-1), F.softmax(self.alphas_reduce, dim=-1), steps=self.steps
            )


def derive_genotype(w_normal: torch.Tensor, w_reduce: torch.Tensor, *, steps: int = 4) -> Genotype:
    """Return the genotype of mixture weights (edges x ops, rows ordered node by node, inputs first).

    For each intermediate node keep the two incoming edges whose strongest non-"none"
    operation is strongest, each with that operation (§2.4); ties keep the earlier input.
    """
    none = PRIMITIVES.index("none")

    def parse(w: torch.Tensor) -> tuple[tuple[str, int], ...]:
        if w.shape != (sum(2 + i for i in range(steps)), len(PRIMITIVES)):
            raise ValueError(f"mixture weights of shape {tuple(w.shape)} do not fit a {steps}-node cell")
        gene, start = [], 0
        for i in range(steps):
            rows = w[start : start + 2 + i].clone()
            rows[:, none] = -math.inf
            strength, best = rows.max(dim=1)
            order = sorted(range(2 + i), key=lambda j: (-float(strength[j]), j))[:2]
            gene += [(PRIMITIVES[int(best[j])], j) for j in order]
            start += 2 + i
        return tuple(gene)

    concat = tuple(range(2, 2 + steps))
    return Genotype(parse(w_normal), concat, parse(w_reduce), concat)


# --------------------------------------------------------------------------- hardware-aware cost
def op_costs(
    net: SearchNetwork, input_size: tuple[int, int, int], *, kind: str, batch_size: int = 1
) -> tuple[torch.Tensor, torch.Tensor]:
    """Return (normal, reduce) cost tables (edges x ops), summed over the cells of each kind.

    ``kind`` "macs" counts each candidate's multiply-accumulates with cnnlineage's
    analyzer at the shape it sees in the network; "latency" times it on this machine
    (median of 7 runs after a warm-up, milliseconds, at ``batch_size``).
    """
    if kind not in ("macs", "latency"):
        raise ValueError(f"cost must be 'macs' or 'latency', got {kind!r}")
    from ..analysis import profile

    shapes: list[tuple[int, int, int]] = []  # the input shape of each cell's edges, cell by cell
    hooks = [
        cell.preprocess1.register_forward_hook(lambda m, i, o: shapes.append(tuple(o.shape[1:])))
        for cell in net.cells
    ]
    was_training = net.training
    net.eval()
    with torch.no_grad():
        net(torch.zeros(1, *input_size))
    net.train(was_training)
    for h in hooks:
        h.remove()
    cache: dict[tuple[Any, ...], float] = {}
    tables = {False: torch.zeros_like(net.alphas_normal), True: torch.zeros_like(net.alphas_reduce)}
    for cell, shape in zip(net.cells, shapes):
        for e, mixed in enumerate(cell.edges):
            for o, op in enumerate(mixed.ops):
                stride = 2 if cell.reduction and _edge_input(e) < 2 else 1
                key = (PRIMITIVES[o], shape, stride)
                if key not in cache:
                    if PRIMITIVES[o] == "none":
                        cache[key] = 0.0
                    elif kind == "macs":
                        cache[key] = float(profile(op, shape).total_macs)
                    else:
                        cache[key] = _latency_ms(op, (batch_size, *shape))
                tables[cell.reduction][e, o] += cache[key]
    return tables[False], tables[True]


def _edge_input(edge: int) -> int:
    # Edges are ordered node by node: node i has inputs 0..i+1.
    i = 0
    while edge >= 2 + i:
        edge -= 2 + i
        i += 1
    return edge


def _latency_ms(op: nn.Module, shape: tuple[int, ...], reps: int = 7) -> float:
    x = torch.randn(shape)
    op.eval()
    with torch.no_grad():
        op(x)
        times = []
        for _ in range(reps):
            t = time.perf_counter()
            op(x)
            times.append(time.perf_counter() - t)
    op.train()
    return 1e3 * sorted(times)[reps // 2]


def expected_cost(net: SearchNetwork, tables: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    """Return Σ softmax(α)·cost over both cell kinds: the mixture network's expected cost (differentiable in α)."""
    return (F.softmax(net.alphas_normal, -1) * tables[0]).sum() + (
        F.softmax(net.alphas_reduce, -1) * tables[1]
    ).sum()


# --------------------------------------------------------------------------- architect
class Architect:
    """Updates α: first order (ξ = 0) or second order (one virtual SGD step, Eq. 6-8).

    The second-order step follows Eq. 7 with the Hessian-vector product by central
    differences of radius ``fd_radius`` (the paper's 0.01). On small, strongly curved
    networks that radius is coarse: the test checks the code against exact second
    derivatives at radius 1e-6 in float64 (at 1e-2 and 1e-4 a tiny network is
    still far from linear there).
    """

    def __init__(
        self,
        net: SearchNetwork,
        w_optimizer: torch.optim.SGD,
        *,
        order: int,
        lr: float = 3e-4,
        weight_decay: float = 1e-3,
        cost_tables: tuple[torch.Tensor, torch.Tensor] | None = None,
        cost_weight: float = 0.0,
        fd_radius: float = 0.01,
    ) -> None:
        if order not in (1, 2):
            raise ValueError(f"DARTS order must be 1 or 2, got {order}")
        self.net, self.w_optimizer, self.order = net, w_optimizer, order
        self.fd_radius = fd_radius  # ε·‖v‖ of the finite difference (Eq. 8 uses 0.01)
        # §3.1.2: Adam with momentum β = (0.5, 0.999) and weight decay 1e-3 for α.
        self.optimizer = torch.optim.Adam(
            net.arch_parameters(), lr=lr, betas=(0.5, 0.999), weight_decay=weight_decay
        )
        self.cost_tables, self.cost_weight = cost_tables, cost_weight
        self.cost_ref = 1.0
        if cost_tables is not None and cost_weight > 0:
            n = cost_tables[0].shape[1]
            self.cost_ref = float(cost_tables[0].sum() / n + cost_tables[1].sum() / n) or 1.0  # uniform α

    def cost_term(self) -> torch.Tensor:
        """Return λ · E[cost] / cost at uniform α (0 without a cost)."""
        if self.cost_tables is None or self.cost_weight <= 0:
            return torch.zeros(())
        return self.cost_weight * expected_cost(self.net, self.cost_tables) / self.cost_ref

    def step(
        self, xt: torch.Tensor, yt: torch.Tensor, xv: torch.Tensor, yv: torch.Tensor, eta: float
    ) -> float:
        """Take one α step; return the validation loss it followed."""
        self.optimizer.zero_grad(set_to_none=True)
        alphas = self.net.arch_parameters()
        if self.order == 1:
            loss = F.cross_entropy(self.net(xv), yv)
            grads = list(torch.autograd.grad(loss, alphas))
        else:
            loss, grads = self._unrolled_grads(xt, yt, xv, yv, eta)
        cost = self.cost_term()
        if cost.requires_grad:
            grads = [g + c for g, c in zip(grads, torch.autograd.grad(cost, alphas))]
        for a, g in zip(alphas, grads):
            a.grad = g
        self.optimizer.step()
        return float(loss.detach())

    def _unrolled_grads(
        self, xt: torch.Tensor, yt: torch.Tensor, xv: torch.Tensor, yv: torch.Tensor, eta: float
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        net = self.net
        names, weights = zip(*net.named_weights())
        alphas = net.arch_parameters()
        group = self.w_optimizer.param_groups[0]
        momentum, wd = group["momentum"], group["weight_decay"]
        # w' = w − ξ (∇w L_train + wd·w + momentum·buffer): the step SGD would take next.
        grads = torch.autograd.grad(F.cross_entropy(net(xt), yt), weights)
        unrolled = {}
        with torch.no_grad():
            for n, w, g in zip(names, weights, grads):
                buf = self.w_optimizer.state.get(w, {}).get("momentum_buffer")
                d = g + wd * w + (momentum * buf if buf is not None else 0.0)
                unrolled[n] = (w - eta * d).detach().requires_grad_(True)
        params = {**unrolled, "alphas_normal": alphas[0], "alphas_reduce": alphas[1]}
        loss = F.cross_entropy(functional_call(net, params, (xv,)), yv)
        out = torch.autograd.grad(loss, [*alphas, *unrolled.values()])
        d_alpha, v = list(out[:2]), out[2:]
        # Eq. 8: ∇²_{α,w} L_train · v ≈ (∇α L_train(w⁺) − ∇α L_train(w⁻)) / 2ε, w± = w ± ε v.
        eps = self.fd_radius / float(torch.cat([t.flatten() for t in v]).norm().clamp_min(1e-12))
        with torch.no_grad():
            for w, t in zip(weights, v):
                w.add_(t, alpha=eps)
        g_plus = torch.autograd.grad(F.cross_entropy(net(xt), yt), alphas)
        with torch.no_grad():
            for w, t in zip(weights, v):
                w.sub_(t, alpha=2 * eps)
        g_minus = torch.autograd.grad(F.cross_entropy(net(xt), yt), alphas)
        with torch.no_grad():
            for w, t in zip(weights, v):
                w.add_(t, alpha=eps)
        return loss.detach(), [
            da - eta * (gp - gm) / (2 * eps) for da, gp, gm in zip(d_alpha, g_plus, g_minus)
        ]


# --------------------------------------------------------------------------- the search loop
def run_darts(
    data: SearchData,
    out_dir: str,
    *,
    order: int = 1,
    epochs: int = 10,
    budget_minutes: float = 0.0,
    channels: int = 8,
    layers: int = 5,
    batch_size: int = 64,
    lr: float = 0.025,
    lr_min: float = 0.001,
    arch_lr: float = 3e-3,
    seed: int = 0,
    cost: str = "none",
    cost_weight: float = 0.0,
    checkpoint_every: int = 20,
    progress: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Return the search record (genotype, per-epoch history, α) of a DARTS search, resuming if ``out_dir`` has one.

    Weights: SGD, momentum 0.9, weight decay 3e-4, cosine from ``lr`` to ``lr_min``,
    gradients clipped at 5 (§3.1.2). α: Adam at ``arch_lr`` — 10x the paper's 3e-4 by
    default, since a laptop search takes ~50x fewer steps. ``budget_minutes`` (> 0) caps
    the number of epochs after timing the first steps; a budget too small for one epoch
    is refused with the minimum. The state is saved every ``checkpoint_every`` steps and
    at every epoch end, so a killed search continues where it stopped.
    """
    args = dict(
        data=data.name, order=order, epochs=epochs, budget_minutes=budget_minutes, channels=channels,
        layers=layers, batch_size=batch_size, lr=lr, lr_min=lr_min, arch_lr=arch_lr, seed=seed, cost=cost,
        cost_weight=cost_weight,
    )  # fmt: skip
    store = SearchState(out_dir, method=f"darts-{order}", args=args)
    torch.manual_seed(seed)
    net = SearchNetwork(
        channels=channels, layers=layers, num_classes=data.num_classes, in_chans=data.in_chans
    )
    w_opt = torch.optim.SGD([p for _, p in net.named_weights()], lr=lr, momentum=0.9, weight_decay=3e-4)
    shape = (data.in_chans, *data.size)
    tables = op_costs(net, shape, kind=cost, batch_size=batch_size) if cost != "none" else None
    architect = Architect(net, w_opt, order=order, lr=arch_lr, cost_tables=tables, cost_weight=cost_weight)
    n = min(len(data.y_search), len(data.y_val))
    per_epoch = max(1, n // batch_size)
    state = store.load()
    if state is None:
        state = {
            "epoch": 0,
            "batch": 0,
            "loss_sum": 0.0,
            "planned_epochs": epochs,
            "history": [],
            "seconds": 0.0,
        }
    else:
        net.load_state_dict(state["net"])
        w_opt.load_state_dict(state["w_opt"])
        architect.optimizer.load_state_dict(state["a_opt"])

    def save() -> None:
        store.save(
            {
                **state,
                "net": net.state_dict(),
                "w_opt": w_opt.state_dict(),
                "a_opt": architect.optimizer.state_dict(),
            }
        )

    t0 = time.perf_counter() - state["seconds"]
    while state["epoch"] < state["planned_epochs"]:
        epoch = state["epoch"]
        perm_s = torch.randperm(
            len(data.y_search), generator=torch.Generator().manual_seed(seed * 1000 + epoch)
        )
        perm_v = torch.randperm(
            len(data.y_val), generator=torch.Generator().manual_seed(seed * 1000 + epoch + 7)
        )
        total_steps = state["planned_epochs"] * per_epoch
        for b in range(state["batch"], per_epoch):
            step = epoch * per_epoch + b
            eta = lr_min + 0.5 * (lr - lr_min) * (1 + math.cos(math.pi * step / total_steps))
            for g in w_opt.param_groups:
                g["lr"] = eta
            it, iv = (
                perm_s[b * batch_size : (b + 1) * batch_size],
                perm_v[b * batch_size : (b + 1) * batch_size],
            )
            xt, yt, xv, yv = data.x_search[it], data.y_search[it], data.x_val[iv], data.y_val[iv]
            net.train()
            val_loss = architect.step(xt, yt, xv, yv, eta)
            loss = F.cross_entropy(net(xt), yt)
            w_opt.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_([p for _, p in net.named_weights()], 5.0)
            w_opt.step()
            state["loss_sum"] += float(loss.detach())
            state["batch"] = b + 1
            state["seconds"] = time.perf_counter() - t0
            if budget_minutes > 0 and epoch == 0 and b + 1 == min(5, per_epoch) and not state["history"]:
                epoch_s = state["seconds"] / (b + 1) * per_epoch * 1.15  # + evaluation and saving
                fit = int(budget_minutes * 60 // epoch_s)
                if fit < 1:
                    raise ValueError(
                        f"a budget of {budget_minutes:g} min is too small: one search epoch takes about "
                        f"{epoch_s:.0f} s here; give --budget {math.ceil(epoch_s / 60 * 10) / 10:g} or more"
                    )
                state["planned_epochs"] = min(state["planned_epochs"], fit)
                total_steps = state["planned_epochs"] * per_epoch
            if progress:
                progress({"epoch": epoch, "batch": b + 1, "per_epoch": per_epoch, "loss": float(loss.detach()),
                          "val_loss": val_loss, "planned_epochs": state["planned_epochs"]})  # fmt: skip
            if checkpoint_every and state["batch"] % checkpoint_every == 0 and state["batch"] < per_epoch:
                save()
        genotype = net.genotype()
        record = {
            "epoch": epoch + 1,
            "train_loss": state["loss_sum"] / per_epoch,
            "val_top1": evaluate_tensors(net, data.x_val, data.y_val),
            "seconds": time.perf_counter() - t0,
            "genotype": genotype.to_json(),
            "alphas_normal": F.softmax(net.alphas_normal.detach(), -1).tolist(),
            "alphas_reduce": F.softmax(net.alphas_reduce.detach(), -1).tolist(),
        }
        if tables is not None:
            record["expected_cost"] = float(expected_cost(net, tables))
        state["history"].append(record)
        state["epoch"], state["batch"], state["loss_sum"] = epoch + 1, 0, 0.0
        state["seconds"] = time.perf_counter() - t0
        save()
    return {
        "method": f"darts (order {order})",
        "genotype": net.genotype().to_dict(),
        "history": state["history"],
        "search_seconds": state["seconds"],
        "planned_epochs": state["planned_epochs"],
        "search_network": {"channels": channels, "layers": layers},
        "cost": cost,
        "cost_weight": cost_weight,
        "data": data.describe(),
    }
