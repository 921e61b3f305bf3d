"""Use a trained checkpoint: rebuild its model, evaluate it on a dataset, classify image files.

Every checkpoint the trainer writes (``last.pt``, ``best.pt``) carries what these need:
the config, model name, classes, channels, input size and normalisation statistics.
``predict`` checks each image against what the model was trained on (``domain.py``):
it inverts dark-on-light digits for a light-on-dark model, says so, and warns when an
image does not look like the training data.
"""

from __future__ import annotations

import zipfile
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from ..data import EpochSampler, TransformedDataset, build_datasets, build_transforms, make_loader
from ..data.datasets import DATASET_INFO, BadImageError, DatasetInfo, ImageFolderDataset
from ..models._resize import apply_structure
from ..registry import create_model, list_models
from .checkpoint import CheckpointError, backbone_state, is_pretraining_checkpoint, load_checkpoint
from .config import AugmentConfig, config_from_dict
from .domain import GREY_SATURATION, Reference, examine
from .engine import evaluate, pick_device

__all__ = ["classify_files", "evaluate_checkpoint", "load_model", "predict"]

_NOT_OURS = "not a checkpoint written by `cnnlineage train`"
_MAGIC = {b"\xff\xd8\xff": "a JPEG image", b"\x89PNG": "a PNG image", b"GIF8": "a GIF image", b"BM": "a BMP image",
          b"\x1f\x8b": "a gzip file", b"PK": "a zip archive", b"%PDF": "a PDF document"}  # fmt: skip


def _checked_path(path: str | Path) -> Path:
    """Return ``path`` if it can be a trainer checkpoint; CheckpointError saying what it is otherwise."""
    path = Path(path)
    if path.is_dir():
        hint = next(
            (
                f"; did you mean {p}?"
                for p in (path / "checkpoints" / "best.pt", path / "best.pt")
                if p.is_file()
            ),
            "; pass RUN_DIR/checkpoints/best.pt (or last.pt)",
        )
        raise CheckpointError(f"{path} is a directory, {_NOT_OURS}{hint}")
    if not path.exists():
        raise CheckpointError(f"checkpoint {path} does not exist")
    if not zipfile.is_zipfile(path):  # torch.save writes a zip archive; anything else is not ours
        with open(path, "rb") as f:
            head = f.read(8)
        kind = next((k for magic, k in _MAGIC.items() if head.startswith(magic)), "")
        raise CheckpointError(f"{path} is {_NOT_OURS}" + (f" (it is {kind})" if kind else ""))
    return path


def load_model(
    path: str | Path, *, device: str | torch.device = "cpu", backbone: bool = False
) -> tuple[nn.Module, dict[str, Any]]:
    """Return (model in eval mode with the checkpoint's weights, the checkpoint's metadata).

    A pre-training checkpoint (``cnnlineage pretrain``) has no trained classifier: it is
    refused, unless ``backbone`` asks for its network as it is (e.g. to profile it).
    """
    path = _checked_path(path)
    try:
        ckpt = load_checkpoint(path)
    except CheckpointError as e:  # keep the reason, never an unsafe way round it
        raise CheckpointError(_without_unsafe_advice(str(e))) from None
    missing = [
        k for k in ("model", "model_name", "num_classes", "in_chans", "input_size", "config") if k not in ckpt
    ]
    if missing:
        raise CheckpointError(f"{path} is {_NOT_OURS} (it has no {', '.join(missing)})")
    cfg = config_from_dict(ckpt["config"])
    name, kwargs = ckpt["model_name"], dict(cfg.model.kwargs)
    if is_pretraining_checkpoint(ckpt) and not backbone:
        raise CheckpointError(
            f"{path} is a pre-training checkpoint ({ckpt['ssl'].get('method')}): its classifier was never trained. "
            f"Probe it with `cnnlineage probe {path}` or fine-tune with `cnnlineage train {name} --init {path}`"
        )
    model = create_model(name, num_classes=ckpt["num_classes"], in_chans=ckpt["in_chans"], **kwargs)
    apply_structure(model, cfg.model.pruned)  # channel-pruned by `cnnlineage prune`: rebuild its widths
    state = backbone_state(ckpt)
    own, theirs = _shapes(model.state_dict()), _shapes(state)
    if own != theirs:
        held = _which_model(
            state, family=model.card.family, num_classes=ckpt["num_classes"], in_chans=ckpt["in_chans"]
        )
        differ = [k for k in own if k in theirs and own[k] != theirs[k]]
        missing, extra = [k for k in own if k not in theirs], [k for k in theirs if k not in own]
        first = (differ or missing or extra)[0]
        raise CheckpointError(
            f"{path} says it holds {name}"
            + (f" ({', '.join(f'{k}={v}' for k, v in kwargs.items())})" if kwargs else "")
            + f" but its weights do not fit {name}: {len(missing)} missing, {len(extra)} unexpected, "
            f"{len(differ)} mis-shaped tensors (first: {first})"
            + (f"; they fit {' or '.join(held)}" if held else "")
            + ". The file was edited or written for another architecture"
            + (
                ""
                if cfg.model.pruned or not differ
                else ", or channel-pruned without the config.model.pruned that `cnnlineage prune` writes"
            )  # fmt: skip
        )
    model.load_state_dict(state)
    model.to(device).eval()
    meta = {k: v for k, v in ckpt.items() if k not in ("model", "optimizer", "ema", "rng")}
    return model, meta


