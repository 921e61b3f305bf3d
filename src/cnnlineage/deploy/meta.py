"""The flat metadata inference needs, read from a `cnnlineage train` checkpoint: classes, input size, normalisation.

Shared by :mod:`.source` (checkpoints and registered names) and :mod:`.int8` (the int8
directories of ``cnnlineage quantize``, which carry their source checkpoint's metadata).
"""

from __future__ import annotations

from typing import Any

__all__ = ["IMAGENET_STATS", "MNIST_STATS", "checkpoint_metadata", "normalisation"]

IMAGENET_STATS = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))  # torchvision's ImageNet recipes
MNIST_STATS = ((0.1307,), (0.3081,))  # the 60,000 MNIST training digits


def normalisation(mean: tuple[float, ...], std: tuple[float, ...], in_chans: int) -> tuple[list, list]:
    """Return (mean, std) with one entry per model input channel, as the trainer's transforms compute them."""
    if len(mean) == in_chans:
        return list(mean), list(std)
    if in_chans % len(mean) == 0:  # grey statistics repeated over colour channels
        return list(mean) * (in_chans // len(mean)), list(std) * (in_chans // len(std))
    return [sum(mean) / len(mean)], [sum(std) / len(std)]  # colour statistics for a grey input


def checkpoint_metadata(ck: dict[str, Any], *, source: str) -> dict[str, Any]:
    """Return the flat inference metadata of a `cnnlineage train` checkpoint's metadata (config, classes, ...)."""
    from ..data import DATASET_INFO
    from ..train.config import config_from_dict

    cfg = config_from_dict(ck["config"])
    info = DATASET_INFO.get(cfg.data.name, DATASET_INFO["imagefolder"])
    mean, std = normalisation(tuple(info.mean), tuple(info.std), ck["in_chans"])
    n = ck["num_classes"]
    return {
        "model_name": ck["model_name"],
        "num_classes": n,
        "class_names": [str(c) for c in (ck.get("classes") or range(n))],
        "input_size": [int(v) for v in ck["input_size"]],
        "mean": mean,
        "std": std,
        "dataset": cfg.data.name,
        "data_root": cfg.data.root or "",
        "source": source,
    }
