"""Checks the trainer makes before it commits to a run: builder keywords, checkpoints that do not fit, hints.

Each raises ConfigError or CheckpointError (ValueErrors: one line at the command line) with
what was expected, what was given and what to do instead.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

from ..registry import get_builder
from .checkpoint import CheckpointError
from .config import ConfigError, TrainConfig

__all__ = [
    "UPSCALE_WARNING",
    "check_builder_kwargs",
    "check_finetune_source",
    "check_same_run",
    "is_collective_failure",
    "small_models",
]

UPSCALE_WARNING = 4.0  # warn when the model's input side is this many times the images' side


def small_models(size: tuple[int, int]) -> list[str]:
    """Return a few registered models whose default input is at most twice ``size``, oldest first."""
    from ..registry import list_models, model_info

    fits = [n for n in list_models() if model_info(n).input_size[1] <= 2 * max(size[0], 16)]
    return fits[:4] or ["lenet5", "resnet20"]


def check_builder_kwargs(name: str, kwargs: dict[str, Any]) -> None:
    """ConfigError naming a model.kwargs key the builder does not take (builders with **kwargs take any)."""
    params = inspect.signature(get_builder(name)).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    own = [p for p in params if p not in ("num_classes", "in_chans")]
    for key in kwargs:
        if key not in params or key in ("num_classes", "in_chans"):
            raise ConfigError(
                f"model.kwargs.{key}: {name} takes no setting {key!r}; it takes "
                f"{', '.join(own) or 'no settings'} (num_classes and in_chans come from the data)"
            )


def check_finetune_source(pretrained: dict[str, Any], cfg: TrainConfig) -> None:
    held = pretrained.get("model_name")
    if held and held != cfg.model.name:
        raise ConfigError(
            f"--finetune {cfg.finetune.checkpoint} holds {held} weights, not {cfg.model.name}; "
            f"fine-tune the model it holds: cnnlineage train {held} --finetune {cfg.finetune.checkpoint} ..."
        )


def check_same_run(state: dict[str, Any], meta: dict[str, Any], *, source: str | Path) -> None:
    """CheckpointError if a checkpoint to resume holds another model, or was trained on other classes or channels."""
    held = state.get("model_name")
    if held and held != meta["model_name"]:
        raise CheckpointError(
            f"{source} holds a {held} run, not {meta['model_name']}; resume with the model it holds"
        )
    data = (state.get("config") or {}).get("data", {}).get("name")
    differ = [
        f"{what} {state[key]!r} vs {meta[key]!r}"
        for key, what in (("num_classes", "classes"), ("in_chans", "channels"), ("classes", "class names"))
        if key in state and state[key] != meta[key]
    ]
    if differ or (data and data != meta["config"]["data"]["name"]):
        raise CheckpointError(
            f"{source} was trained on {data or 'another data set'}, not {meta['config']['data']['name']} "
            f"({'; '.join(differ) or 'another data set'}): resuming would mix two data sets. To train these "
            f"weights on {meta['config']['data']['name']}, start a new run with --finetune {source}"
        )


def is_collective_failure(e: BaseException) -> bool:
    """Return whether ``e`` is a failed torch.distributed collective (a peer timed out, died or hung up)."""
    text = str(e)
    return isinstance(e, RuntimeError) and any(
        k in text
        for k in ("Timed out", "timed out", "Connection closed", "Connection reset", "DistBackendError")
    )
