"""A real, cheap training configuration shared by the compression tests."""

from __future__ import annotations


def tiny_config(out, **extra) -> dict:
    """LeNet-5 (modern) on 1,024 mnist5k digits for 3 epochs: a real, cheap checkpoint."""
    cfg = {
        "model": {"name": "lenet5_modern", "kwargs": {"pad_input": True}},
        "data": {"name": "mnist5k", "batch_size": 64, "train_subset": 1024, "test_subset": 256},
        "optim": {"name": "adam", "lr": 0.003},
        "schedule": {"name": "none"},
        "epochs": 3,
        "threads": 1,
        "run": {"out_dir": str(out), "progress": "none", "tensorboard": False, "plots": False},
    }
    for key, value in extra.items():
        section, _, name = key.partition("__")
        if name:
            cfg.setdefault(section, {})[name] = value
        else:
            cfg[section] = value
    return cfg
