"""The lineage's claims as experiments anyone can rerun: claim, protocol, measurement, plots, verdict rule.

Each module of this package states one claim from a paper, tests it on the bundled data
(mnist5k, digits, shapes10) with networks from the registry (or a small network that varies
one part, see :mod:`.nets`), trains with :func:`cnnlineage.train.train`'s trainer (run
directories, seeds, exact resume) and judges the claim by a rule on the measured numbers.
matplotlib draws the figures; the trainer does the training.

``run_experiment(get_experiment("xor"), out="runs/experiments/xor")`` or
``cnnlineage experiment run xor``.
"""

from __future__ import annotations

import difflib
import importlib

from .base import (
    HOLDS,
    NOT_AT_THIS_SCALE,
    SEEDS_DISAGREE,
    Experiment,
    Unit,
    Verdict,
    run_experiment,
    verdict_from_seeds,
)
from .report import assemble_report, experiment_markdown

__all__ = [
    "HOLDS",
    "NOT_AT_THIS_SCALE",
    "SEEDS_DISAGREE",
    "Experiment",
    "Unit",
    "Verdict",
    "assemble_report",
    "experiment_markdown",
    "get_experiment",
    "list_experiments",
    "run_experiment",
    "verdict_from_seeds",
]

# experiment name -> module, in the order of the lineage's argument
_MODULES = {
    "xor": "xor",
    "why-cnn": "why_cnn",
    "relu-vs-tanh": "relu_vs_tanh",
    "lrn-vs-bn": "lrn_vs_bn",
    "regularization": "regularization",
    "small-filters": "small_filters",
    "cost-of-convolutions": "cost_of_convolutions",
    "batchnorm": "batchnorm",
    "gradient-flow": "gradient_flow",
    "highway": "highway",
    "degradation": "degradation",
    "residual-ensembles": "residual_ensembles",
    "effective-receptive-field": "effective_rf",
    "compound-scaling": "compound_scaling",
}


def _available() -> dict[str, str]:
    return {k: v for k, v in _MODULES.items() if importlib.util.find_spec(f"{__name__}.{v}") is not None}


def list_experiments() -> list[str]:
    """Return the names of the experiments, in the order of the lineage's argument."""
    return list(_available())


def get_experiment(name: str) -> Experiment:
    """Return the experiment called ``name``; ValueError naming the closest names if there is none."""
    available = _available()
    if name not in available:
        close = difflib.get_close_matches(name, list(available), n=3, cutoff=0.4)
        hint = f"; did you mean {' or '.join(close)}?" if close else "."
        raise ValueError(
            f"unknown experiment {name!r}{hint} Run `cnnlineage experiment list` to see all {len(available)}."
        )
    return importlib.import_module(f"{__name__}.{available[name]}").EXPERIMENT
