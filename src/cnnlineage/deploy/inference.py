"""Evaluate and predict with an exported ``.onnx`` file, an int8 directory or a checkpoint on a fast backend.

``cnnlineage eval model.onnx``, ``cnnlineage predict model.onnx image.png`` and the same
with the directory ``cnnlineage quantize`` wrote land here, as do ``eval``/``predict`` with
``--backend``. The data pipeline is the trainer's (same resize, same normalisation, read
from the file's metadata), the loop is the trainer's ``evaluate`` and the image checks of
``predict`` (inversion of dark-on-light digits, ``--show-input``, warnings) are the
checkpoint path's own, so an ONNX file and its checkpoint give the same figures.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from ..data import EpochSampler, TransformedDataset, build_datasets, build_transforms, make_loader
from ..train.config import AugmentConfig
from ..train.engine import evaluate
from .backends import prepare

__all__ = ["evaluate_file", "load_runner", "predict_files"]


def load_runner(
    path: str | Path, *, backend: str | None = None, batch: int = 1
) -> tuple[nn.Module, dict[str, Any]]:
    """Return (a module computing logits on ``backend``, the metadata) for an ``.onnx`` file, int8 directory or checkpoint.

    ``backend`` None: onnxruntime for an ONNX file, the program's own runtime for an int8
    directory, eager for a checkpoint.
    """
    from .int8 import Int8Model, is_int8_dir
    from .runtime import OnnxModel
    from .source import load_source

    path = Path(path)
    if path.suffix == ".onnx":
        if backend not in (None, "onnxruntime", "auto", "eager"):
            raise ValueError(f"{path} is an ONNX file and runs on onnxruntime only, not --backend {backend}")
        runner = OnnxModel(path)
        return runner, runner.meta
    if is_int8_dir(path):
        runner = Int8Model(path, backend=backend)
        return runner, runner.meta
    if not path.is_file():
        raise ValueError(
            f"{path} does not exist; give a checkpoint written by `cnnlineage train`, an .onnx file or a "
            "directory written by `cnnlineage quantize`"
        )
    model, meta = load_source(path)
    backend = backend or "eager"
    return prepare(model, backend, input_size=meta["input_size"], batch=batch, meta=meta, verbose=True), meta


def _trained_channels(meta: dict[str, Any]) -> int:
    """Return the channels of the images the model was trained on (the data set's, else the model input's)."""
    from ..data import DATASET_INFO

    info = DATASET_INFO.get(meta.get("dataset") or "")
    return info.in_chans if info is not None else int(meta["input_size"][0])


def evaluate_file(
    path: str | Path,
    *,
    backend: str | None = None,
    data: str | None = None,
    root: str | None = None,
    split: str = "test",
    batch_size: int = 500,
    allow_mismatch: bool = False,
) -> dict[str, Any]:
    """Return loss, top-1, top-5, per-class accuracy and confusion of an ONNX file, int8 directory or checkpoint.

    As :func:`cnnlineage.train.inference.evaluate_checkpoint`: another data set whose class
    names or image channels differ from the training data is refused unless ``allow_mismatch``
    (then the result's ``mismatch`` says how they differ).
    """
    if batch_size < 1:
        raise ValueError(f"--batch-size must be a positive integer, got {batch_size}")
    runner, meta = load_runner(path, backend=backend, batch=batch_size)
    trained = meta.get("dataset") or ""
    name = data or trained
    if not name:
        raise ValueError(f"{path} does not name the data set it was trained on; pass --data NAME")
    train, test, info = build_datasets(name, root=root or meta.get("data_root") or None, download=False)
    if info.num_classes != int(meta["num_classes"]):
        raise ValueError(
            f"{path} predicts {meta['num_classes']} classes ({trained or 'its training data'}) but {name} has "
            f"{info.num_classes}; evaluate it on {trained or 'a data set with as many classes'}"
        )
    classes = [str(c) for c in meta.get("class_names") or []]
    differences = []
    if classes and classes != [str(c) for c in info.classes]:
        differences.append(f"classes {_short(classes)} vs {_short([str(c) for c in info.classes])}")
    chans = _trained_channels(meta)
    if chans != info.in_chans:
        differences.append(f"{chans}-channel vs {info.in_chans}-channel images")
    where = trained or "its training data"
    if differences and not allow_mismatch:
        raise ValueError(
            f"{path} was trained on {where}, not {name} ({'; '.join(differences)}): its answers would be "
            f"scored against labels it never learned. Evaluate on {where}, or pass --allow-mismatch "
            "(allow_mismatch=True) to score it anyway"
        )
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
    if differences:
        out["mismatch"] = f"trained on {where}: " + "; ".join(differences)
    return out


def _short(names: list[str], n: int = 4) -> str:
    return ", ".join(names[:n]) + (", ..." if len(names) > n else "")


def predict_files(
    path: str | Path,
    images: list[str | Path],
    *,
    topk: int = 5,
    backend: str | None = None,
    invert: str = "auto",
    show_input: str | Path | None = None,
) -> list[dict[str, Any]]:
    """Return, per image file, what :func:`cnnlineage.train.inference.predict` returns, run on ``backend``.

    ``invert`` ("auto", "never", "always") and ``show_input`` (a directory for PNGs of each
    input as the model saw it) behave as on the PyTorch path; a file that cannot be read
    gives ``{"image", "error"}`` and the others are still classified.
    """
    from ..train.inference import classify_files

    if isinstance(topk, bool) or not isinstance(topk, int) or topk < 1:
        raise ValueError(f"--topk must be a positive integer, got {topk}")
    if invert not in ("auto", "never", "always"):
        raise ValueError(f"--invert must be auto, never or always, got {invert!r}")
    runner, meta = load_runner(path, backend=backend, batch=1)
    n = int(meta["num_classes"])
    return classify_files(
        runner,
        images,
        dataset=meta.get("dataset") or "its training data",
        trained_chans=_trained_channels(meta),
        input_size=tuple(int(v) for v in meta["input_size"]),
        mean=tuple(meta["mean"]),
        std=tuple(meta["std"]),
        classes=[str(c) for c in meta.get("class_names") or range(n)],
        topk=topk,
        invert=invert,
        show_input=show_input,
    )
