"""What ``cnnlineage train`` does between parsing and training: pick the recipe, apply overrides, launch.

Resolution order: the recipe (``--config`` file or shipped name; else the shipped recipe
named after the model, if any; else the defaults), then the model name, then the
convenience flags, then ``--set key=value``. Resuming reads the run directory's saved
``config.yaml`` instead of a recipe.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path

import yaml

from . import distributed
from .config import (
    ConfigError,
    TrainConfig,
    apply_overrides,
    config_from_dict,
    config_to_dict,
    load_config,
    recipe_path,
)

__all__ = ["launch_distributed", "resolve_config"]


def resolve_config(
    model: str | None, *, recipe: str | None = None, overrides: list[str] = (), resume: str | None = None
) -> TrainConfig:
    """Return the validated config for a train command; ConfigError (a ValueError) says what is wrong."""
    if resume and not recipe:
        saved = Path(resume) / "config.yaml"
        if not saved.is_file():
            raise ConfigError(f"cannot resume: {saved} does not exist (is {resume} a run directory?)")
        cfg = config_from_dict(yaml.safe_load(saved.read_text()))
        if model and model != cfg.model.name:
            raise ConfigError(f"{resume} is a run of {cfg.model.name}, not {model}")
        return apply_overrides(cfg, [*overrides, f"run.out_dir={json.dumps(str(resume))}"])
    if recipe:  # with resume too: the launcher hands each rank the fully resolved config as a recipe
        cfg = load_config(recipe)
    elif model and recipe_path(model) is not None:
        cfg = load_config(model)
    elif model:
        cfg = TrainConfig()
    else:
        raise ConfigError("name a model (e.g. `cnnlineage train lenet5`) or a recipe with --config")
    if model:
        from ..registry import get_builder

        get_builder(model)  # unknown model: an error with the closest names
        cfg = apply_overrides(cfg, [f"model.name={model}"])
    overrides = list(overrides) + ([f"run.out_dir={json.dumps(str(resume))}"] if resume else [])
    return apply_overrides(cfg, overrides)


def launch_distributed(cfg: TrainConfig, nproc: int, *, resume: bool, overwrite: bool) -> int:
    """Run ``cfg`` in ``nproc`` torchrun processes on this machine; return the exit status.

    The config is resolved once here, with a fixed run directory, and handed to every rank
    as a YAML file, so all ranks train exactly the same thing.
    """
    if not cfg.run.out_dir:
        out = time.strftime(f"runs/{cfg.model.name}-{cfg.data.name}-%Y%m%d-%H%M%S")
        cfg = apply_overrides(cfg, [f"run.out_dir={json.dumps(out)}"])
    fd, path = tempfile.mkstemp(prefix="cnnlineage-", suffix=".yaml")
    with os.fdopen(fd, "w") as f:
        yaml.safe_dump(config_to_dict(cfg), f, sort_keys=False)
    try:
        argv = (
            ["train", "--config", path]
            + (["--resume", cfg.run.out_dir] if resume else [])
            + (["--overwrite"] if overwrite else [])
        )
        return distributed.launch(nproc, argv)
    finally:
        os.unlink(path)
