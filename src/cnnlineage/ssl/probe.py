"""Frozen-feature probes: how good are a network's pooled features, with all labels or a few per class?

The features are ``forward_head(forward_features(x), pre_logits=True)`` of the frozen network
in evaluation mode (the model contract), computed once for the training and held-out splits
with the checkpoint's own normalisation and input size. Two classifiers are fitted on the
training features and scored on the held-out ones:

- **linear probe**: scikit-learn's multinomial ``LogisticRegression`` (L-BFGS, L2 penalty,
  C = 1, at most 1,000 iterations) on features standardised by ``StandardScaler`` fitted on
  the probe's training features, the protocol of SimCLR's and MoCo's linear evaluations
  without their hyperparameter search;
- **weighted k-NN** (Wu et al. 2018; :mod:`cnnlineage.ssl.knn`): cosine similarity, k = 20,
  votes weighted by exp(similarity / 0.07).

``labels_per_class`` adds few-label rows: the probe's training set is a seeded, class-balanced
subset of the training split (:func:`cnnlineage.train.semi.balanced_subset`, the same images
``cnnlineage train --labels-per-class N`` keeps for the same seed). Sources: a ``train`` or
``pretrain`` checkpoint, a registered model name (randomly initialised as ``cnnlineage train``
would initialise it for that seed: the baseline a pre-training must beat), or raw pixels
(the other baseline).
"""

from __future__ import annotations

import json
import sys
import time
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from ..common import atomic_savefig, atomic_write_text
from ..data import EpochSampler, TransformedDataset, build_datasets, build_transforms, make_loader
from ..data.datasets import DATASET_INFO
from ..models._resize import apply_structure
from ..registry import create_model, get_builder
from ..train.checkpoint import is_pretraining_checkpoint, load_checkpoint
from ..train.config import MAX_IMAGE_SIZE, AugmentConfig, config_from_dict
from ..train.engine import input_size_for, pick_device
from ..train.finetune import load_pretrained
from ..train.semi import balanced_subset, dataset_labels
from .knn import knn_predict

__all__ = [
    "LINEAR_C",
    "LINEAR_MAX_ITER",
    "ProbeSource",
    "extract",
    "knn_probe",
    "linear_probe",
    "load_source",
    "plot_probe",
    "run_probe",
]

LINEAR_C = 1.0  # inverse L2 strength of the logistic regression (scikit-learn's default)
LINEAR_MAX_ITER = 1000  # L-BFGS iterations; a probe that stops earlier than converging says so
KNN_TEMPERATURE = 0.07  # Wu et al. 2018
SMALL_PROBLEM = 4_000_000  # training-feature values up to which the logistic regression uses one BLAS thread


@dataclass
class ProbeSource:
    """What the features come from, and how images are prepared for it."""

    kind: str  # "train checkpoint", "pretrain checkpoint", "random init" or "raw pixels"
    name: str  # the checkpoint path, the model name, or "pixels"
    model: nn.Module | None  # None for raw pixels
    model_name: str | None  # registered model name (None for raw pixels)
    data: str  # the data set it was trained on (the default probe data)
    root: str  # its data root
    input_size: tuple[int, int] | None  # (H, W) fed to the model; None = the data's own size
    in_chans: int | None  # channels fed to the model; None = the data's own
    mean: tuple[float, ...] | None  # normalisation the model was trained with; None = the data's
    std: tuple[float, ...] | None
    pretraining: str | None = None  # the self-supervised method of a pretrain checkpoint


