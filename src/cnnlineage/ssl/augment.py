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

Digits may also be bent: ``ssl.elastic_alpha`` adds Simard, Steinkraus & Platt's elastic
distortion (ICDAR 2003, §2) to every view, after the crop, batched in :func:`elastic_distort`.

Two stages per view. Per image, under its seed: torchvision v2's random resized crop and
flip on the uint8 image, and the draw of every other random number the view needs. Per
batch (:class:`ViewTail`): float conversion, colour jitter, grey, blur, solarisation, the
elastic distortion, the affine and the normalisation, each image with its own drawn numbers. Batching the colour
steps makes colour views about 3x cheaper at 32 pixels (0.51 to 0.17 ms a view) and
changes nothing for digits: their views are bit for bit those of the per-image pipeline.

Written with torchvision's v2 transforms and a page of batched colour code rather than
``lightly.transforms``: lightly's pipelines are sized for 224-pixel PIL images and would
need every parameter changed here, and they apply per image; v2 on uint8 tensors draws
only from torch's generator, which :func:`seeded` controls.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
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
    "elastic_distort",
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
    elastic: tuple[float, float] = (0.0, 0.0)  # elastic distortion: alpha, sigma in pixels (alpha 0 = off)


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
    elastic: tuple[float, float] = (0.0, 0.0),
) -> list[ViewSpec]:
    """Return the views ``method`` draws of each image of the data set ``info`` at model input ``size``.

    ``min_scale`` > 0 replaces the smallest crop area of the full-size views (DINO's global
    crops; its local crops keep theirs), e.g. 0.5 to keep at least half of a digit.
    ``affine`` (degrees, translate, scale) adds the trainer's random rotation, shift and zoom
    (:class:`~cnnlineage.data.transforms.RandomAffine`) to every view, after the crop.
    ``elastic`` (alpha, sigma in pixels; Simard et al. 2003 use 34 and 4 on 28-pixel digits)
    adds an elastic distortion to every view, after the crop and before the affine.
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
            elastic=tuple(elastic),
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
        crop = (min_scale or 0.2, 1.0)
        return [ViewSpec(size=size, scale=crop, hflip=flip, affine=tuple(affine), elastic=tuple(elastic))]
    raise ValueError(f"unknown self-supervised method {method!r}; known: simclr, moco, byol, dino, mae")


def _geometry(spec: ViewSpec) -> v2.Compose:
    """Return the per-image part of one view: the random resized crop and the flip, uint8 in and out."""
    steps: list[torch.nn.Module] = [v2.RandomResizedCrop(list(spec.size), scale=spec.scale, antialias=True)]
    if spec.hflip:
        steps.append(v2.RandomHorizontalFlip(spec.hflip))
    return v2.Compose(steps)


N_COLOUR = 13  # uniforms drawn per view for colour, grey, blur and solarisation (see ViewTail.draw)


def _grey(x: torch.Tensor) -> torch.Tensor:
    """Return the luma of RGB images (B, 3, H, W) as (B, 1, H, W) (ITU-R 601, as torchvision)."""
    r, g, b = x.unbind(-3)
    return (0.2989 * r + 0.587 * g + 0.114 * b).unsqueeze(-3)


def _shift_hue(x: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """Return RGB images (B, 3, H, W) in [0, 1] with their hue turned by ``shift`` (B,) of a full turn."""
    r, g, b = x.unbind(-3)
    v, _ = x.max(-3)
    lo, _ = x.min(-3)
    span = v - lo
    grey = span == 0
    safe = torch.where(grey, torch.ones_like(span), span)
    s = span / torch.where(grey, torch.ones_like(v), v)
    rc, gc, bc = (v - r) / safe, (v - g) / safe, (v - b) / safe
    h = torch.where(v == r, bc - gc, torch.where(v == g, 2.0 + rc - bc, 4.0 + gc - rc))
    h = torch.where(grey, torch.zeros_like(h), h)
    h = (h / 6.0 + shift.view(-1, 1, 1)) % 1.0
    h6 = h * 6.0
    sector = torch.floor(h6)
    f = h6 - sector
    sector = sector.long() % 6
    p, q, t = (v * (1 - s)).clamp(0, 1), (v * (1 - s * f)).clamp(0, 1), (v * (1 - s * (1 - f))).clamp(0, 1)
    pick = sector.unsqueeze(0)
    out = [
        torch.stack(c).gather(0, pick)[0]
        for c in ((v, q, p, p, t, v), (t, v, v, q, p, p), (p, p, t, v, v, q))
    ]
    return torch.stack(out, -3)


def _gaussian_kernel(sigma: float, side: int) -> torch.Tensor:
    """Return the normalised 1-D Gaussian of ``sigma`` over int(8 sigma + 1) taps (odd, as torchvision's
    ``ElasticTransform``), capped at 2 * side - 1 so that its reflect padding fits the image."""
    k = int(8 * sigma + 1)
    k = min(k + 1 - k % 2, 2 * side - 1)
    x = torch.linspace(-(k - 1) / 2, (k - 1) / 2, k)
    pdf = torch.exp(-0.5 * (x / sigma) ** 2)
    return pdf / pdf.sum()


def elastic_distort(x: torch.Tensor, field: torch.Tensor, alpha: float, sigma: float) -> torch.Tensor:
    """Return the images ``x`` (B, C, H, W) distorted by the random ``field`` (B, 2, H, W), uniform in [-1, 1].

    Simard, Steinkraus & Platt (ICDAR 2003, §2): the field is smoothed by a Gaussian of
    standard deviation ``sigma`` pixels, scaled by ``alpha`` pixels, and every output pixel
    samples the input at its own position plus that displacement (bilinear, zeros outside).
    Per image this is torchvision's ``ElasticTransform`` with alpha doubled (torchvision
    scales the field by alpha / side in coordinates from -1 to 1, half a pixel per unit);
    here the whole batch is blurred (separably, reflect padding) and sampled at once.
    """
    h, w = field.shape[-2:]
    if sigma > 0:
        for dim, side in ((-1, w), (-2, h)):
            k = _gaussian_kernel(sigma, side).to(field)
            pad = [len(k) // 2, len(k) // 2, 0, 0] if dim == -1 else [0, 0, len(k) // 2, len(k) // 2]
            weight = k.view(1, 1, 1, -1) if dim == -1 else k.view(1, 1, -1, 1)
            field = F.conv2d(F.pad(field, pad, mode="reflect"), weight.expand(2, 1, -1, -1), groups=2)
    scale = torch.tensor([2 * alpha / w, 2 * alpha / h], dtype=x.dtype)  # pixels -> grid units
    ys = torch.linspace((1 - h) / h, (h - 1) / h, h, dtype=x.dtype)
    xs = torch.linspace((1 - w) / w, (w - 1) / w, w, dtype=x.dtype)
    base = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), -1)  # (H, W, 2): x then y, pixel centres
    grid = base + field.permute(0, 2, 3, 1).to(x.dtype) * scale
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


class ViewTail:
    """The per-batch part of one view: float conversion, colour, grey, blur, solarisation, elastic, affine, normalisation.

    What is random is drawn per image, under that image's seed (:meth:`draw`, a row of
    numbers); the operations then run once on the whole batch with those per-image numbers.
    Per image and in this order they are the recipe's: colour jitter (brightness, contrast,
    saturation and hue in a random order, as torchvision's ``ColorJitter``, with probability
    ``jitter_p``), grey, Gaussian blur (sigma in [0.1, 2], reflect padding), solarisation of
    the pixels at or above half the range, the elastic distortion, then the trainer's random
    affine and the normalisation. On a CPU this is what makes colour views affordable: per image the same
    operations cost about 0.5 ms a view at 32 pixels, more than LeNet's training step.
    """

    def __init__(self, spec: ViewSpec, mean: Sequence[float], std: Sequence[float]) -> None:
        self.spec, self.mean, self.std = spec, list(mean), list(std)
        self.colour = bool(spec.jitter_p or spec.grey or spec.blur or spec.solarize)
        self.affine = RandomAffine(*spec.affine) if any(spec.affine) else None
        self.elastic = spec.elastic if spec.elastic[0] else None
        self.n_field = 2 * spec.size[0] * spec.size[1] if self.elastic else 0
        self.kernel = max(
            3, int(0.1 * min(spec.size)) // 2 * 2 + 1
        )  # odd, about a tenth of the side (SimCLR)

    def draw(self) -> torch.Tensor:
        """Return this view's random numbers for one image, from torch's (seeded) generator."""
        row = torch.rand(N_COLOUR).double() if self.colour else torch.empty(0, dtype=torch.float64)
        if self.elastic is not None:  # the displacement field, uniform in [-1, 1] before its blur
            row = torch.cat([row, (torch.rand(self.n_field) * 2 - 1).double()])
        if self.affine is not None:  # float64 keeps the drawn angle, shift and zoom exact
            row = torch.cat([row, torch.tensor(self.affine.sample(), dtype=torch.float64)])
        return row

    def __call__(self, x: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        """Return the finished views of the uint8 batch ``x`` (B, C, H, W) given each image's :meth:`draw`."""
        given = x
        x = v2.functional.to_dtype(x, torch.float32, scale=True)
        if self.colour:
            if x is given:  # float input comes back as it is; the colour steps write in place
                x = x.clone()
            x = self._colour(x, rows[:, :N_COLOUR].float())
        if self.elastic is not None:
            start = N_COLOUR if self.colour else 0
            field = rows[:, start : start + self.n_field].float().view(len(x), 2, *x.shape[-2:])
            x = elastic_distort(x, field, *self.elastic)
        if self.affine is not None:
            theta = torch.cat([RandomAffine.theta(*r) for r in rows[:, -4:].tolist()])
            grid = F.affine_grid(theta, list(x.shape), align_corners=False)
            x = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        return v2.functional.normalize(x, self.mean, self.std)

    def _colour(self, x: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        spec = self.spec
        if spec.jitter_p:
            b, c, s, h = spec.jitter
            lo = torch.tensor([max(0.0, 1 - b), max(0.0, 1 - c), max(0.0, 1 - s), -h])
            hi = torch.tensor([1 + b, 1 + c, 1 + s, h])
            factor = lo + (hi - lo) * u[:, 1:5]  # (B, 4): brightness, contrast, saturation, hue
            order = u[:, 5:9].argsort(dim=1)  # a random order of the four, per image
            on = u[:, 0] < spec.jitter_p
            for slot in range(4):
                for op in range(4):
                    idx = (on & (order[:, slot] == op)).nonzero().flatten()
                    if len(idx):
                        x[idx] = self._jitter(op, x[idx], factor[idx, op])
        if spec.grey:
            idx = (u[:, 9] < spec.grey).nonzero().flatten()
            x[idx] = _grey(x[idx]).expand(-1, 3, -1, -1)
        if spec.blur:
            idx = (u[:, 10] < spec.blur).nonzero().flatten()
            if len(idx):
                x[idx] = self._blur(x[idx], 0.1 + 1.9 * u[idx, 11])
        if spec.solarize:
            idx = (u[:, 12] < spec.solarize).nonzero().flatten()
            sel = x[idx]
            x[idx] = torch.where(sel >= 0.5, 1 - sel, sel)  # 128 and above of 255
        return x

    @staticmethod
    def _jitter(op: int, x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
        if op == 3:
            return _shift_hue(x, f)
        f = f.view(-1, 1, 1, 1)
        if op == 0:  # brightness: towards black
            return (x * f).clamp(0, 1)
        grey = _grey(x)
        if op == 1:  # contrast: towards the image's mean grey
            grey = grey.mean(dim=(-3, -2, -1), keepdim=True)
        return (f * x + (1 - f) * grey).clamp(0, 1)  # saturation: towards its grey version

    def _blur(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        n, c, hgt, wid = x.shape
        half = self.kernel // 2
        t = torch.linspace(-half, half, self.kernel)
        k = torch.exp(-0.5 * (t / sigma[:, None]) ** 2)
        k = (k / k.sum(1, keepdim=True)).repeat_interleave(c, 0)  # (n * c, kernel)
        y = F.pad(x.reshape(1, n * c, hgt, wid), (half,) * 4, mode="reflect")
        y = F.conv2d(y, k[:, None, :, None], groups=n * c)
        y = F.conv2d(y, k[:, None, None, :], groups=n * c)
        return y.reshape(n, c, hgt, wid)


@dataclass
class MultiView:
    """The static part (resize to the model's input, cacheable), then per view: per-image geometry, per-batch tail."""

    static: v2.Compose
    views: list[v2.Compose]
    tails: list[ViewTail]
    specs: list[ViewSpec]

    def draw(self, x: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Return, per view, the cropped uint8 image and its random numbers (one image, after ``static``)."""
        return [(geo(x), tail.draw()) for geo, tail in zip(self.views, self.tails)]

    def finish(self, drawn: list[list[tuple[torch.Tensor, torch.Tensor]]]) -> list[torch.Tensor]:
        """Return the batched views (one (B, C, H, W) tensor per view) of the images ``drawn`` per image."""
        return [
            tail(torch.stack([d[v][0] for d in drawn]), torch.stack([d[v][1] for d in drawn]))
            for v, tail in enumerate(self.tails)
        ]

    def __call__(self, x: torch.Tensor) -> list[torch.Tensor]:
        return [v[0] for v in self.finish([self.draw(self.static(x))])]


def build_views(
    specs: Sequence[ViewSpec], info: DatasetInfo, *, size: tuple[int, int], resize: bool
) -> MultiView:
    """Return the multi-view pipeline of ``specs`` for the data set ``info`` (images resized to ``size`` first)."""
    static = v2.Compose([v2.Resize(list(size), antialias=True)] if resize else [v2.Identity()])
    return MultiView(
        static,
        [_geometry(s) for s in specs],
        [ViewTail(s, info.mean, info.std) for s in specs],
        list(specs),
    )


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
        ops += ["elastic alpha {:g} sigma {:g}".format(*s.elastic)] if s.elastic[0] else []
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

    def _draw(self, key: int | tuple[int, int]) -> tuple[list[tuple[torch.Tensor, torch.Tensor]], int]:
        index, seed = key if isinstance(key, tuple) else (key, None)
        if self.cached is not None:
            x, y = self.cached[index], int(self.labels[index])
        else:
            img, y = self.base[index]
            x = self.pipeline.static(img)
        if seed is None:
            return self.pipeline.draw(x), y
        with seeded(seed):
            return self.pipeline.draw(x), y

    def __getitem__(self, key: int | tuple[int, int]) -> tuple[list[torch.Tensor], int]:
        drawn, y = self._draw(key)
        return [v[0] for v in self.pipeline.finish([drawn])], y

    def __getitems__(self, keys: list) -> list[tuple[list[torch.Tensor], torch.Tensor]]:
        items = [self._draw(k) for k in keys]
        views = self.pipeline.finish([d for d, _ in items])
        return [(views, torch.tensor([y for _, y in items], dtype=torch.int64))]