def _without_unsafe_advice(msg: str) -> str:
    # torch's messages suggest weights_only=False; this project never does.
    sentences = [s for s in msg.replace("\n", " ").split(". ") if "weights_only" not in s or "=True" in s]
    return ". ".join(sentences).strip()


def _shapes(state: dict[str, Any]) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in state.items() if isinstance(v, torch.Tensor)}


def _which_model(state: dict[str, Any], *, family: str, num_classes: int, in_chans: int) -> list[str]:
    """Return the models of ``family`` whose parameter names and shapes equal ``state``'s (built on the meta device)."""
    want, found = _shapes(state), []
    for name in list_models(family=family):
        try:
            with torch.device("meta"):
                candidate = create_model(name, num_classes=num_classes, in_chans=in_chans)
        except Exception:  # noqa: BLE001 - a model that cannot take these settings is not the one
            continue
        if _shapes(candidate.state_dict()) == want:
            found.append(name)
    return found


def _trained_on(meta: dict[str, Any]) -> tuple[str, int]:
    cfg = config_from_dict(meta["config"])
    info = DATASET_INFO.get(cfg.data.name)
    return cfg.data.name, info.in_chans if info is not None else meta["in_chans"]


def evaluate_checkpoint(
    path: str | Path,
    *,
    data: str | None = None,
    root: str | None = None,
    split: str = "test",
    batch_size: int = 500,
    device: str = "auto",
    allow_mismatch: bool = False,
) -> dict[str, Any]:
    """Return loss, top-1, top-5, per-class accuracy and confusion of a checkpoint on a dataset split.

    ``data``/``root`` default to the dataset the checkpoint was trained on; the images are
    resized and normalised exactly as in training. Another dataset whose class names or
    image channels differ from the training data is refused (its labels would be scored
    against classes the model never learned) unless ``allow_mismatch``.
    """
    dev = pick_device(device)
    model, meta = load_model(path, device=dev)
    cfg = config_from_dict(meta["config"])
    name, root = data or cfg.data.name, root or cfg.data.root
    train, test, info = build_datasets(
        name, root=root, download=False, skip_bad_images=cfg.data.skip_bad_images
    )
    trained, trained_chans = _trained_on(meta)
    if info.num_classes != meta["num_classes"]:
        raise ValueError(
            f"{path} predicts {meta['num_classes']} classes ({trained}) but {name} has {info.num_classes}; "
            f"evaluate it on {trained} or train a model for {name}"
        )
    classes = list(meta.get("classes") or [])
    differences = []
    if classes and classes != list(info.classes):
        differences.append(f"classes {_short(classes)} vs {_short(list(info.classes))}")
    if trained_chans != info.in_chans:
        differences.append(f"{trained_chans}-channel vs {info.in_chans}-channel images")
    if differences and not allow_mismatch:
        raise ValueError(
            f"{path} was trained on {trained}, not {name} ({'; '.join(differences)}): its answers would be "
            f"scored against labels it never learned. Evaluate on {trained}, or pass --allow-mismatch "
            "(allow_mismatch=True) to score it anyway"
        )
    base = test if split == "test" else train
    size = tuple(meta["input_size"][1:])
    # normalised as in training: with the checkpoint's statistics, also on another data set
    stats = replace(info, mean=tuple(meta.get("mean") or info.mean), std=tuple(meta.get("std") or info.std))
    tf = build_transforms(
        AugmentConfig(), stats, size=size, in_chans=meta["in_chans"], train=False, resize=info.size != size
    )
    ds = TransformedDataset(base, tf)
    loader = make_loader(ds, EpochSampler(len(ds), seed=0, shuffle=False, pad=False), batch_size=batch_size)
    out = evaluate(model, loader, device=dev, num_classes=info.num_classes)
    out.update(model=meta["model_name"], dataset=name, split=split, classes=list(info.classes))
    if differences:
        out["mismatch"] = f"trained on {trained}: " + "; ".join(differences)
    return out