def load_source(
    source: str | None,
    *,
    raw: bool = False,
    data: str | None = None,
    root: str | None = None,
    seed: int = 0,
    device: Any = "cpu",
    image_size: int = 0,
    model_kwargs: dict[str, Any] | None = None,
) -> ProbeSource:
    """Return the probe's feature source: a checkpoint file, a registered model name, or (``raw``) pixels.

    ``image_size`` (a model name only; 0: the model's own input size) is the side of the
    images fed to the randomly initialised network, as ``data.image_size`` is in training:
    a random-initialisation baseline must see what the pre-training saw. ValueError for an
    int8 directory, a run directory, a file that is not a checkpoint, or ``image_size`` with
    a checkpoint (which is probed at the input size it was trained at). ``model_kwargs`` (a
    model name only) go to its builder, as ``model.kwargs`` do in training: the baseline of a
    run pre-trained with ``--set model.kwargs.pad_input=true`` is built the same way.
    """
    if source is None:
        if not raw:
            raise ValueError(
                "name a checkpoint or a registered model to probe, or pass --raw for pixel features"
            )
        return ProbeSource(
            "raw pixels", "pixels", None, None, data or "mnist5k", root or "data", *(None,) * 4
        )
    path = Path(source)
    if (path / "quantized.json").is_file():
        made_from = json.loads((path / "quantized.json").read_text()).get(
            "checkpoint", "its float checkpoint"
        )
        raise ValueError(
            f"{path} is an int8 model from `cnnlineage quantize`: its features are integer kernels' outputs, "
            f"not the network's; probe the float checkpoint it was made from ({made_from})"
        )
    if path.is_dir():
        best = path / "checkpoints" / "best.pt"
        hint = f"; did you mean {best}?" if best.is_file() else ""
        raise ValueError(f"{path} is a directory; pass a checkpoint file (RUN_DIR/checkpoints/last.pt){hint}")
    if path.suffix in (".pt", ".pth") or path.exists():
        src = _from_checkpoint(path, device=device)
        if model_kwargs:
            given = ", ".join(f"{k}={v}" for k, v in model_kwargs.items())
            raise ValueError(
                f"{path} is a checkpoint: its network is built with the arguments it was trained with; "
                f"--model-arg ({given}) is for a model name (a randomly initialised network)"
            )
        if image_size and (image_size, image_size) != tuple(src.input_size or ()):
            side = "x".join(map(str, src.input_size or ()))
            raise ValueError(
                f"{path} was trained on {side} inputs and is probed at that size; --image-size {image_size} "
                "is for a model name (a randomly initialised network)"
            )
    else:
        src = _from_model_name(
            source,
            data=data or "mnist5k",
            root=root or "data",
            seed=seed,
            device=device,
            image_size=image_size,
            model_kwargs=model_kwargs or {},
        )
    if raw:
        src = replace(src, kind="raw pixels", name=f"pixels ({src.name}'s preprocessing)", model=None)
    return src


def _from_checkpoint(path: Path, *, device: Any) -> ProbeSource:
    if not path.is_file():
        raise ValueError(f"checkpoint {path} does not exist")
    ckpt = load_checkpoint(path)
    missing = [k for k in ("model", "model_name", "in_chans", "input_size", "config") if k not in ckpt]
    if missing:
        raise ValueError(
            f"{path} is not a checkpoint written by `cnnlineage train` or `pretrain` (it has no {', '.join(missing)})"
        )
    cfg = config_from_dict(ckpt["config"])
    num_classes = int(ckpt.get("num_classes") or len(ckpt.get("classes") or ()) or 1)
    model = create_model(
        ckpt["model_name"], num_classes=num_classes, in_chans=int(ckpt["in_chans"]), **cfg.model.kwargs
    )
    apply_structure(model, cfg.model.pruned)
    load_pretrained(
        model, path, ckpt=ckpt
    )  # the network (a pretrain checkpoint's backbone); the head is unused
    pretraining = ckpt["ssl"].get("method") if is_pretraining_checkpoint(ckpt) else None
    return ProbeSource(
        "pretrain checkpoint" if pretraining else "train checkpoint",
        str(path),
        model.to(device).eval(),
        ckpt["model_name"],
        cfg.data.name,
        cfg.data.root,
        tuple(ckpt["input_size"][1:]),
        int(ckpt["in_chans"]),
        tuple(ckpt["mean"]) if ckpt.get("mean") else None,
        tuple(ckpt["std"]) if ckpt.get("std") else None,
        pretraining,
    )


