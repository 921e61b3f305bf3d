"""One small site per test session: a handful of models, two tiny lenet5 runs trained here, one experiment folder."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

# the smallest model of several families, the two-tower AlexNet, and the largest layer table in the registry
SITE_MODELS = ["perceptron", "mlp", "lenet5", "alexnet", "resnet18", "resnet20", "mobilenet_v2",
               "vit_tiny_patch4_32", "preact_resnet1001"]  # fmt: skip
RUN_EPOCHS = 2


def _train(out: Path, seed: int) -> None:
    from cnnlineage.cli import main

    rc = main([
        "train", "lenet5", "--epochs", str(RUN_EPOCHS), "--batch-size", "32", "--seed", str(seed), "--out", str(out),
        "--quiet", "--set", "data.train_subset=256", "--set", "data.test_subset=128", "--set", "run.tensorboard=false",
        "--set", "threads=1",
    ])  # fmt: skip
    assert rc == 0


@pytest.fixture(scope="session")
def site_models():
    """Return the models of the session's site."""
    return list(SITE_MODELS)


@pytest.fixture(scope="session")
def run_epochs():
    """Return the number of epochs of each run trained for the site."""
    return RUN_EPOCHS


@pytest.fixture(scope="session")
def site_inputs(tmp_path_factory):
    """Return (runs folder, experiments folder) with two real lenet5 runs and one experiment-like directory."""
    root = tmp_path_factory.mktemp("site_inputs")
    runs = root / "runs"
    _train(runs / "lenet5-seed0", 0)
    _train(runs / "lenet5-seed1", 1)
    exp = root / "experiments" / "why-cnn"
    exp.mkdir(parents=True)
    shutil.copy(runs / "lenet5-seed0" / "learning_curves.png", exp / "shift_robustness.png")
    shutil.copy(runs / "lenet5-seed0" / "confusion_matrix.png", exp / "unreferenced.png")
    (exp / "results.json").write_text(json.dumps({
        "experiment": "why-cnn", "title": "Convolutions against an MLP", "claim": "A CNN beats an MLP on images.",
        "verdict": {"outcome": "holds", "reason": "97.1% vs 93.0% on every seed"}, "units": {"a": [1, 2, 3]},
    }))  # fmt: skip
    (exp / "report.md").write_text(
        "## why-cnn: Convolutions against an MLP\n\n**Verdict: holds.** Measured on mnist5k.\n\n"
        "| model | top-1 |\n|---|---:|\n| lenet5 | 97.1 |\n| mlp | 93.0 |\n\n"
        "![shift](shift_robustness.png)\n\n<script>alert(1)</script>\n\n![remote](https://example.com/x.png)\n\n"
        "[a link](javascript:alert(1))\n"
    )
    return runs, root / "experiments"


@pytest.fixture(scope="session")
def site_dir(tmp_path_factory, site_inputs):
    """Return the directory of a site built once per session for SITE_MODELS, the runs and the experiment."""
    from cnnlineage.site import build_site

    runs, experiments = site_inputs
    out = tmp_path_factory.mktemp("site") / "site"
    report = build_site(out=out, models=SITE_MODELS, runs=[runs], experiments=[experiments],
                        commands={"train", "summary", "info"})  # fmt: skip
    assert report.runs == 2 and report.experiments == 1
    return out
