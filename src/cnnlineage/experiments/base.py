"""The frame every experiment shares: claim, protocol, units of work, verdict rule, results and report.

An :class:`Experiment` is data plus four functions: ``plan`` splits the work into
:class:`Unit` s (one condition under one seed), ``verdict`` turns the measured numbers into a
:class:`Verdict` by the rule written in ``rule``, ``figures`` draws the PNGs and ``table``
writes the key numbers as Markdown. :func:`run_experiment` runs the units that are not done
yet (each finished unit is saved at once, atomically, under ``<out>/units/``; a training
unit killed half-way continues from its trainer checkpoint), then writes ``results.json``,
the figures and ``report.md``.

Verdicts come from numbers only: a rule decides, for each seed, whether the claim held on
that seed; :func:`verdict_from_seeds` then says "holds" (every seed), "does not hold at this
scale" (no seed) or "inconclusive (seeds disagree)".
"""

from __future__ import annotations

import json
import math
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..common import atomic_write_text

__all__ = [
    "HOLDS",
    "NOT_AT_THIS_SCALE",
    "SEEDS_DISAGREE",
    "Context",
    "Experiment",
    "Unit",
    "Verdict",
    "run_experiment",
    "verdict_from_seeds",
]

HOLDS = "holds"
NOT_AT_THIS_SCALE = "does not hold at this scale"
SEEDS_DISAGREE = "inconclusive (seeds disagree)"
MARKER = "experiment.json"  # names the experiment and budget that own an output directory


@dataclass(frozen=True)
class Verdict:
    """The outcome of a rule: the verdict string, whether it held on each seed, and the numbers behind it."""

    outcome: str  # HOLDS, NOT_AT_THIS_SCALE or SEEDS_DISAGREE
    per_seed: dict[int, bool]  # did the claim hold on this seed?
    reason: str  # the measured numbers the rule looked at, in one or two sentences

    def to_dict(self) -> dict[str, Any]:
        """Return the verdict as a JSON-serialisable dict."""
        return {
            "outcome": self.outcome,
            "per_seed": {str(k): v for k, v in self.per_seed.items()},
            "reason": self.reason,
        }


def verdict_from_seeds(per_seed: dict[int, bool], reason: str) -> Verdict:
    """Return the Verdict of per-seed outcomes: holds on all seeds, on none, or seeds disagree."""
    if not per_seed:
        raise ValueError("a verdict needs at least one seed's outcome")
    values = set(bool(v) for v in per_seed.values())
    outcome = SEEDS_DISAGREE if len(values) == 2 else (HOLDS if values == {True} else NOT_AT_THIS_SCALE)
    return Verdict(outcome, {int(k): bool(v) for k, v in per_seed.items()}, reason)


@dataclass(frozen=True)
class Unit:
    """One piece of work: a condition under one seed; ``run(ctx)`` returns JSON-serialisable numbers."""

    key: str  # unique within the experiment, used as a file name: "relu-s0"
    seed: int
    params: dict[str, Any]  # the condition, recorded with the result
    run: Callable[[Context], dict[str, Any]]


@dataclass(frozen=True)
class Experiment:
    """A claim of the lineage, the protocol that tests it and the rule that judges it."""

    name: str  # CLI name, e.g. "relu-vs-tanh"
    title: str  # one line
    claim: str  # the claim in our own words
    source: str  # paper, figure or table
    protocol: str  # models, data, recipe and budget; may use {placeholders} from the budget
    rule: str  # the verdict rule, in words, fixed before running
    budgets: dict[str, dict[str, Any]]  # "full" and "quick" settings
    plan: Callable[[dict[str, Any], list[int]], list[Unit]]  # (budget, seeds) -> units
    verdict: Callable[[dict[str, Any]], Verdict]  # results -> verdict
    figures: Callable[[dict[str, Any], Path], list[Path]]  # (results, out dir) -> PNG paths
    table: Callable[[dict[str, Any]], str]  # results -> Markdown table of the key numbers
    headline: Callable[[dict[str, Any]], str] | None = None  # results -> the key numbers in one line
    default_seeds: int = 3
    seed_word: str = "seed"  # what a "seed" is here (e.g. "timing round")
    notes: str = ""  # deviations from the paper, said in the report

    def describe_protocol(self, budget: dict[str, Any]) -> str:
        """Return the protocol text with the budget's values filled in."""
        return self.protocol.format(**budget)