def _from_model_name(
    name: str,
    *,
    data: str,
    root: str,
    seed: int,
    device: Any,
    image_size: int = 0,
    model_kwargs: dict[str, Any] | None = None,
) -> ProbeSource:
    get_builder(name)  # unknown names: an error listing the closest registered ones
    info = DATASET_INFO.get(data)
    if info is None or not info.num_classes:  # imagefolder: the classes are the folders
        _, _, info = build_datasets(data, root=root)
    torch.manual_seed(seed)  # the initialisation `cnnlineage train NAME --seed SEED` starts from
    model = create_model(name, num_classes=info.num_classes, in_chans=info.in_chans, **(model_kwargs or {}))
    try:
        size = input_size_for(model, image_size)
    except ValueError:  # a fixed-size or minimum-size network: say it in this command's terms
        raise ValueError(
            f"{name} takes {model.expected_input()}; --image-size {image_size} does not fit "
            f"(leave it out for {model.input_size[1]}x{model.input_size[2]})"
        ) from None
    return ProbeSource(
        "random init", name, model.to(device).eval(), name, data, root, size, info.in_chans, None, None
    )


def _check_pooled(model: nn.Module, x: torch.Tensor, name: str) -> int:
    """Return the feature width of ``model``'s pooled pre-logits; ValueError if it has none."""
    try:
        f = model.forward_head(model.forward_features(x), pre_logits=True)
    except (AttributeError, TypeError) as e:
        raise ValueError(
            f"{name} has no pooled features to probe: it lacks forward_head(x, pre_logits=True) "
            f"({type(e).__name__}: {e}); probe a registered cnnlineage model"
        ) from None
    if not isinstance(f, torch.Tensor) or f.dim() != 2:
        shape = tuple(f.shape) if isinstance(f, torch.Tensor) else type(f).__name__
        raise ValueError(
            f"{name}'s forward_head(pre_logits=True) returns {shape}, not pooled (batch, features) vectors; "
            "a probe needs one vector per image"
        )
    return int(f.shape[1])


