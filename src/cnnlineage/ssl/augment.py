"""The augmented views of self-supervised pre-training, small-image versions of the papers' (torchvision v2).

Each method sees an image through several random views; what a view may do is the
paper's recipe, scaled to the 8-32 pixel images that train on a CPU:

- SimCLR (Chen et al. 2020, App. A) and MoCo v2 (Chen et al. 2020): random resized crop,
  horizontal flip, colour jitter (p 0.8) and random grey (p 0.2); the same for both views.
- BYOL (Grill et al. 2020, Table 6): the same, with asymmetric Gaussian blur (p 1.0 / 0.1)
  and solarisation (p 0 / 0.2) on the two views.
- DINO (Caron et al. 2021): two global crops (crop scale 0.4-1, blur 1.0 / 0.1, solarise
  0 / 0.2) and ``local_crops`` small crops (scale 0.05-0.4, blur 0.5) at about 96/224 of
  the global side.
- MAE (He et al. 2022): one view, random resized crop (scale 0.2-1) and flip.

Small images change three things, all derived from the data set's info: colour jitter,
grey and solarisation only for colour data; no horizontal flip for digits (a mirrored
2 is not a 2); Gaussian blur only on images of 64 pixels or more (SimCLR dropped it for
CIFAR-10, App. B.9), its kernel a tenth of the side; and a crop keeps at least 20 % of the
area below 64 pixels (0.08 of a 28-pixel digit is a stroke fragment; MoCo v2 uses 0.2).

Determinism: every view of sample ``i`` in epoch ``e`` is drawn under the sample's seed
``mix_seed(seed, e, i)`` (the trainer's :class:`~cnnlineage.data.EpochSampler`), one view
after the other from the same stream, so the views differ from each other and depend on
(seed, epoch, index) only: a resumed run sees exactly the views it would have seen.

Written with torchvision's v2 transforms rather than ``lightly.transforms``: lightly's
pipelines are sized for 224-pixel PIL images and would need every parameter changed here,
and v2 on uint8 tensors draws only from torch's generator, which :func:`seeded` controls.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch.utils.data import Dataset
from torchvision.transforms import v2

from ..data.datasets import DatasetInfo, TensorImageDataset
from ..data.transforms import RandomAffine, seeded

__all__ = [
    "DIGIT_SETS",
    "ViewSpec",
    "ViewsDataset",
    "build_views",
    "describe_views",
    "local_crop_size",
    "view_specs",
]

DIGIT_SETS = ("mnist5k", "mnist", "digits")  # handwritten digits: no horizontal flip
CACHE_LIMIT_BYTES = 1 << 30  # cache the resized images of in-memory datasets up to 1 GiB
SMALL = 64  # sides below this count as small images (no blur, crops of at least MIN_SMALL_SCALE)
MIN_SMALL_SCALE = 0.2


@dataclass(frozen=True)
class ViewSpec:
    """One kind of random view: crop, flip, colour and blur settings (probabilities in [0, 1])."""

    size: tuple[int, int]  # output (H, W)
    scale: tuple[float, float]  # random resized crop: range of the crop's area fraction
    hflip: float = 0.0  # probability of a horizontal flip
    jitter: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)  # brightness, contrast, saturation, hue
    jitter_p: float = 0.0  # probability of applying the colour jitter
    grey: float = 0.0  # probability of turning the view grey (3 channels kept)
    blur: float = 0.0  # probability of a Gaussian blur, sigma in [0.1, 2]
    solarize: float = 0.0  # probability of solarising (pixels >= 128 inverted)
    affine: tuple[float, float, float] = (0.0, 0.0, 0.0)  # rotation degrees, shift fraction, zoom (0 = off)


def local_crop_size(model: torch.nn.Module, size: tuple[int, int]) -> tuple[int, int]:
    """Return the side of DINO's local crops for ``model``: ~96/224 of ``size``, within what the model takes.

    A model that takes one input size only (LeNet-5) gets its local crops at the global
    size; otherwise the side is rounded to the model's ``size_multiple`` (a ViT's patch)
    and kept at or above its ``min_size``.
    """
    if getattr(model, "fixed_size", False):
        return size
    multiple = max(1, int(getattr(model, "size_multiple", 1)))
    low = getattr(model, "min_size", (1, 1))
    out = []
    for side, least in zip(size, low):
        s = max(multiple, int(round(side * 96 / 224 / multiple)) * multiple)
        s = max(s, math.ceil(least / multiple) * multiple)
        out.append(min(s, side))
    return tuple(out)


def view_specs(
    method: str,
    info: DatasetInfo,
    size: tuple[int, int],
    *,
    local_crops: int = 0,
    local_size: tuple[int, int] | None = None,
    min_scale: float = 0.0,
    affine: tuple[float, float, float] = (0.0, 0.0, 0.0),
) -> list[ViewSpec]:
    """Return the views ``method`` draws of each image of the data set ``info`` at model input ``size``.

    ``min_scale`` > 0 replaces the smallest crop area of the full-size views (DINO's global
    crops; its local crops keep theirs), e.g. 0.5 to keep at least half of a digit.
    ``affine`` (degrees, translate, scale) adds the trainer's random rotation, shift and zoom
    (:class:`~cnnlineage.data.transforms.RandomAffine`) to every view, after the crop.
    """
    colour = info.in_chans == 3
    small = min(size) < SMALL
    flip = 0.0 if info.name in DIGIT_SETS else 0.5

    def lo(paper_min: float) -> float:
        if min_scale:
            return min_scale
        return max(paper_min, MIN_SMALL_SCALE) if small else paper_min

    def view(
        scale: tuple[float, float],
        *,
        at: tuple[int, int] = size,
        jitter: tuple[float, float, float, float] = (0.4, 0.4, 0.4, 0.1),
        blur: float = 0.0,
        solarize: float = 0.0,
    ) -> ViewSpec:
        return ViewSpec(
            size=at,
            scale=scale,
            hflip=flip,
            jitter=jitter if colour else (0.0, 0.0, 0.0, 0.0),
            jitter_p=0.8 if colour else 0.0,
            grey=0.2 if colour else 0.0,
            blur=0.0 if small else blur,
            solarize=solarize if colour else 0.0,
            affine=tuple(affine),
        )

    if method in ("simclr", "moco"):
        # SimCLR: jitter strength s = 1 -> (0.8, 0.8, 0.8, 0.2); MoCo v2 uses (0.4, 0.4, 0.4, 0.1) and scale 0.2
        jitter = (0.8, 0.8, 0.8, 0.2) if method == "simclr" else (0.4, 0.4, 0.4, 0.1)
        paper_min = 0.08 if method == "simclr" else 0.2
        return [view((lo(paper_min), 1.0), jitter=jitter, blur=0.5) for _ in range(2)]
    if method == "byol":
        jitter = (0.4, 0.4, 0.2, 0.1)
        return [
            view((lo(0.08), 1.0), jitter=jitter, blur=1.0),
            view((lo(0.08), 1.0), jitter=jitter, blur=0.1, solarize=0.2),
        ]
    if method == "dino":
        jitter = (0.4, 0.4, 0.2, 0.1)
        glob = (min_scale or 0.4, 1.0)
        views = [
            view(glob, jitter=jitter, blur=1.0),
            view(glob, jitter=jitter, blur=0.1, solarize=0.2),
        ]
        local = (max(0.05, MIN_SMALL_SCALE) if small else 0.05, 0.4)
        at = local_size or size
        return views + [view(local, at=at, jitter=jitter, blur=0.5) for _ in range(local_crops)]
    if method == "mae":
        return [ViewSpec(size=size, scale=(min_scale or 0.2, 1.0), hflip=flip, affine=tuple(affine))]
    raise ValueError(f"unknown self-supervised method {method!r}; known: simclr, moco, byol, dino, mae")


def _transform(spec: ViewSpec, mean: Sequence[float], std: Sequence[float]) -> v2.Compose:
    """Return the random part of one view: uint8 (C, H, W) in, normalised float (C, *spec.size) out."""
    steps: list[torch.nn.Module] = [v2.RandomResizedCrop(list(spec.size), scale=spec.scale, antialias=True)]
    if spec.hflip:
        steps.append(v2.RandomHorizontalFlip(spec.hflip))
    if spec.jitter_p:
        b, c, s, h = spec.jitter
        steps.append(v2.RandomApply([v2.ColorJitter(b, c, s, h)], p=spec.jitter_p))
    if spec.grey:
        steps.append(v2.RandomGrayscale(spec.grey))
    if spec.blur:
        k = max(3, int(0.1 * min(spec.size)) // 2 * 2 + 1)  # odd, about a tenth of the side (SimCLR)
        steps.append(v2.RandomApply([v2.GaussianBlur(k, sigma=(0.1, 2.0))], p=spec.blur))
    if spec.solarize:
        steps.append(v2.RandomSolarize(128, p=spec.solarize))
    steps.append(v2.ToDtype(torch.float32, scale=True))
    if any(spec.affine):
        steps.append(RandomAffine(*spec.affine))  # on [0, 1] floats: the zero fill is black
    steps.append(v2.Normalize(list(mean), list(std)))
    return v2.Compose(steps)


@dataclass
class MultiView:
    """The static part (resize to the model's input, cacheable) and one random transform per view."""

    static: v2.Compose
    views: list[v2.Compose]
    specs: list[ViewSpec]

    def __call__(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.static(x)
        return [t(x) for t in self.views]


def build_views(
    specs: Sequence[ViewSpec], info: DatasetInfo, *, size: tuple[int, int], resize: bool
) -> MultiView:
    """Return the multi-view pipeline of ``specs`` for the data set ``info`` (images resized to ``size`` first)."""
    static = v2.Compose([v2.Resize(list(size), antialias=True)] if resize else [v2.Identity()])
    return MultiView(static, [_transform(s, info.mean, info.std) for s in specs], list(specs))


def describe_views(mv: MultiView) -> str:
    """Return a one-line summary of the views, for the printed run header."""
    groups: dict[ViewSpec, int] = {}
    for s in mv.specs:
        groups[s] = groups.get(s, 0) + 1
    parts = []
    for s, n in groups.items():
        ops = [f"crop {s.scale[0]:g}-{s.scale[1]:g} to {s.size[0]}x{s.size[1]}"]
        ops += [f"flip {s.hflip:g}"] if s.hflip else []
        ops += [f"jitter {s.jitter_p:g}"] if s.jitter_p else []
        ops += [f"grey {s.grey:g}"] if s.grey else []
        ops += [f"blur {s.blur:g}"] if s.blur else []
        ops += [f"solarize {s.solarize:g}"] if s.solarize else []
        ops += ["affine {:g}deg/{:g}/{:g}".format(*s.affine)] if any(s.affine) else []
        parts.append(f"{n}x({', '.join(ops)})")
    return " + ".join(parts)


class ViewsDataset(Dataset):
    """A dataset whose items are ``(list of views, label)``; keys are an index or ``(index, seed)``.

    With a key ``(index, seed)`` all views are drawn under that seed, one after another. For
    an in-memory :class:`TensorImageDataset` the resize is applied once and cached (as
    :class:`~cnnlineage.data.TransformedDataset` does). A batch (``__getitems__``) comes
    back already collated: ``[(list of (B, C, H, W) views, labels (B,))]``.
    """

    def __init__(self, base: Dataset, pipeline: MultiView) -> None:
        self.base, self.pipeline = base, pipeline
        self.cached: torch.Tensor | None = None
        if isinstance(base, TensorImageDataset) and len(base):
            probe = pipeline.static(base.images[:1])
            if probe.numel() * probe.element_size() * len(base) <= CACHE_LIMIT_BYTES:
                chunks = [pipeline.static(base.images[i : i + 2048]) for i in range(0, len(base), 2048)]
                self.cached = torch.cat(chunks)
        self.labels = getattr(base, "labels", None)

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, key: int | tuple[int, int]) -> tuple[list[torch.Tensor], int]:
        index, seed = key if isinstance(key, tuple) else (key, None)
        if self.cached is not None:
            x, y = self.cached[index], int(self.labels[index])
        else:
            img, y = self.base[index]
            x = self.pipeline.static(img)
        if seed is None:
            return [t(x) for t in self.pipeline.views], y
        with seeded(seed):
            return [t(x) for t in self.pipeline.views], y

    def __getitems__(self, keys: list) -> list[tuple[list[torch.Tensor], torch.Tensor]]:
        items = [self[k] for k in keys]
        views = [torch.stack([v[i] for v, _ in items]) for i in range(len(self.pipeline.views))]
        return [(views, torch.tensor([y for _, y in items], dtype=torch.int64))]
