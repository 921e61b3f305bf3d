"""Training: config dataclasses and recipes, the trainer loop, checkpoints, distributed data parallel.

``cnnlineage.train.train({"model": {"name": "lenet5"}, "epochs": 2})`` or
``Trainer(load_config("lenet5")).fit()``; the CLI's ``train``, ``eval`` and ``predict`` call these.
"""

from .checkpoint import CheckpointError, RunDirError, load_checkpoint, save_checkpoint
from .config import (
    AugmentConfig,
    ConfigError,
    DataConfig,
    FinetuneConfig,
    ModelConfig,
    OptimConfig,
    RunConfig,
    ScheduleConfig,
    TrainConfig,
    apply_overrides,
    config_from_dict,
    config_to_dict,
    list_recipes,
    load_config,
)
from .run import train
from .trainer import HOOKS, NonFiniteLossError, Trainer, evaluate

__all__ = [
    "HOOKS",
    "AugmentConfig",
    "CheckpointError",
    "ConfigError",
    "DataConfig",
    "FinetuneConfig",
    "ModelConfig",
    "NonFiniteLossError",
    "OptimConfig",
    "RunConfig",
    "RunDirError",
    "ScheduleConfig",
    "TrainConfig",
    "Trainer",
    "apply_overrides",
    "config_from_dict",
    "config_to_dict",
    "evaluate",
    "list_recipes",
    "load_checkpoint",
    "load_config",
    "save_checkpoint",
    "train",
]
