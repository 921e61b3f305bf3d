"""What every visualisation starts from: a model with its data conventions, input images and layer look-up.

A *subject* is a model in eval mode together with what is needed to show it honestly: the
input size it expects, the normalisation and class names of the data set it was trained
on (from a ``cnnlineage train`` checkpoint), and how to rebuild it on the ``meta`` device so
that :func:`cnnlineage.analysis.profile` can give each layer's output shape and receptive
field without touching real weights. Images are read with Pillow in any mode and size,
converted and resized exactly as ``cnnlineage predict`` does, and each keeps a one-line note
of what was done to it, which the figures print.
"""

from __future__ import annotations

import copy
import difflib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn

__all__ = [
    "Example",
    "LayerGeometry",
    "Visual",
    "Subject",
    "dataset_examples",
    "find_layer",
    "layer_geometry",
    "load_images",
    "load_subject",
    "resolve_target",
]


@dataclass
class Subject:
    """A model to look inside, with the conventions of its data."""

    model: nn.Module  # eval mode, in-place activations switched off (attribution hooks need that)
    name: str  # registered model name
    input_size: tuple[int, int, int]  # (C, H, W) the model takes
    mean: tuple[float, ...]  # per-channel normalisation of [0, 1] pixels
    std: tuple[float, ...]
    classes: list[str]  # class names in label order
    dataset: str | None  # the data set it was trained on (None: a bare registered model)
    data_root: str = "data"  # root of on-disk data sets (mnist, cifar, imagefolder)
    source: str = ""  # "checkpoint PATH" or "random init"
    rebuild: Callable[[], nn.Module] | None = field(default=None, repr=False)  # same model, new weights
    _geometry: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def label(self) -> str:
        """Return "lenet5 (checkpoint runs/x/best.pt)" for figure titles."""
        return f"{self.name} ({self.source})"


@dataclass
class Example:
    """One input image: normalised tensor for the model, a displayable copy, and its story."""

    x: torch.Tensor  # (C, H, W) normalised, the model's size
    display: np.ndarray  # (H, W) grey or (H, W, 3) RGB in [0, 1], the model's size
    name: str  # file stem or "mnist5k test #12"
    note: str  # what was done to it: "photo.jpg 640x480 RGBA -> 1x28x28 (resized, to grey)"
    label: int | None = None  # true class when known (data set samples)


@dataclass
class Visual:
    """What a visualisation returns: its arrays, the PNGs it wrote and the figures it measured."""

    kind: str  # "gradcam", "filters", ...
    arrays: dict[str, np.ndarray]  # e.g. {"gradcam": (N, H, W)}
    paths: list[Path] = field(default_factory=list)  # PNG files written (empty without out_dir)
    info: dict[str, Any] = field(default_factory=dict)  # layer, targets, measured numbers


@dataclass(frozen=True)
class LayerGeometry:
    """A layer's output as the analyzer sees it: shape and receptive field in input pixels."""

    name: str
    output_shape: tuple[int, ...]  # (1, C, H, W) or (1, N, D) ...
    receptive_field: int | tuple[int, int] | None  # input pixels one unit sees
    jump: float | tuple[float, float] | None  # distance in input pixels between neighbouring units
    start: float | tuple[float, float] | None  # input coordinate of the centre of unit 0
    global_rf: bool  # the unit sees the whole input (after attention, global pooling, ...)
    local_rf: int | tuple[int, int] | None = None  # field through the convolution and pooling paths alone

    def square(self) -> tuple[int, int] | None:
        """Return the (H, W) field to draw: the theoretical one, or the convolutional paths' where it is global."""
        rf = self.local_rf if self.global_rf else self.receptive_field
        return None if rf is None else (rf, rf) if isinstance(rf, int) else tuple(rf)

    def describe(self) -> str:
        """Return "64x56x56, receptive field 11 px, stride 4" for a title."""
        shape = "x".join(str(s) for s in self.output_shape[1:])
        if self.global_rf:
            local = self.square()
            conv = f" (convolutional paths {local[0]} px)" if local else ""
            return f"{shape}, receptive field: whole input{conv}"
        if self.receptive_field is None:
            return shape
        rf = (
            self.receptive_field
            if isinstance(self.receptive_field, int)
            else "x".join(map(str, self.receptive_field))
        )
        jump = self.jump if not isinstance(self.jump, tuple) else self.jump[0]
        return f"{shape}, receptive field {rf} px, stride {jump:g}"