def _short(names: list[str], n: int = 4) -> str:
    return ", ".join(names[:n]) + (", ..." if len(names) > n else "")


def predict(
    path: str | Path,
    images: list[str | Path],
    *,
    topk: int = 5,
    device: str = "auto",
    invert: str = "auto",
    show_input: str | Path | None = None,
) -> list[dict[str, Any]]:
    """Return, per image file, its top-k classes with probabilities, the preprocessing and any warnings.

    Each result is ``{"image", "top": [(class, p), ...], "preprocessing": [...], "warnings": [...]}``,
    or ``{"image", "error"}`` for a file that cannot be read (the others are still classified).
    ``invert`` is "auto" (invert dark-on-light images for a light-on-dark model), "never" or
    "always". ``show_input`` is a directory for PNGs of each input as the model saw it.
    """
    _check_predict_args(topk, invert)
    dev = pick_device(device)
    model, meta = load_model(path, device=dev)
    trained, trained_chans = _trained_on(meta)
    return classify_files(
        lambda x: model(x.to(dev)),
        images,
        dataset=trained,
        trained_chans=trained_chans,
        input_size=tuple(meta["input_size"]),
        mean=tuple(meta.get("mean") or DATASET_INFO[trained].mean),
        std=tuple(meta.get("std") or DATASET_INFO[trained].std),
        classes=list(meta.get("classes") or [str(i) for i in range(meta["num_classes"])]),
        topk=topk,
        invert=invert,
        show_input=show_input,
    )


def _check_predict_args(topk: Any, invert: str) -> None:
    if isinstance(topk, bool) or not isinstance(topk, int) or topk < 1:
        raise ValueError(f"topk must be a positive integer, got {topk!r}")
    if invert not in ("auto", "never", "always"):
        raise ValueError(f"invert must be 'auto', 'never' or 'always', got {invert!r}")


