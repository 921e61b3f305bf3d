"""Where a deployable model comes from: a registered name or a training checkpoint, with what inference needs.

Every command of this package takes ``MODEL_OR_CHECKPOINT``. :func:`load_source` turns
it into a model in eval mode and one flat metadata dict (model name, classes, input size,
normalisation, data set, source), the same whether the model was trained here or built
from the registry with fresh weights.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch.nn as nn

from .meta import IMAGENET_STATS, MNIST_STATS, checkpoint_metadata, normalisation

__all__ = ["IMAGENET_STATS", "MNIST_STATS", "checkpoint_metadata", "load_source", "normalisation"]


def _is_file_spec(spec: str) -> bool:
    return Path(spec).suffix in (".pt", ".pth", ".ckpt") or Path(spec).is_file()


def load_source(
    spec: str | Path, *, expect_model: str | None = None, num_classes: int | None = None
) -> tuple[nn.Module, dict[str, Any]]:
    """Return (model in eval mode, metadata) for a registered name, a `cnnlineage train` checkpoint or an int8 directory.

    An int8 directory from ``cnnlineage quantize`` gives an :class:`~.int8.Int8Model` on its
    default runtime, with ``meta["int8"]`` set.

    ``expect_model`` refuses a checkpoint of another architecture. A registered name is
    built with fresh weights (``num_classes`` default: the card's) and ImageNet
    normalisation (MNIST statistics for one-channel models); its metadata says so.
    """
    spec = str(spec)
    from .int8 import Int8Model, is_int8_dir

    if is_int8_dir(spec):  # an int8 program from `cnnlineage quantize` (its own runtime)
        model = Int8Model(spec)
        if expect_model is not None and model.meta["int8"]["architecture"] != expect_model:
            raise ValueError(f"{spec} holds an int8 {model.meta['int8']['architecture']}, not {expect_model}")
        return model, model.meta
    if _is_file_spec(spec):
        return _from_checkpoint(Path(spec), expect_model)
    from ..registry import create_model

    model = create_model(spec, num_classes=num_classes).eval()
    in_chans, n = model.input_size[0], model.num_classes
    mean, std = normalisation(*(IMAGENET_STATS if in_chans == 3 else MNIST_STATS), in_chans)
    meta = {
        "model_name": spec,
        "num_classes": n,
        "class_names": [str(i) for i in range(n)],
        "input_size": list(model.input_size),
        "mean": mean,
        "std": std,
        "dataset": "",
        "source": f"registry:{spec} (fresh weights, not trained)",
    }
    return model, meta


def _from_checkpoint(path: Path, expect_model: str | None) -> tuple[nn.Module, dict[str, Any]]:
    from ..train.checkpoint import load_checkpoint
    from ..train.inference import load_model

    if not path.is_file():
        raise ValueError(f"checkpoint {path} does not exist; give a registered model name or a .pt file")
    if expect_model is not None:
        name = load_checkpoint(path).get("model_name")
        if name != expect_model:
            raise ValueError(
                f"{path} is a checkpoint of {name or 'an unknown model'}, not {expect_model}; "
                f"pass the checkpoint alone or the matching model name"
            )
    try:
        model, ck = load_model(path)
    except RuntimeError as e:  # load_state_dict: the weights do not fit the named architecture
        first = str(e).splitlines()[0]
        raise ValueError(
            f"{path} holds weights that do not fit its model {first.rstrip(':.')}; it is a checkpoint "
            "of another model or was edited. Re-export from the run's own checkpoint"
        ) from None
    return model, checkpoint_metadata(ck, source=str(path.resolve()))