def _pair(v: Any) -> tuple[float, float]:
    return (float(v[0]), float(v[1])) if isinstance(v, (tuple, list)) else (float(v), float(v))


def _no_inplace(model: nn.Module) -> nn.Module:
    # Captum's backward hooks (guided backprop, deconvnet) cannot wrap in-place ReLUs; the
    # results are the same either way, only memory differs.
    for m in model.modules():
        if getattr(m, "inplace", False) is True:
            m.inplace = False
    return model


def load_subject(
    spec: str | Path | nn.Module, *, data: str | None = None, data_root: str = "data"
) -> Subject:
    """Return the :class:`Subject` for a checkpoint path, a registered model name or a model.

    A ``cnnlineage train`` checkpoint brings its data set's normalisation and class names;
    a bare model is randomly initialised and uses ``data``'s statistics when given, else
    ImageNet's (3 channels) or MNIST's (1 channel), with classes numbered.
    """
    from ..data.datasets import DATASET_INFO
    from ..registry import create_model, get_builder

    if isinstance(spec, nn.Module):
        model = _no_inplace(copy.deepcopy(spec)).eval()
        name = getattr(model, "model_name", "") or type(model).__name__
        return _bare(model, name, lambda: copy.deepcopy(spec), data, data_root, "given model")
    text = str(spec)
    path = Path(text)
    if path.is_file():
        from ..train.config import config_from_dict
        from ..train.inference import load_model

        model, meta = load_model(path)
        cfg = config_from_dict(meta["config"])
        info = DATASET_INFO.get(cfg.data.name)
        kwargs = dict(num_classes=meta["num_classes"], in_chans=meta["in_chans"], **cfg.model.kwargs)
        classes = list(meta.get("classes") or [str(i) for i in range(meta["num_classes"])])
        mean, std = _stats(info.mean if info else (0.5,), info.std if info else (0.5,), meta["in_chans"])
        return Subject(
            model=_no_inplace(model).eval(), name=meta["model_name"], input_size=tuple(meta["input_size"]),
            mean=mean, std=std, classes=classes, dataset=cfg.data.name, data_root=cfg.data.root,
            source=f"checkpoint {path}", rebuild=lambda: create_model(meta["model_name"], **kwargs),
        )  # fmt: skip
    if path.suffix in (".pt", ".pth", ".ckpt") or "/" in text:
        raise ValueError(
            f"no checkpoint file {text}: give a `cnnlineage train` checkpoint or a registered model name"
        )
    get_builder(text)  # unknown names: ValueError with the closest registered ones
    model = _no_inplace(create_model(text)).eval()
    return _bare(model, text, lambda: create_model(text), data, data_root, "random init")


