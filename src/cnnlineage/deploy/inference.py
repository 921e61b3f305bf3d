"""Evaluate and predict with an exported ``.onnx`` file or a checkpoint on a fast backend.

``cnnlineage eval model.onnx`` and ``cnnlineage predict model.onnx image.png`` land here,
as do ``eval``/``predict`` with ``--backend``. The data pipeline is the trainer's (same
resize, same normalisation, read from the file's metadata) and the loop is the trainer's
``evaluate``, so an ONNX file and its checkpoint give the same figures.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from ..data import EpochSampler, TransformedDataset, build_datasets, build_transforms, make_loader
from ..data.datasets import BadImageError, DatasetInfo, ImageFolderDataset
from ..train.config import AugmentConfig
from ..train.engine import evaluate
from .backends import prepare

__all__ = ["evaluate_file", "load_runner", "predict_files"]


def load_runner(
    path: str | Path, *, backend: str = "eager", batch: int = 1
) -> tuple[nn.Module, dict[str, Any]]:
    """Return (a module computing logits on ``backend``, the metadata) for an ``.onnx`` file or a checkpoint."""
    from .runtime import OnnxModel
    from .source import load_source

    path = Path(path)
    if path.suffix == ".onnx":
        if backend not in ("onnxruntime", "auto", "eager"):
            raise ValueError(f"{path} is an ONNX file and runs on onnxruntime only, not --backend {backend}")
        runner = OnnxModel(path)
        return runner, runner.meta
    if not path.is_file():
        raise ValueError(
            f"{path} does not exist; give a checkpoint written by `cnnlineage train` or an .onnx file"
        )
    model, meta = load_source(path)
    return prepare(model, backend, input_size=meta["input_size"], batch=batch, meta=meta, verbose=True), meta


def evaluate_file(
    path: str | Path,
    *,
    backend: str = "eager",
    data: str | None = None,
    root: str | None = None,
    split: str = "test",
    batch_size: int = 500,
) -> dict[str, Any]:
    """Return loss, top-1, top-5, per-class accuracy and confusion of an ONNX file or checkpoint on a data set."""
    if batch_size < 1:
        raise ValueError(f"--batch-size must be a positive integer, got {batch_size}")
    runner, meta = load_runner(path, backend=backend, batch=batch_size)
    name = data or meta.get("dataset")
    if not name:
        raise ValueError(f"{path} does not name the data set it was trained on; pass --data NAME")
    train, test, info = build_datasets(name, root=root or meta.get("data_root") or None, download=False)
    if info.num_classes != int(meta["num_classes"]):
        raise ValueError(f"{path} predicts {meta['num_classes']} classes but {name} has {info.num_classes}")
    size = tuple(int(v) for v in meta["input_size"][1:])
    c = int(meta["input_size"][0])
    stats = replace(info, mean=tuple(meta["mean"]), std=tuple(meta["std"]))  # the file's, one per channel
    tf = build_transforms(
        AugmentConfig(), stats, size=size, in_chans=c, train=False, resize=info.size != size
    )
    ds = TransformedDataset(test if split == "test" else train, tf)
    loader = make_loader(ds, EpochSampler(len(ds), seed=0, shuffle=False, pad=False), batch_size=batch_size)
    out = evaluate(runner, loader, device=torch.device("cpu"), num_classes=info.num_classes)
    out.update(model=meta["model_name"], dataset=name, split=split, classes=list(info.classes))
    return out


def predict_files(
    path: str | Path, images: list[str | Path], *, topk: int = 5, backend: str = "eager"
) -> list[dict[str, Any]]:
    """Return, per image file, its top-k classes with probabilities: [{"image", "top": [(class, p), ...]}, ...]."""
    if topk < 1:
        raise ValueError(f"--topk must be a positive integer, got {topk}")
    files = [Path(p) for p in images]
    for f in files:
        if not f.is_file():
            raise ValueError(f"image {f} does not exist")
    runner, meta = load_runner(path, backend=backend, batch=1)
    # image files are read as RGB; the file's statistics have one entry per model channel
    info = DatasetInfo("files", int(meta["num_classes"]), 3, (0, 0), tuple(meta["mean"]), tuple(meta["std"]))
    size = tuple(int(v) for v in meta["input_size"][1:])
    tf = build_transforms(AugmentConfig(), info, size=size, in_chans=int(meta["input_size"][0]), train=False)
    reader = ImageFolderDataset(files, [0] * len(files), ["?"])
    classes = list(meta.get("class_names") or [str(i) for i in range(int(meta["num_classes"]))])
    results = []
    with torch.no_grad():
        for i, f in enumerate(files):
            try:
                x = tf(reader.load(i)).unsqueeze(0)  # RGB -> the model's channels and size
            except BadImageError as e:
                raise ValueError(str(e)) from None
            probs = torch.softmax(runner(x).float(), dim=1)[0]
            p, idx = probs.topk(min(topk, len(probs)))
            results.append(
                {"image": str(f), "top": [(classes[j], float(q)) for q, j in zip(p.tolist(), idx.tolist())]}
            )
    return results