@dataclass
class Context:
    """What a unit may use: its own directory, the budget, a logger and the trainer."""

    root: Path  # the experiment's output directory
    unit_dir: Path  # <root>/runs/<unit key>
    budget: dict[str, Any]
    log: Callable[[str], None] = print
    timings: dict[str, float] = field(default_factory=dict)

    def train(self, cfg: dict[str, Any], *, name: str = "") -> dict[str, Any]:
        """Return {"summary", "history", "run_dir"} of a trainer run in the unit's directory (resumed if killed).

        A run directory with ``summary.json`` is finished and is read back, not trained again;
        one with only a checkpoint continues from it (the trainer's exact resume).
        """
        from ..train import Trainer, config_from_dict
        from .nets import experiment_models

        run_dir = self.unit_dir / name if name else self.unit_dir
        summary_path = run_dir / "summary.json"
        if not summary_path.is_file():
            quiet = {"progress": "none", "tensorboard": False, "plots": False, "out_dir": str(run_dir)}
            cfg = {**cfg, "run": {**cfg.get("run", {}), **quiet}}
            resume = (run_dir / "checkpoints" / "last.pt").is_file()
            with experiment_models():
                Trainer(config_from_dict(cfg), resume=resume, log=lambda *_: None).fit()
        summary = json.loads(summary_path.read_text())
        lines = (run_dir / "metrics.jsonl").read_text().splitlines()
        history = [json.loads(line) for line in lines if line.strip()]
        for h in history:  # per-class lists are not needed by any experiment; keep results.json small
            h.pop("test_per_class", None)
        return {"summary": summary, "history": history, "run_dir": str(run_dir)}


# ---------------------------------------------------------------------------- running
def _check_out_dir(exp: Experiment, out: Path, mode: str, budget: dict[str, Any]) -> None:
    marker = out / MARKER
    if marker.is_file():
        owner = json.loads(marker.read_text())
        if owner.get("experiment") != exp.name:
            raise ValueError(
                f"{out} holds the results of experiment {owner.get('experiment')!r}, not {exp.name!r}; "
                f"pick another --out (nothing was changed)"
            )
        if owner.get("budget") != mode:
            held, asked = owner.get("budget"), mode
            flag = "with --quick" if held == "quick" else "without --quick"
            raise ValueError(
                f"{out} holds a {held}-budget run of {exp.name}, but a {asked}-budget run was asked for; rerun it "
                f"{flag} to continue it, or pick another --out (nothing was changed)"
            )
        if "settings" in owner and owner["settings"] != json.loads(json.dumps(budget)):
            raise ValueError(
                f"{out} holds a run of {exp.name} made with other {mode}-budget settings ({owner['settings']}); "
                f"its units cannot be mixed with this version's ({budget}); pick another --out (nothing was changed)"
            )
    elif out.exists() and any(out.iterdir()):
        raise ValueError(
            f"{out} exists and is not an experiment directory (no {MARKER}); pick an empty or new --out "
            f"(nothing was changed)"
        )


def environment() -> dict[str, Any]:
    """Return the software and machine the numbers were measured on."""
    return {
        "torch": torch.__version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "processor": platform.processor() or platform.machine(),
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.is_available(),
    }


def run_experiment(
    exp: Experiment,
    *,
    out: str | Path,
    seeds: int | None = None,
    quick: bool = False,
    log: Callable[[str], None] = print,
    progress: bool = True,
) -> dict[str, Any]:
    """Return the results of ``exp`` (also written to ``out``): units not yet done are run, finished ones reused."""
    if seeds is None:  # the quick budget checks the plumbing: two seeds show the spread
        seeds = min(exp.default_seeds, 2) if quick else exp.default_seeds
    if not isinstance(seeds, int) or isinstance(seeds, bool) or seeds < 1:
        raise ValueError(f"--seeds must be a positive integer (how many seeds to run), got {seeds!r}")
    out = Path(out)
    mode = "quick" if quick else "full"
    budget = dict(exp.budgets[mode])
    _check_out_dir(exp, out, mode, budget)
    (out / "units").mkdir(parents=True, exist_ok=True)
    marker = {"experiment": exp.name, "budget": mode, "settings": budget}
    atomic_write_text(out / MARKER, json.dumps(marker) + "\n")
    units = exp.plan(budget, list(range(seeds)))
    keys = [u.key for u in units]
    if len(set(keys)) != len(keys):  # pragma: no cover - an experiment's plan is wrong
        raise RuntimeError(f"{exp.name}: unit keys are not unique")
    done: dict[str, dict[str, Any]] = {}
    todo = []
    for u in units:
        path = out / "units" / f"{u.key}.json"
        if path.is_file():
            done[u.key] = json.loads(path.read_text())
        else:
            todo.append(u)
    if done:
        log(
            f"{exp.name}: {len(done)} of {len(units)} units already done in {out}; running the other {len(todo)}"
        )
    bar = None
    if progress and todo:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(todo), desc=exp.name, unit="unit", leave=False)
    for u in todo:
        ctx = Context(root=out, unit_dir=out / "runs" / u.key, budget=budget, log=log)
        t0 = time.perf_counter()
        data = u.run(ctx)
        record = {
            "key": u.key,
            "seed": u.seed,
            "params": u.params,
            "seconds": time.perf_counter() - t0,
            "data": data,
        }
        atomic_write_text(out / "units" / f"{u.key}.json", json.dumps(_finite(record)) + "\n")
        done[u.key] = record
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    results = {
        "experiment": exp.name,
        "title": exp.title,
        "claim": exp.claim,
        "source": exp.source,
        "protocol": exp.describe_protocol(budget),
        "rule": exp.rule,
        "notes": exp.notes,
        "budget_name": mode,
        "budget": budget,
        "seeds": list(range(seeds)),
        "seed_word": exp.seed_word,
        "units": {k: done[k] for k in keys},
        "seconds": sum(done[k]["seconds"] for k in keys),
        "environment": environment(),
    }
    results["verdict"] = exp.verdict(results).to_dict()
    results["headline"] = exp.headline(results) if exp.headline else ""
    results["figures"] = [p.name for p in exp.figures(results, out)]
    atomic_write_text(out / "results.json", json.dumps(_finite(results), indent=1) + "\n")
    from .report import experiment_markdown

    atomic_write_text(out / "report.md", experiment_markdown(results, exp, figure_dir=""))
    return results


