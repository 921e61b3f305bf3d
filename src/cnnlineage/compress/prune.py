"""Pruning: structured channel pruning that really shrinks the tensors, and unstructured masks for contrast.

Structured pruning goes through Torch-Pruning (Fang et al., "DepGraph: Towards Any Structural
Pruning", CVPR 2023): its dependency graph groups every tensor slice that must go with a
removed channel (the next layer's inputs, BatchNorm statistics, residual additions,
concatenations, depthwise groups), and ``MetaPruner`` removes whole groups by importance:

- ``l1`` / ``l2``: the norm of each filter's weights (Li et al., "Pruning Filters for
  Efficient ConvNets", ICLR 2017 use L1);
- ``taylor``: the first-order Taylor estimate |w · ∂L/∂w| of the loss change (Molchanov et al.,
  "Importance Estimation for Neural Network Pruning", CVPR 2019), on a few training batches.

``ratio`` is the fraction of multiply-accumulates to remove: the pruner takes small steps
(channel ratio rising linearly) until the MACs reach ``(1 - ratio)`` of the original.
``global_pruning`` ranks all groups together instead of pruning each layer by the same share.

Groups that the dependency graph couples across layers of different widths, through an
operator it does not model (the zero-padding "option A" shortcut of the CIFAR ResNets), are
left unpruned and reported; for those networks this prunes only the inside of each residual
block, which is what Li et al. 2017 (§4.2) do for CIFAR ResNets.

Unstructured magnitude pruning (``torch.nn.utils.prune``) zeroes single weights: the tensors
keep their shapes, so dense latency and file size do not change (measured by the report).
"""

from __future__ import annotations

import copy
import io
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.nn.utils.prune as tprune

from ..common import atomic_savefig, atomic_write_text

__all__ = [
    "IMPORTANCES",
    "PruneResult",
    "count_macs_params",
    "finetune_pruned",
    "plot_sensitivity",
    "prune_checkpoint",
    "prune_structured",
    "prune_unstructured",
    "prunable_layers",
    "sensitivity_scan",
]

IMPORTANCES = ("l1", "l2", "taylor")


@dataclass
class PruneResult:
    """What a pruning step did: MACs and parameters before/after, and the layers it left alone."""

    macs_before: int
    macs_after: int
    params_before: int
    params_after: int
    steps: int = 0
    skipped: dict[str, str] = field(default_factory=dict)  # layer -> why it was not pruned

    @property
    def macs_ratio(self) -> float:
        return 1.0 - self.macs_after / self.macs_before

    @property
    def params_ratio(self) -> float:
        return 1.0 - self.params_after / self.params_before


def _tp():
    try:
        import torch_pruning
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ValueError("structured pruning needs torch-pruning: pip install 'cnnlineage[compress]'") from e
    return torch_pruning


def check_ratio(ratio: float) -> float:
    """Return ``ratio`` if it lies in (0, 1); ValueError otherwise."""
    if not 0.0 < ratio < 1.0:
        raise ValueError(f"--ratio must be in (0, 1), the fraction to remove (e.g. 0.5); got {ratio}")
    return ratio


def count_macs_params(model: nn.Module, input_size: tuple[int, int, int]) -> tuple[int, int]:
    """Return (MACs, parameters) of one image through ``model`` (Torch-Pruning's counter)."""
    tp = _tp()
    was = model.training
    model.eval()
    macs, params = tp.utils.count_ops_and_params(model, torch.zeros(1, *input_size))
    model.train(was)
    return int(macs), int(params)


def _module_names(model: nn.Module) -> dict[nn.Module, str]:
    return {m: n for n, m in model.named_modules()}