def classify_files(
    model: Callable[[torch.Tensor], torch.Tensor],
    images: list[str | Path],
    *,
    dataset: str,
    trained_chans: int,
    input_size: tuple[int, int, int],
    mean: tuple[float, ...],
    std: tuple[float, ...],
    classes: list[str],
    topk: int = 5,
    invert: str = "auto",
    show_input: str | Path | None = None,
) -> list[dict[str, Any]]:
    """Return what :func:`predict` returns, for any callable computing logits (a checkpoint's model, ONNX, int8).

    ``dataset``/``trained_chans`` describe the training images (for the checks of
    ``domain.py``), ``input_size`` is the model's (C, H, W), ``mean``/``std`` its
    normalisation and ``classes`` its class names in label order.
    """
    _check_predict_args(topk, invert)
    info = DatasetInfo("files", len(classes), 3, (0, 0), tuple(mean), tuple(std))  # files are read as RGB
    chans, size = int(input_size[0]), tuple(int(v) for v in input_size[1:])
    tf = build_transforms(AugmentConfig(), info, size=size, in_chans=chans, train=False)
    norm_mean, norm_std = _normalisation(tf)
    ref = Reference(dataset, trained_chans, size, sum(mean) / len(mean))
    out_dir = Path(show_input) if show_input is not None else None
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
    files = [Path(p) for p in images]
    reader = ImageFolderDataset(files, [0] * len(files), ["?"])
    results: list[dict[str, Any]] = []
    for i, f in enumerate(files):
        if not f.is_file():
            results.append(
                {"image": str(f), "error": f"{f} {'is a directory' if f.is_dir() else 'does not exist'}"}
            )
            continue
        try:
            rgb = reader.load(i)  # (3, H, W) uint8
        except BadImageError as e:
            results.append({"image": str(f), "error": str(e)})
            continue
        report = examine(rgb, ref, invert=invert)
        flip = report.invert
        x = tf(255 - rgb if flip else rgb)  # (C, h, w), normalised
        with torch.no_grad():
            probs = torch.softmax(model(x.unsqueeze(0)).float(), dim=1)[0]
        p, idx = probs.topk(min(topk, len(probs)))
        steps = _steps(report, ref, chans, size, flip, invert, norm_mean, norm_std)
        result = {"image": str(f), "top": [(classes[j], float(q)) for q, j in zip(p.tolist(), idx.tolist())],
                  "preprocessing": steps, "warnings": report.warnings, "inverted": flip}  # fmt: skip
        if report.warnings:
            result["summary"] = (
                f"does not look like the training data ({ref.describe()}): {'; '.join(report.warnings)}. "
                "The prediction is unreliable"
            )
        if out_dir is not None:
            result["model_input"] = str(_save_input(x, norm_mean, norm_std, out_dir / f"{f.stem}.input.png"))
        results.append(result)
    return results


def _normalisation(tf: Any) -> tuple[torch.Tensor, torch.Tensor]:
    from torchvision.transforms import v2

    for t in tf.static.transforms:
        if isinstance(t, v2.Normalize):
            return torch.tensor(t.mean).view(-1, 1, 1), torch.tensor(t.std).view(-1, 1, 1)
    raise AssertionError("the inference pipeline has no Normalize step")


def _steps(report: Any, ref: Reference, chans: int, size: tuple, flip: bool, invert: str,
           mean: torch.Tensor, std: torch.Tensor) -> list[str]:  # fmt: skip
    """Return the preprocessing applied to one image, in order, in words."""
    h, w = report.size
    kind = "colour" if report.saturation > 0.1 else "grey"
    steps = [f"read {w}x{h} ({kind}, mean intensity {report.mean:.2f})"]
    if chans == 1 and report.saturation >= GREY_SATURATION:
        steps.append("to grey (mean of R, G, B)")
    if (h, w) != tuple(size):
        steps.append(f"resize to {size[0]}x{size[1]}")
    if flip:
        why = (
            f"background {report.background:.2f}: dark on light, the training images are light on dark"
            if invert == "auto"
            else "asked for"
        )
        steps.append(f"invert ({why})")
    fmt = lambda t: ", ".join(f"{v:.4f}" for v in t.flatten().tolist())  # noqa: E731
    steps.append(f"scale to [0, 1], normalise with mean ({fmt(mean)}) and std ({fmt(std)})")
    return steps


def _save_input(x: torch.Tensor, mean: torch.Tensor, std: torch.Tensor, path: Path) -> Path:
    """Write the model's input (C, h, w), un-normalised to [0, 255], as a PNG; return its path.

    Small inputs are enlarged by an integer factor (nearest neighbour) to at least 224
    pixels, so each pixel the model saw is a visible square and no value is changed.
    """
    import io

    from PIL import Image

    from ..common import atomic_write_bytes

    pixels = ((x * std + mean).clamp(0, 1) * 255).round().to(torch.uint8)  # (C, h, w)
    scale = max(1, -(-224 // max(pixels.shape[-2:])))
    if scale > 1:
        pixels = pixels.repeat_interleave(scale, dim=-2).repeat_interleave(scale, dim=-1)
    array = pixels.permute(1, 2, 0).numpy()
    image = Image.fromarray(array[..., 0] if array.shape[-1] == 1 else array)
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return atomic_write_bytes(path, buf.getvalue())
