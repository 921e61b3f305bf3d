"""A LeNet-5 trained for five epochs on mnist5k, shared by the visualisation tests (about 15 s, once per session)."""

from __future__ import annotations

import warnings

import pytest


@pytest.fixture(scope="session")
def lenet_checkpoint(tmp_path_factory):
    """Return the path of best.pt of `cnnlineage train lenet5 --epochs 5` (the shipped recipe, one thread)."""
    from cnnlineage.train import Trainer
    from cnnlineage.train.run import resolve_config

    out = tmp_path_factory.mktemp("lenet5-run")
    overrides = [
        "epochs=5",
        "threads=1",
        "seed=0",
        f'run.out_dir="{out}"',
        'run.progress="none"',
        "run.tensorboard=false",
        "run.plots=false",
    ]
    cfg = resolve_config("lenet5", recipe=None, overrides=overrides, resume=None)
    summary = Trainer(cfg, log=lambda *_: None).fit()
    assert summary["final_top1"] > 85, summary  # a trained model, not a random one
    return out / "checkpoints" / "best.pt"


@pytest.fixture(scope="session")
def lenet(lenet_checkpoint):
    """Return the trained LeNet-5 as a visualisation subject."""
    from cnnlineage.visualize import load_subject

    return load_subject(lenet_checkpoint)


@pytest.fixture(autouse=True)
def _quiet_captum():
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", module="captum")
        yield
