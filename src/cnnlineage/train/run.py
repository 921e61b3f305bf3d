"""What ``cnnlineage train`` does around the trainer: pick the recipe, apply overrides, launch, pick the trainer.

Resolution order: the recipe (``--config`` file or shipped name; else the shipped recipe
that fits the model and data set, see :func:`choose_recipe`; else the defaults), then the
model name, then the convenience flags, then ``--set key=value``. The choice and its
reason are kept in ``run.recipe`` and printed in the run header. Resuming reads the run directory's saved
``config.yaml`` instead of a recipe.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

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
    yaml_load,
)
from .semi import SemiTrainer
from .trainer import Trainer

__all__ = ["choose_recipe", "launch_distributed", "resolve_config", "train"]


def choose_recipe(model: str, data: str | None) -> tuple[str | None, str]:
    """Return (shipped recipe name or None, why) for training ``model`` on ``data`` (None: the model's own data).

    In order: a recipe for this model and data set (``<model>-<data>``); the model's own
    recipe when it is for this data set; a recipe for the data set (``<data>``, any model);
    the model's recipe for another data set (said so); the defaults.
    """
    own = recipe_path(model)
    own_data = load_config(model).data.name if own is not None else None
    data = data or own_data
    if data and recipe_path(f"{model}-{data}") is not None:
        return f"{model}-{data}", f"the shipped recipe for {model} on {data}"
    if own is not None and own_data == data:
        return model, f"the shipped recipe for {model} on {data}"
    if data and recipe_path(data) is not None:
        why = f"the shipped recipe for {data}"
        return data, why + (f"; {model}'s own recipe is for {own_data}" if own is not None else "")
    if own is not None:
        return model, (
            f"{model}'s shipped recipe, made for {own_data}: no recipe for {data} exists, so its "
            "hyperparameters may not suit it"
        )
    return None, f"the defaults: no shipped recipe for {model} or {data}"


def _requested_data(overrides: list[str]) -> str | None:
    """Return the data set that the overrides ask for (the last ``data.name=``), or None."""
    value = None
    for item in overrides:
        key, _, raw = item.partition("=")
        if key.strip() == "data.name":
            value = yaml_load(raw, where=f"--set {item}")
    return str(value) if value is not None else None


def resolve_config(
    model: str | None, *, recipe: str | None = None, overrides: list[str] = (), resume: str | None = None
) -> TrainConfig:
    """Return the validated config for a train command; ConfigError (a ValueError) says what is wrong."""
    if resume and not recipe:
        saved = Path(resume) / "config.yaml"
        if not saved.is_file():
            raise ConfigError(f"cannot resume: {saved} does not exist (is {resume} a run directory?)")
        values = yaml_load(saved.read_text(), where=str(saved))
        try:
            cfg = config_from_dict(values)
        except ConfigError as e:
            raise ConfigError(f"{saved}: {e}") from None
        if model and model != cfg.model.name:
            raise ConfigError(f"{resume} is a run of {cfg.model.name}, not {model}")
        if cfg.ssl.method != "none":
            raise ConfigError(
                f"{resume} is a pre-training run; resume it with `cnnlineage pretrain --resume {resume}`"
            )
        return apply_overrides(cfg, [*overrides, f"run.out_dir={json.dumps(str(resume))}"])
    why = ""
    if recipe:  # with resume too: the launcher hands each rank the fully resolved config as a recipe
        cfg = load_config(recipe)
        why = f"--config {recipe}"
    elif model:
        from ..registry import get_builder

        get_builder(model)  # unknown model: an error with the closest names
        name, why = choose_recipe(model, _requested_data(list(overrides)))
        cfg = load_config(name) if name else TrainConfig()
        why = f"{name}: {why}" if name else why
    else:
        raise ConfigError("name a model (e.g. `cnnlineage train lenet5`) or a recipe with --config")
    if model:
        cfg = apply_overrides(cfg, [f"model.name={model}"])
    overrides = list(overrides) + ([f"run.out_dir={json.dumps(str(resume))}"] if resume else [])
    if why and not cfg.run.recipe:
        overrides.append(f"run.recipe={json.dumps(why)}")
    return apply_overrides(cfg, overrides)


def launch_distributed(cfg: TrainConfig, nproc: int, *, resume: bool, overwrite: bool) -> int:
    """Run ``cfg`` in ``nproc`` torchrun processes on this machine; return the exit status.

    The config is resolved once here and handed to every rank as a YAML file, so all ranks
    train exactly the same thing; rank 0 creates the run directory (a fresh name unless
    ``run.out_dir`` is set) once the config has passed every check.
    """
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


def train(cfg: TrainConfig | dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """Return the summary of a training run configured by ``cfg`` (a TrainConfig or a nested dict).

    Semi-supervised settings (``semi.method`` or ``semi.labels_per_class``) run on
    :class:`~cnnlineage.train.semi.SemiTrainer`, everything else on :class:`Trainer`.
    """
    if isinstance(cfg, dict):
        cfg = config_from_dict(cfg)
    if cfg.semi.method != "none" or cfg.semi.labels_per_class:
        return SemiTrainer(cfg, **kwargs).fit()
    return Trainer(cfg, **kwargs).fit()