def _stats(
    mean: Sequence[float], std: Sequence[float], chans: int
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    if len(mean) == chans:
        return tuple(mean), tuple(std)
    if len(mean) == 1:
        return tuple(mean) * chans, tuple(std) * chans
    return (sum(mean) / len(mean),) * chans, (sum(std) / len(std),) * chans  # RGB statistics, grey model


def _bare(
    model: nn.Module, name: str, rebuild: Callable, data: str | None, root: str, source: str
) -> Subject:
    from ..data.datasets import DATASET_INFO

    c, h, w = getattr(model, "input_size", (3, 224, 224))
    n = int(getattr(model, "num_classes", 0) or 0)
    if data is not None:
        if data not in DATASET_INFO:
            raise ValueError(f"unknown data set {data!r}; known: {', '.join(DATASET_INFO)}")
        info = DATASET_INFO[data]
    else:
        info = DATASET_INFO["imagefolder" if c == 3 else "mnist"]  # ImageNet or MNIST statistics
    mean, std = _stats(info.mean, info.std, c)
    return Subject(
        model=model, name=name, input_size=(c, h, w), mean=mean, std=std,
        classes=[f"class {i}" for i in range(n)], dataset=data, data_root=root, source=source, rebuild=rebuild,
    )  # fmt: skip


# ----------------------------------------------------------------------------------- images
def _display(x: torch.Tensor, subject: Subject) -> np.ndarray:
    mean = torch.tensor(subject.mean).view(-1, 1, 1)
    std = torch.tensor(subject.std).view(-1, 1, 1)
    img = (x * std + mean).clamp(0, 1).permute(1, 2, 0).numpy()  # (H, W, C)
    return img[..., 0] if img.shape[-1] == 1 else img


def _pipeline(subject: Subject, native: tuple[int, int], in_chans: int):
    from ..data.datasets import DatasetInfo
    from ..data.transforms import build_transforms
    from ..train.config import AugmentConfig

    info = DatasetInfo("input", len(subject.classes), in_chans, native, subject.mean, subject.std)
    size = tuple(subject.input_size[1:])
    return build_transforms(
        AugmentConfig(), info, size=size, in_chans=subject.input_size[0], train=False, resize=native != size
    )


def load_images(subject: Subject, paths: Sequence[str | Path]) -> list[Example]:
    """Return the image files as :class:`Example` inputs of the subject's size, channels and normalisation.

    Any Pillow-readable PNG/JPEG works: palette, RGBA, 16-bit and CMYK images are converted
    to RGB first, then resized (antialiased) and reduced to grey where the model takes one
    channel. A file that is not an image raises ValueError naming it.
    """
    from PIL import Image, UnidentifiedImageError

    out = []
    for p in paths:
        path = Path(p)
        if not path.is_file():
            raise ValueError(f"image {path} does not exist")
        try:
            with Image.open(path) as im:
                mode, (w, h) = im.mode, im.size
                if mode.startswith("I"):  # 16/32-bit grey: scale to 8 bits instead of clipping
                    arr = np.asarray(im, dtype=np.float64)
                    im = Image.fromarray((255 * arr / max(arr.max(), 1)).astype(np.uint8))
                rgb = im.convert("RGB")
        except (UnidentifiedImageError, OSError, ValueError) as e:
            raise ValueError(
                f"{path} is not a readable image ({type(e).__name__}); give a PNG or JPEG file"
            ) from None
        pixels = torch.from_numpy(np.asarray(rgb, dtype=np.uint8).copy()).permute(2, 0, 1)  # (3, H, W)
        x = _pipeline(subject, (h, w), 3)(pixels).float()
        c, mh, mw = subject.input_size
        steps = [] if (h, w) == (mh, mw) else ["resized"]
        if c == 1:
            steps.append("to grey")
        elif mode != "RGB":
            steps.append("to RGB")
        how = f" ({', '.join(steps)})" if steps else ""
        note = f"{path.name} {w}x{h} {mode} -> {c}x{mh}x{mw}{how}"
        out.append(Example(x=x, display=_display(x, subject), name=path.stem, note=note))
    return out


def dataset_examples(
    subject: Subject, *, split: str = "test", indices: Sequence[int] = (0,)
) -> list[Example]:
    """Return samples of the subject's data set (held-out split by default) as :class:`Example` inputs."""
    ds, info = _dataset(subject, split)
    tf = _pipeline(subject, info.size, info.in_chans)
    out = []
    for i in indices:
        if not 0 <= i < len(ds):
            raise ValueError(
                f"sample index {i} out of range: {info.name} {split} has {len(ds)} images (0..{len(ds) - 1})"
            )
        img, label = ds[i]
        x = tf(img).float()
        c, h, w = subject.input_size
        note = f"{info.name} {split} #{i} {img.shape[-1]}x{img.shape[-2]} -> {c}x{h}x{w}"
        out.append(
            Example(x=x, display=_display(x, subject), name=f"{info.name}-{split}{i}", note=note, label=label)
        )
    return out


def _dataset(subject: Subject, split: str):
    """Return (untransformed data set of a split, its DatasetInfo)."""
    from torch.utils.data import ConcatDataset

    from ..data import build_datasets

    if subject.dataset is None:
        raise ValueError(
            f"{subject.name} is a bare model with no data set: pass --data NAME (e.g. mnist5k) or image files"
        )
    if split not in ("train", "test", "all"):
        raise ValueError(f"split must be train, test or all, got {split!r}")
    train, test, info = build_datasets(subject.dataset, root=subject.data_root)
    ds = {"train": train, "test": test, "all": ConcatDataset([train, test])}[split]
    return ds, info


# ----------------------------------------------------------------------------------- layers
def find_layer(model: nn.Module, name: str) -> nn.Module:
    """Return the submodule called ``name``; ValueError listing the valid names, nearest first."""
    modules = dict(model.named_modules())
    modules.pop("", None)
    if name in modules:
        return modules[name]
    ranked = sorted(modules, key=lambda n: -difflib.SequenceMatcher(None, name, n).ratio())
    shown = ", ".join(ranked[:8])
    raise ValueError(
        f"unknown layer {name!r}; nearest of the {len(modules)} layers: {shown}"
        f"{', ...' if len(ranked) > 8 else ''} (all: `cnnlineage summary MODEL --depth 9`)"
    )


def _profile(subject: Subject):
    """Return the analyzer's Profile of the subject's architecture (built once, on the meta device)."""
    from ..analysis import profile

    if "profile" not in subject._geometry:
        with torch.device("meta"):
            meta = subject.rebuild() if subject.rebuild else copy.deepcopy(subject.model)
        subject._geometry["profile"] = profile(meta.to("meta"), subject.input_size, device="meta")
    return subject._geometry["profile"]


def layer_geometry(subject: Subject, name: str) -> LayerGeometry:
    """Return the analyzer's output shape and receptive field for layer ``name`` (its last operation)."""
    rows = [r for r in _profile(subject).rows if r.name == name or r.name.startswith(name + ".")]
    if not rows:
        find_layer(subject.model, name)  # unknown: the nearest-first error
        raise ValueError(f"layer {name!r} of {subject.name} is not called in the forward pass")
    r = rows[-1]
    return LayerGeometry(
        name, tuple(r.output_shape), r.receptive_field, r.jump, r.start, r.global_rf, r.local_rf
    )


def resolve_target(subject: Subject, target: str | int | None) -> int | None:
    """Return a class index from an index or a class name (None stays None)."""
    if target is None:
        return None
    n = len(subject.classes)
    text = str(target)
    if text in subject.classes and not text.isdigit():
        return subject.classes.index(text)
    try:
        idx = int(text)
    except ValueError:
        if text in subject.classes:
            return subject.classes.index(text)
        raise ValueError(f"unknown class {text!r}; classes: {', '.join(subject.classes[:20])}") from None
    if not 0 <= idx < n:
        raise ValueError(f"target class {idx} out of range: {subject.name} has {n} classes (0..{n - 1})")
    return idx


def unit_centre(geom: LayerGeometry, row: int, col: int) -> tuple[float, float]:
    """Return the input (y, x) of the centre of unit (row, col) of a layer."""
    (jy, jx), (sy, sx) = _pair(geom.jump), _pair(geom.start)
    return sy + jy * row, sx + jx * col


def spatial_layers(subject: Subject) -> list[str]:
    """Return the module names whose output is a feature map (N, C, H, W) with H·W > 1, in execution order."""
    modules = dict(subject.model.named_modules())
    names: list[str] = []
    for r in _profile(subject).rows:
        if len(r.output_shape) == 4 and r.output_shape[2] * r.output_shape[3] > 1 and r.name in modules:
            if r.name not in names:
                names.append(r.name)
    return names


def default_layer(subject: Subject) -> str:
    """Return the last convolutional stage with a spatial map: the deepest ``feature_info`` stage with H·W > 1.

    Grad-CAM's choice (Selvaraju et al. 2017 §3: the last convolutional layer, where
    high-level semantics and spatial detail meet). LeNet-5's C5 is 1x1, so S4 is taken.
    """
    stages = [f["module"] for f in getattr(subject.model, "feature_info", []) if "module" in f]
    for name in reversed(stages):
        g = layer_geometry(subject, name)
        if len(g.output_shape) == 4 and g.output_shape[2] * g.output_shape[3] > 1:
            return name
    names = spatial_layers(subject)
    if not names:
        raise ValueError(f"{subject.name} has no layer with a spatial output (N, C, H, W)")
    return names[-1]


def spatial_geometry(subject: Subject, name: str, *, kind: str) -> LayerGeometry:
    """Return the geometry of a layer that must output a feature map; ValueError naming the shape otherwise."""
    find_layer(subject.model, name)
    g = layer_geometry(subject, name)
    if len(g.output_shape) != 4:
        shape = "x".join(map(str, g.output_shape[1:]))
        near = ", ".join(spatial_layers(subject)[-4:])
        raise ValueError(
            f"{kind} needs a layer with a spatial output (C, H, W); {name} of {subject.name} outputs {shape}. "
            f"Try a convolutional layer, e.g. {near}"
        )
    return g


def check_channel(geom: LayerGeometry, channel: int | None) -> None:
    """Raise ValueError if ``channel`` is not a channel of the layer's output."""
    if channel is None:
        return
    n = geom.output_shape[1]
    if not 0 <= channel < n:
        raise ValueError(f"channel {channel} out of range: {geom.name} has {n} channels (0..{n - 1})")


def place_maps(maps: torch.Tensor, geom: LayerGeometry, size: tuple[int, int]) -> torch.Tensor:
    """Return layer maps (N, h, w) resampled to the input (N, H, W) where the units actually sit.

    Unit (i, j) is put at the centre of its receptive field, ``start + jump·(i, j)`` from
    the analyzer, and values in between are interpolated bilinearly (held constant beyond
    the outermost units). A plain resize would spread the h units evenly over the image,
    which misplaces them by up to half a stride where padding is uneven (ResNet's layer4:
    16 px at 224x224; LeNet-5 padding 28x28 digits to 32x32).
    """
    n, h, w = maps.shape
    if geom.jump is None or geom.start is None:
        return torch.nn.functional.interpolate(
            maps[:, None], size=size, mode="bilinear", align_corners=False
        )[:, 0]
    (jy, jx), (sy, sx) = _pair(geom.jump), _pair(geom.start)
    ys = (torch.arange(size[0], dtype=torch.float64) - sy) / jy  # fractional unit row of each input row
    xs = (torch.arange(size[1], dtype=torch.float64) - sx) / jx
    gy = (
        (2 * ys / max(h - 1, 1) - 1) if h > 1 else torch.zeros_like(ys)
    )  # grid_sample's [-1, 1], align_corners
    gx = (2 * xs / max(w - 1, 1) - 1) if w > 1 else torch.zeros_like(xs)
    grid = torch.stack(torch.meshgrid(gx, gy, indexing="xy"), dim=-1).to(maps.dtype)  # (H, W, 2) as (x, y)
    grid = grid[None].expand(n, -1, -1, -1)
    out = torch.nn.functional.grid_sample(
        maps[:, None], grid, mode="bilinear", padding_mode="border", align_corners=True
    )
    return out[:, 0]
