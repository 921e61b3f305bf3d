"""Fold inference-mode BatchNorm into the convolution or linear layer that feeds it.

In eval mode BatchNorm is an affine map per channel, ``y = γ (x − μ) / √(σ² + ε) + β``
(Ioffe & Szegedy 2015, Alg. 1), so after a convolution ``x = W * z + b`` it can be
absorbed: ``W' = W · γ/√(σ²+ε)`` per output channel and ``b' = (b − μ) · γ/√(σ²+ε) + β``.
The network then runs one layer where it ran two, with the same outputs up to float
rounding. A BatchNorm can be folded only when its input is the output of a convolution
(or linear layer) that feeds nothing else; pre-activation BatchNorms (BN → ReLU → conv, as
in pre-activation ResNets and DenseNet) have no such producer and stay, and the report
says which.

The producer/consumer structure comes from ``torch.fx`` (the graph says who feeds whom);
where a model cannot be traced, only convolutions directly followed by a BatchNorm in an
``nn.Sequential`` are folded. The arithmetic is torch's ``fuse_conv_bn_eval`` /
``fuse_linear_bn_eval``. The analyzer counts the folded model like any other:
``profile(fold_batchnorm(model)[0])``.
"""

from __future__ import annotations

import copy
from collections import Counter
from dataclasses import dataclass, field

import torch.nn as nn
from torch.nn.utils.fusion import fuse_conv_bn_eval, fuse_linear_bn_eval

__all__ = ["FoldReport", "find_foldable", "fold_batchnorm"]

_BN = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)
_CONV = {nn.Conv1d: nn.BatchNorm1d, nn.Conv2d: nn.BatchNorm2d, nn.Conv3d: nn.BatchNorm3d}


@dataclass
class FoldReport:
    """Which BatchNorm layers were folded into which producer, which stayed, and the parameters saved."""

    folded: list[tuple[str, str]] = field(default_factory=list)  # (conv or linear, batchnorm) module paths
    unfolded: list[str] = field(default_factory=list)  # BatchNorms without a foldable producer
    params_before: int = 0
    params_after: int = 0
    method: str = "fx"  # "fx" (graph) or "sequential" (fallback: adjacency inside nn.Sequential)

    def to_dict(self) -> dict:
        """Return the report as a JSON-serialisable dict."""
        return {
            "folded": [list(p) for p in self.folded],
            "unfolded": self.unfolded,
            "params_before": self.params_before,
            "params_after": self.params_after,
            "method": self.method,
        }


def _fits(producer: nn.Module, bn: nn.Module) -> bool:
    if not isinstance(bn, _BN) or not bn.track_running_stats or bn.running_mean is None:
        return False
    if type(producer) in _CONV:
        return isinstance(bn, _CONV[type(producer)]) and producer.out_channels == bn.num_features
    return (
        isinstance(producer, nn.Linear)
        and isinstance(bn, nn.BatchNorm1d)
        and producer.out_features == bn.num_features
    )


def find_foldable(model: nn.Module) -> tuple[list[tuple[str, str]], list[str], str]:
    """Return ((producer, batchnorm) pairs that can be folded, BatchNorms that cannot, the method used)."""
    bns = [n for n, m in model.named_modules() if isinstance(m, _BN)]
    try:
        import torch.fx

        graph = torch.fx.symbolic_trace(model).graph
        calls = Counter(n.target for n in graph.nodes if n.op == "call_module")
        pairs = []
        for node in graph.nodes:
            if node.op != "call_module" or not isinstance(model.get_submodule(node.target), _BN):
                continue
            src = node.args[0] if node.args else None
            if (
                isinstance(src, torch.fx.Node)
                and src.op == "call_module"
                and len(src.users) == 1  # the conv's output feeds this BatchNorm only
                and calls[src.target] == 1  # the conv is not shared (called once)
                and calls[node.target] == 1
                and _fits(model.get_submodule(src.target), model.get_submodule(node.target))
            ):
                pairs.append((src.target, node.target))
        method = "fx"
    except Exception:  # noqa: BLE001 - untraceable model: adjacency in Sequential containers only
        pairs, method = [], "sequential"
        for name, m in model.named_modules():
            if type(m) is nn.Sequential or (
                isinstance(m, nn.Sequential) and type(m).forward is nn.Sequential.forward
            ):
                kids = list(m.named_children())
                for (a, ma), (b, mb) in zip(kids, kids[1:]):
                    if _fits(ma, mb):
                        prefix = f"{name}." if name else ""
                        pairs.append((prefix + a, prefix + b))
    done = {b for _, b in pairs}
    return pairs, [b for b in bns if b not in done], method


def _set(model: nn.Module, path: str, module: nn.Module) -> None:
    parent, _, leaf = path.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, leaf, module)


def fold_batchnorm(model: nn.Module, *, inplace: bool = False) -> tuple[nn.Module, FoldReport]:
    """Return (the model in eval mode with every foldable BatchNorm folded, the :class:`FoldReport`).

    The folded BatchNorms become ``nn.Identity``; the model keeps its class and methods.
    Only for inference: training the folded model is not training the original.
    """
    model = (model if inplace else copy.deepcopy(model)).eval()
    before = sum(p.numel() for p in model.parameters())
    pairs, unfolded, method = find_foldable(model)
    for prod, bn in pairs:
        p, b = model.get_submodule(prod), model.get_submodule(bn)
        fused = fuse_linear_bn_eval(p, b) if isinstance(p, nn.Linear) else fuse_conv_bn_eval(p, b)
        _set(model, prod, fused)
        _set(model, bn, nn.Identity())
    after = sum(p.numel() for p in model.parameters())
    return model, FoldReport(pairs, unfolded, before, after, method)