def _finite(obj: Any) -> Any:
    """Return ``obj`` with non-finite floats replaced by None (JSON has no NaN or infinity)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


# ---------------------------------------------------------------------------- helpers for rules
def by_condition(results: dict[str, Any]) -> dict[str, dict[int, dict[str, Any]]]:
    """Return the units' data grouped as {condition: {seed: data}} (condition = key without "-s<seed>")."""
    out: dict[str, dict[int, dict[str, Any]]] = {}
    for key, rec in results["units"].items():
        cond = key.rsplit("-s", 1)[0]
        out.setdefault(cond, {})[int(rec["seed"])] = rec["data"]
    return out


def seeds_of(results: dict[str, Any]) -> list[int]:
    """Return the seeds present in the results, sorted."""
    return sorted({int(r["seed"]) for r in results["units"].values()})


def recipe(
    model: str,
    *,
    seed: int,
    epochs: int,
    data: str = "mnist5k",
    lr: float = 0.01,
    optim: str = "sgd",
    schedule: str = "none",
    warmup_epochs: float = 0.0,
    weight_decay: float = 0.0,
    batch_size: int = 64,
    train_subset: int = 0,
    test_subset: int = 0,
    image_size: int = 0,
    kwargs: dict[str, Any] | None = None,
    augment: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Return a trainer config dict (see :class:`cnnlineage.train.TrainConfig`) for one experiment run."""
    return {
        "model": {"name": model, "kwargs": dict(kwargs or {})},
        "data": {
            "name": data,
            "batch_size": batch_size,
            "train_subset": train_subset,
            "test_subset": test_subset,
            "image_size": image_size,
        },
        "augment": dict(augment or {}),
        "optim": {"name": optim, "lr": lr, "weight_decay": weight_decay},
        "schedule": {"name": schedule, "warmup_epochs": warmup_epochs},
        "epochs": epochs,
        "seed": seed,
    }


def load_trained(run_dir: str | Path, *, which: str = "last") -> tuple[torch.nn.Module, dict[str, Any]]:
    """Return (model in eval mode, checkpoint metadata) rebuilt from a trainer run's checkpoint (weights_only)."""
    from ..registry import create_model
    from ..train import load_checkpoint
    from .nets import experiment_models

    state = load_checkpoint(Path(run_dir) / "checkpoints" / f"{which}.pt")
    kwargs = dict(state["config"]["model"].get("kwargs", {}))
    with experiment_models():
        model = create_model(
            state["model_name"], num_classes=state["num_classes"], in_chans=state["in_chans"], **kwargs
        )
    model.load_state_dict(state["model"])
    return model.eval(), state


def split_tensors(dataset: str, *, train: bool = False, subset: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Return (uint8 images (N, C, H, W), labels) of a bundled dataset's test (or training) split."""
    from ..data import build_datasets

    tr, te, _ = build_datasets(dataset)
    base = (tr if train else te).subset(subset)
    return base.images, base.labels


@torch.no_grad()
def accuracy(
    model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor, state: dict[str, Any]
) -> float:
    """Return top-1 (%) of ``model`` on uint8 images normalised with the checkpoint's mean and std."""
    mean = torch.tensor(state["mean"]).view(1, -1, 1, 1)
    std = torch.tensor(state["std"]).view(1, -1, 1, 1)
    correct = 0
    for i in range(0, len(images), 500):
        x = (images[i : i + 500].float() / 255.0 - mean) / std
        correct += int((model(x).argmax(1) == labels[i : i + 500]).sum())
    return 100.0 * correct / max(1, len(images))
