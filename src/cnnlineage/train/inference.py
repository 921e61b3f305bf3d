"""Use a trained checkpoint: rebuild its model, evaluate it on a dataset, classify image files.

Every checkpoint the trainer writes (``last.pt``, ``best.pt``) carries what these need:
the config, model name, classes, channels, input size and normalisation statistics.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from ..data import EpochSampler, TransformedDataset, build_datasets, build_transforms, make_loader
from ..data.datasets import DATASET_INFO, BadImageError, ImageFolderDataset
from ..registry import create_model
from .checkpoint import CheckpointError, load_checkpoint
from .config import AugmentConfig, config_from_dict
from .engine import evaluate, pick_device

__all__ = ["evaluate_checkpoint", "load_model", "predict"]


def load_model(path: str | Path, *, device: str | torch.device = "cpu") -> tuple[nn.Module, dict[str, Any]]:
    """Return (model in eval mode with the checkpoint's weights, the checkpoint's metadata)."""
    ckpt = load_checkpoint(path)
    missing = [
        k for k in ("model", "model_name", "num_classes", "in_chans", "input_size", "config") if k not in ckpt
    ]
    if missing:
        raise CheckpointError(
            f"{path} is not a cnnlineage training checkpoint (missing {', '.join(missing)})"
        )
    cfg = config_from_dict(ckpt["config"])
    model = create_model(
        ckpt["model_name"], num_classes=ckpt["num_classes"], in_chans=ckpt["in_chans"], **cfg.model.kwargs
    )
    model.load_state_dict(ckpt["model"])
    model.to(device).eval()
    meta = {k: v for k, v in ckpt.items() if k not in ("model", "optimizer", "ema", "rng")}
    return model, meta


def evaluate_checkpoint(
    path: str | Path,
    *,
    data: str | None = None,
    root: str | None = None,
    split: str = "test",
    batch_size: int = 500,
    device: str = "auto",
) -> dict[str, Any]:
    """Return loss, top-1, top-5, per-class accuracy and confusion of a checkpoint on a dataset split.

    ``data``/``root`` default to the dataset the checkpoint was trained on; the images are
    resized and normalised exactly as in training.
    """
    dev = pick_device(device)
    model, meta = load_model(path, device=dev)
    cfg = config_from_dict(meta["config"])
    name, root = data or cfg.data.name, root or cfg.data.root
    train, test, info = build_datasets(
        name, root=root, download=False, skip_bad_images=cfg.data.skip_bad_images
    )
    if info.num_classes != meta["num_classes"]:
        raise ValueError(f"{path} predicts {meta['num_classes']} classes but {name} has {info.num_classes}")
    base = test if split == "test" else train
    size = tuple(meta["input_size"][1:])
    tf = build_transforms(
        AugmentConfig(), info, size=size, in_chans=meta["in_chans"], train=False, resize=info.size != size
    )
    ds = TransformedDataset(base, tf)
    loader = make_loader(ds, EpochSampler(len(ds), seed=0, shuffle=False, pad=False), batch_size=batch_size)
    out = evaluate(model, loader, device=dev, num_classes=info.num_classes)
    out.update(model=meta["model_name"], dataset=name, split=split, classes=list(info.classes))
    return out


def predict(
    path: str | Path, images: list[str | Path], *, topk: int = 5, device: str = "auto"
) -> list[dict[str, Any]]:
    """Return, per image file, its top-k classes with probabilities: [{"image", "top": [(class, p), ...]}, ...]."""
    dev = pick_device(device)
    model, meta = load_model(path, device=dev)
    cfg = config_from_dict(meta["config"])
    info = DATASET_INFO[cfg.data.name]
    info = type(info)(**{**info.__dict__, "in_chans": 3, "size": (0, 0), "num_classes": meta["num_classes"]})
    size = tuple(meta["input_size"][1:])
    tf = build_transforms(AugmentConfig(), info, size=size, in_chans=meta["in_chans"], train=False)
    files = [Path(p) for p in images]
    for f in files:
        if not f.is_file():
            raise ValueError(f"image {f} does not exist")
    reader = ImageFolderDataset(files, [0] * len(files), ["?"])
    classes = list(meta.get("classes") or [str(i) for i in range(meta["num_classes"])])
    results = []
    with torch.no_grad():
        for i, f in enumerate(files):
            try:
                x = tf(reader.load(i)).unsqueeze(0).to(dev)  # RGB -> the model's channels and size
            except BadImageError as e:
                raise ValueError(str(e)) from None
            probs = torch.softmax(model(x).float(), dim=1)[0]
            p, idx = probs.topk(min(topk, len(probs)))
            results.append(
                {"image": str(f), "top": [(classes[j], float(q)) for q, j in zip(p.tolist(), idx.tolist())]}
            )
    return results