def _mismatched_groups(model: nn.Module, example: torch.Tensor) -> dict[str, str]:
    """Return {layer: reason} for groups whose coupled layers have different widths (an op the graph misreads)."""
    tp = _tp()
    dg = tp.DependencyGraph().build_dependency(model, example_inputs=example)
    names = _module_names(model)
    out: dict[str, str] = {}
    for group in dg.get_all_groups(root_module_types=[nn.Conv2d, nn.Linear]):
        width = len(group[0].idxs)
        widths = set()
        for dep, _ in group:
            m = dep.target.module
            if isinstance(m, (nn.Conv2d, nn.Linear, nn.BatchNorm2d)):
                out_fn = dg.is_out_channel_pruning_fn(dep.handler)
                widths.add(dg.get_out_channels(m) if out_fn else dg.get_in_channels(m))
        if widths - {width}:
            for dep, _ in group:
                m = dep.target.module
                if isinstance(m, (nn.Conv2d, nn.Linear)) and dg.is_out_channel_pruning_fn(dep.handler):
                    out.setdefault(
                        names[m],
                        f"coupled with layers of widths {sorted(widths)} through an operator the dependency "
                        "graph does not model (e.g. a zero-padding shortcut)",
                    )
    return out


def _importance(name: str):
    tp = _tp()
    if name == "l1":
        return tp.importance.MagnitudeImportance(p=1)
    if name == "l2":
        return tp.importance.MagnitudeImportance(p=2)
    if name == "taylor":
        return tp.importance.TaylorImportance()
    raise ValueError(f"--importance must be one of {', '.join(IMPORTANCES)}; got {name!r}")


def prunable_layers(model: nn.Module, input_size: tuple[int, int, int]) -> tuple[list[str], dict[str, str]]:
    """Return (names of the conv/linear layers whose output channels can be pruned, {skipped layer: why})."""
    skipped = _mismatched_groups(model, torch.zeros(1, *input_size))
    head = model.get_classifier() if hasattr(model, "get_classifier") else None
    names = []
    for n, m in model.named_modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)) and n not in skipped:
            if m is head:
                skipped[n] = "the classifier: its outputs are the classes"
            else:
                names.append(n)
    return names, skipped


def prune_structured(
    model: nn.Module,
    *,
    ratio: float,
    input_size: tuple[int, int, int],
    importance: str = "l1",
    global_pruning: bool = False,
    batches: Iterable[tuple[torch.Tensor, torch.Tensor]] | None = None,
    max_steps: int = 100,
) -> PruneResult:
    """Return what pruning ``model`` in place to ``(1 - ratio)`` of its MACs did; ``batches`` feed ``taylor``."""
    tp = _tp()
    check_ratio(ratio)
    imp = _importance(importance)
    if importance == "taylor" and batches is None:
        raise ValueError("taylor importance needs training batches for its gradients")
    example = torch.zeros(1, *input_size)
    model.eval()
    macs0, params0 = count_macs_params(model, input_size)
    names, skipped = prunable_layers(model, input_size)
    by_name = dict(model.named_modules())
    ignored = [by_name[n] for n in skipped]
    pruner = tp.pruner.MetaPruner(
        model,
        example,
        importance=imp,
        pruning_ratio=0.95,  # the ceiling per layer; the MACs target stops the steps long before
        iterative_steps=max_steps,
        global_pruning=global_pruning,
        ignored_layers=ignored,
        round_to=None,
    )
    batch_list = list(batches) if batches is not None else []
    steps, macs = 0, macs0
    while macs > (1.0 - ratio) * macs0 and steps < max_steps:
        if importance == "taylor":
            model.zero_grad()
            for x, y in batch_list:
                F.cross_entropy(model(x), y).backward()
        pruner.step()
        steps += 1
        macs, _ = count_macs_params(model, input_size)
    model.zero_grad(set_to_none=True)
    macs1, params1 = count_macs_params(model, input_size)
    if macs1 == macs0:
        raise ValueError(
            f"no channel of {getattr(model, 'model_name', 'the model')} could be pruned: {skipped}"
        )
    return PruneResult(macs0, macs1, params0, params1, steps, skipped)