@torch.no_grad()
def extract(
    src: ProbeSource,
    batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
    *,
    device: Any = "cpu",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Return (features (N, D), labels (N,)): the frozen network's pooled features, or the flattened pixels."""
    if src.model is None:
        pairs = [(x.flatten(1).float(), torch.as_tensor(y)) for x, y in batches]
        if not pairs:
            raise ValueError("no images to extract features from: the data set is empty")
        return torch.cat([p[0] for p in pairs]), torch.cat([p[1] for p in pairs])
    from .knn import extract_features

    it = iter(batches)
    try:
        first = next(it)
    except StopIteration:
        raise ValueError("no images to extract features from: the data set is empty") from None
    src.model.eval()
    _check_pooled(src.model, first[0][:1].to(device), src.model_name or src.name)

    def all_batches() -> Iterable[tuple[torch.Tensor, torch.Tensor]]:
        yield first
        yield from it

    return extract_features(src.model, all_batches(), device=device)


def linear_probe(
    train_x: torch.Tensor,
    train_y: torch.Tensor,
    test_x: torch.Tensor,
    test_y: torch.Tensor,
    *,
    C: float = LINEAR_C,
    max_iter: int = LINEAR_MAX_ITER,
    seed: int = 0,
) -> dict[str, Any]:
    """Return the held-out top-1 (%) of a logistic regression on standardised features, and whether it converged."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from threadpoolctl import threadpool_limits

    if len(torch.unique(train_y)) < 2:
        raise ValueError("a linear probe needs training images of at least two classes")
    clf = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=max_iter, random_state=seed))
    # Small problems run on one BLAS thread: OpenBLAS's threads cost more than they save there
    # (1,438 x 84 features: 1.2-2.8 s with 2 threads on a busy 2-core machine, 0.05-0.08 s with one).
    threads = 1 if train_x.numel() <= SMALL_PROBLEM else None
    with warnings.catch_warnings(record=True) as caught, threadpool_limits(limits=threads):
        warnings.simplefilter("always", ConvergenceWarning)
        clf.fit(train_x.double().numpy(), train_y.numpy())
    pred = torch.from_numpy(clf.predict(test_x.double().numpy()))
    converged = not any(issubclass(w.category, ConvergenceWarning) for w in caught)
    return {"top1": 100.0 * float((pred == test_y).double().mean()), "converged": converged}


def knn_probe(
    train_x: torch.Tensor,
    train_y: torch.Tensor,
    test_x: torch.Tensor,
    test_y: torch.Tensor,
    *,
    num_classes: int,
    k: int = 20,
) -> dict[str, Any]:
    """Return the held-out top-1 (%) of the weighted k-NN classifier and the k used (at most the training size)."""
    scores = knn_predict(train_x, train_y, test_x, num_classes=num_classes, k=k, temperature=KNN_TEMPERATURE)
    pred = scores.argmax(1)
    return {"top1": 100.0 * float((pred == test_y).double().mean()), "k": min(k, len(train_x))}


def _progress(batches: Iterable, *, total: int, desc: str, show: bool) -> Iterable:
    if show and sys.stderr.isatty():
        from tqdm import tqdm

        return tqdm(batches, total=total, desc=desc, leave=False, file=sys.stderr, dynamic_ncols=True)
    return batches


def run_probe(
    source: str | None,
    *,
    data: str | None = None,
    root: str | None = None,
    linear: bool = True,
    knn: int | None = 20,
    labels_per_class: Sequence[int] = (),
    raw: bool = False,
    seed: int = 0,
    image_size: int = 0,
    model_kwargs: dict[str, Any] | None = None,
    C: float = LINEAR_C,
    max_iter: int = LINEAR_MAX_ITER,
    batch_size: int = 256,
    device: str = "auto",
    progress: bool = True,
    log: Callable[[str], None] = lambda s: print(s, file=sys.stderr),
) -> dict[str, Any]:
    """Return the probe record: per training-set size (N per class, then all labels) the linear and k-NN top-1 (%)."""
    if not linear and not knn:
        raise ValueError("nothing to probe: ask for --linear, --knn K or both (the default)")
    if C <= 0:
        raise ValueError(f"--C (the inverse L2 strength) must be > 0; got {C}")
    if seed < 0:
        raise ValueError(f"--seed must be >= 0; got {seed}")
    if knn is not None and knn < 1:
        raise ValueError(f"--knn needs k >= 1 neighbours; got {knn}")
    if not 0 <= image_size <= MAX_IMAGE_SIZE:
        raise ValueError(
            f"--image-size must be a side of 1 to {MAX_IMAGE_SIZE} pixels (leave it out for the model's own); "
            f"got {image_size}"
        )
    dev = pick_device(device)
    src = load_source(
        source,
        raw=raw,
        data=data,
        root=root,
        seed=seed,
        device=dev,
        image_size=image_size,
        model_kwargs=model_kwargs,
    )
    name = data or src.data
    train_base, test_base, info = build_datasets(name, root=root or src.root)
    sizes = sorted(set(int(n) for n in labels_per_class))
    labels = dataset_labels(train_base)
    counts = torch.bincount(labels, minlength=info.num_classes)
    for n in sizes:  # refused before any feature is computed
        balanced_subset(labels, n, seed=seed, classes=info.classes)
    size = src.input_size or info.size
    in_chans = src.in_chans or info.in_chans
    if src.mean is not None:  # the network's own normalisation, whatever data it now sees
        info_tf = replace(info, mean=src.mean, std=src.std)
    else:
        info_tf = info
    tf = build_transforms(
        AugmentConfig(), info_tf, size=size, in_chans=in_chans, train=False, resize=info.size != tuple(size)
    )
    feats = {}
    timing = {}
    for split, base in (("train", train_base), ("test", test_base)):
        ds = TransformedDataset(base, tf)
        loader = make_loader(
            ds, EpochSampler(len(ds), seed=0, shuffle=False, pad=False), batch_size=batch_size
        )
        start = time.perf_counter()
        batches = _progress(loader, total=len(loader), desc=f"features ({split})", show=progress)
        feats[split] = extract(src, batches, device=dev)
        timing[split] = time.perf_counter() - start
        if progress:
            log(
                f"features ({split}): {len(ds):,} images -> {feats[split][0].shape[1]:,}-d in {timing[split]:.1f}s"
            )
    (train_x, train_y), (test_x, test_y) = feats["train"], feats["test"]
    rows = []
    for n in [*sizes, None]:  # few labels first, then the whole training split
        idx = (
            torch.arange(len(train_y))
            if n is None
            else balanced_subset(train_y, n, seed=seed, classes=info.classes)
        )
        row: dict[str, Any] = {"labels_per_class": "all" if n is None else n, "train_images": len(idx)}
        if linear:
            r = linear_probe(train_x[idx], train_y[idx], test_x, test_y, C=C, max_iter=max_iter, seed=seed)
            row.update(linear_top1=r["top1"], linear_converged=r["converged"])
        if knn:
            r = knn_probe(train_x[idx], train_y[idx], test_x, test_y, num_classes=info.num_classes, k=knn)
            row.update(knn_top1=r["top1"], knn_k=r["k"])
        rows.append(row)
    return {
        "source": src.name,
        "kind": src.kind,
        "model": src.model_name,
        "pretraining": src.pretraining,
        "dataset": name,
        "classes": list(info.classes),
        "smallest_class": int(counts.min()),
        "train_images": len(train_y),
        "test_images": len(test_y),
        "input_size": [in_chans, *size],
        "feature_dim": int(train_x.shape[1]),
        "model_kwargs": dict(model_kwargs or {}),
        "seed": seed,
        "linear": {
            "classifier": "LogisticRegression(lbfgs, L2)",
            "standardised": True,
            "C": C,
            "max_iter": max_iter,
        }
        if linear
        else None,
        "knn": {"k": knn, "temperature": KNN_TEMPERATURE, "similarity": "cosine"} if knn else None,
        "rows": rows,
        "extract_seconds": timing,
    }


def plot_probe(result: dict[str, Any], path: str | Path) -> Path:
    """Write a bar chart of the probe's top-1 per training-set size to ``path`` (PNG, atomically); return the path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = result["rows"]
    series = [(k, label) for k, label in (("linear_top1", "linear"), ("knn_top1", "k-NN")) if k in rows[0]]
    labels = [str(r["labels_per_class"]) for r in rows]
    fig, ax = plt.subplots(figsize=(1.2 + 1.1 * len(rows), 3.2))
    width = 0.8 / len(series)
    for j, (key, label) in enumerate(series):
        xs = np.arange(len(rows)) + (j - (len(series) - 1) / 2) * width
        values = [r[key] for r in rows]
        bars = ax.bar(xs, values, width, label=label)
        ax.bar_label(bars, fmt="%.1f", fontsize=7)
    ax.set_xticks(np.arange(len(rows)), labels)
    ax.set_xlabel("labels per class")
    ax.set_ylabel("held-out top-1 (%)")
    ax.set_ylim(0, 118)
    what = result["model"] or "pixels"
    ax.set_title(f"{result['kind']}: {what} on {result['dataset']}", fontsize=9)
    ax.legend(fontsize=8, loc="upper left", ncol=len(series), frameon=False)
    try:
        return atomic_savefig(fig, path)
    finally:
        plt.close(fig)


def write_probe(result: dict[str, Any], out: str | Path) -> list[Path]:
    """Write ``out``/probe.json and ``out``/probe.png atomically; return their paths."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = [atomic_write_text(out / "probe.json", json.dumps(result, indent=2) + "\n")]
    paths.append(plot_probe(result, out / "probe.png"))
    return paths