def _weights(model: nn.Module) -> list[tuple[nn.Module, str]]:
    return [(m, "weight") for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


def prune_unstructured(model: nn.Module, *, ratio: float, global_pruning: bool = False) -> float:
    """Return the sparsity of the conv/linear weights after zeroing the ``ratio`` smallest |w| (in place, masks folded)."""
    check_ratio(ratio)
    params = _weights(model)
    if global_pruning:
        tprune.global_unstructured(params, pruning_method=tprune.L1Unstructured, amount=ratio)
    else:
        for m, name in params:
            tprune.l1_unstructured(m, name, amount=ratio)
    for m, name in params:
        tprune.remove(m, name)  # fold the mask into the weight: a dense tensor with zeros
    total = sum(m.weight.numel() for m, _ in params)
    zeros = sum(int((m.weight == 0).sum()) for m, _ in params)
    return zeros / total


def sensitivity_scan(
    model: nn.Module,
    *,
    input_size: tuple[int, int, int],
    evaluate: Callable[[nn.Module], float],
    ratios: tuple[float, ...] = (0.1, 0.3, 0.5, 0.7, 0.9),
    progress: Callable[[str], None] | None = None,
) -> list[dict[str, Any]]:
    """Return [{"layer", "ratio", "top1"}]: held-out top-1 after pruning each layer alone (L1, with its group)."""
    tp = _tp()
    names, _ = prunable_layers(model, input_size)
    rows = [{"layer": "(none)", "ratio": 0.0, "top1": evaluate(model)}]
    for name in names:
        for r in ratios:
            m = copy.deepcopy(model).eval()
            layer = m.get_submodule(name)
            dg = tp.DependencyGraph().build_dependency(m, example_inputs=torch.zeros(1, *input_size))
            w = layer.weight.detach().flatten(1).abs().sum(1)  # L1 norm per output channel
            n = int(round(r * len(w)))
            if n < 1 or n >= len(w):
                continue
            idxs = w.argsort()[:n].tolist()
            fn = tp.prune_conv_out_channels if isinstance(layer, nn.Conv2d) else tp.prune_linear_out_channels
            group = dg.get_pruning_group(layer, fn, idxs=idxs)
            if dg.check_pruning_group(group):
                group.prune()
            rows.append({"layer": name, "ratio": r, "top1": evaluate(m)})
            if progress:
                progress(name)
    return rows


def plot_sensitivity(rows: list[dict[str, Any]], path: str | Path, *, title: str = "") -> Path:
    """Plot held-out top-1 against the pruned share of each layer alone; return the PNG path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    base = next(r["top1"] for r in rows if r["layer"] == "(none)")
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for layer in dict.fromkeys(r["layer"] for r in rows if r["layer"] != "(none)"):
        pts = [(0.0, base)] + [(r["ratio"], r["top1"]) for r in rows if r["layer"] == layer]
        ax.plot(*zip(*pts), marker="o", ms=3, label=layer)
    ax.set_xlabel("share of the layer's output channels pruned (L1, with its dependency group)")
    ax.set_ylabel("held-out top-1 %")
    ax.set_title(title or "per-layer pruning sensitivity")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=6, ncol=2)
    atomic_savefig(fig, path)
    plt.close(fig)
    return Path(path)


def prune_checkpoint(
    checkpoint: str | Path,
    out: str | Path,
    *,
    ratio: float,
    structured: bool = True,
    importance: str = "l1",
    global_pruning: bool = False,
    finetune_epochs: int = 0,
    scan: bool = False,
    scan_ratios: tuple[float, ...] = (0.1, 0.3, 0.5, 0.7, 0.9),
    test_subset: int = 0,
    overwrite: bool = False,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Return the pruning record after writing ``out``/pruned.pt (+ prune.json, sensitivity.png, finetune/)."""
    from ..models._resize import pruned_structure
    from ..train.checkpoint import save_checkpoint
    from ._data import load_checkpoint_data
    from .report import measure_latency, state_dict_bytes

    check_ratio(ratio)
    if importance not in IMPORTANCES:
        raise ValueError(f"--importance must be one of {', '.join(IMPORTANCES)}; got {importance!r}")
    if finetune_epochs < 0:
        raise ValueError(f"--finetune-epochs must be >= 0; got {finetune_epochs}")
    out = Path(out)
    if (out / "pruned.pt").exists() and not overwrite:
        raise ValueError(f"{out / 'pruned.pt'} exists; pass --overwrite to replace it or pick another --out")
    data = load_checkpoint_data(checkpoint, test_subset=test_subset)
    size = data.input_size
    model, reference = data.model, copy.deepcopy(data.model)

    def top1(m: nn.Module) -> float:
        return data.evaluate(m)["top1"]

    record: dict[str, Any] = {"checkpoint": str(checkpoint), "ratio": ratio, "top1_before": top1(model)}
    rows = None
    if scan:
        log(f"sensitivity scan: each prunable layer alone at {scan_ratios}")
        rows = sensitivity_scan(reference, input_size=size, evaluate=top1, ratios=scan_ratios)
    if structured:
        batches = list(data.batches(4)) if importance == "taylor" else None
        res = prune_structured(
            model, ratio=ratio, input_size=size, importance=importance,
            global_pruning=global_pruning, batches=batches,
        )  # fmt: skip
        from ..analysis import profile

        before, after = profile(reference, size), profile(model, size)  # the analyzer's counts, as `summary`
        record.update(
            method="structured", importance=importance, global_pruning=global_pruning,
            macs_before=before.total_macs, macs_after=after.total_macs, params_before=before.total_params,
            params_after=after.total_params, skipped=res.skipped,
        )  # fmt: skip
    else:
        sparsity = prune_unstructured(model, ratio=ratio, global_pruning=global_pruning)
        sparse = {k: v.to_sparse() if v.dim() > 1 else v for k, v in model.state_dict().items()}
        buf = io.BytesIO()
        torch.save(sparse, buf)
        x = data.example(1)
        lat = measure_latency({"dense": reference.eval(), "masked": model.eval()}, x, rounds=20)
        record.update(
            method="unstructured", sparsity=sparsity, dense_bytes_before=state_dict_bytes(reference),
            dense_bytes_after=state_dict_bytes(model), sparse_coo_bytes_after=buf.tell(),
            latency_ms_before=lat["dense"], latency_ms_after=lat["masked"],
        )  # fmt: skip
    record["top1_after"] = top1(model)
    structure = pruned_structure(model, reference)
    ckpt = data.base_checkpoint()
    ckpt["config"] = copy.deepcopy(ckpt["config"])
    ckpt["config"]["model"]["pruned"] = structure
    ckpt["config"]["finetune"]["checkpoint"] = ""
    ckpt.update(model=model.state_dict(), compression={k: v for k, v in record.items() if k != "skipped"})
    out.mkdir(parents=True, exist_ok=True)
    save_checkpoint(ckpt, out / "pruned.pt")
    if rows is not None:
        atomic_write_text(out / "sensitivity.json", json.dumps(rows, indent=1) + "\n")
        plot_sensitivity(
            rows, out / "sensitivity.png", title=f"{data.meta['model_name']}: per-layer sensitivity"
        )
        record["sensitivity"] = str(out / "sensitivity.png")
    if finetune_epochs:
        record["finetune"] = finetune_pruned(
            out / "pruned.pt", out / "finetune", epochs=finetune_epochs, overwrite=overwrite
        )
    atomic_write_text(out / "prune.json", json.dumps(record, indent=2) + "\n")
    return record


def finetune_pruned(
    pruned: Path, run_dir: Path, *, epochs: int, lr_mult: float = 0.1, overwrite: bool = False
) -> dict[str, Any]:
    """Return the trainer's summary after fine-tuning the pruned checkpoint with its own recipe for ``epochs``.

    The recipe's peak learning rate is scaled by ``lr_mult`` (fine-tuning a trained network)
    and warm-up is dropped; the run is an ordinary trainer run directory, so
    ``cnnlineage train --resume RUN_DIR`` continues it after an interruption.
    """
    from ..train import Trainer, config_from_dict, load_checkpoint

    meta = load_checkpoint(pruned)
    values = copy.deepcopy(meta["config"])
    values.update(epochs=epochs)
    values["optim"]["lr"] = float(f"{values['optim']['lr'] * lr_mult:.6g}")
    values["schedule"]["warmup_epochs"] = 0.0
    values["finetune"].update(checkpoint=str(pruned), mode="full")
    values["run"].update(out_dir=str(run_dir), progress="none", tensorboard=False)
    cfg = config_from_dict(values)
    return Trainer(cfg, overwrite=overwrite).fit()
