"""Transforms (torchvision.transforms.v2): resize to the model's input, augment, normalise; mixup/cutmix.

A pipeline has two parts. ``static`` is deterministic (channel adaptation, resize and,
when nothing random follows, scaling and normalisation): for in-memory datasets it is
applied once to the whole tensor and cached. ``dynamic`` is the random per-sample part,
run under a per-sample seed (see :func:`seeded`), so an augmentation depends only on
(seed, epoch, sample index): not on workers, ranks, batch position or an interruption.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torchvision.transforms import v2

from .datasets import DatasetInfo

__all__ = [
    "Pipeline",
    "RandomAffine",
    "build_transforms",
    "build_batch_mix",
    "seeded",
    "mix_seed",
    "describe",
]


@contextlib.contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Run the block with torch's CPU generator seeded by ``seed``, then restore its state."""
    gen = torch.random.default_generator
    state = gen.get_state()
    gen.manual_seed(seed)
    try:
        yield
    finally:
        gen.set_state(state)


def mix_seed(*parts: int) -> int:
    """Return a 63-bit seed mixed from integers, e.g. (seed, epoch, index): distinct inputs, unrelated streams."""
    h = 0x9E3779B97F4A7C15
    for p in parts:
        h = ((h ^ (int(p) & 0xFFFFFFFFFFFFFFFF)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
        h ^= h >> 31
    return h & 0x7FFFFFFFFFFFFFFF


class _AdaptChannels(torch.nn.Module):
    """Return images with ``out`` channels: grey repeated to RGB, or RGB averaged to grey."""

    def __init__(self, out: int) -> None:
        super().__init__()
        self.out = out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = x.shape[-3]
        if c == self.out:
            return x
        if c == 1:
            return x.expand(*x.shape[:-3], self.out, *x.shape[-2:]).clone()
        grey = x.float().mean(dim=-3, keepdim=True)
        return grey.round().to(x.dtype) if not x.is_floating_point() else grey

    def extra_repr(self) -> str:
        return f"out={self.out}"


class RandomAffine(torch.nn.Module):
    """Random rotation, translation and zoom of a float image (C, H, W), bilinear, zero fill.

    The distortions of torchvision's RandomAffine (angle in [-degrees, degrees], shift up
    to ``translate`` of the side, isotropic scale in [1 - scale, 1 + scale], about the
    centre), applied with one ``affine_grid`` + ``grid_sample``: about 4x cheaper per small
    image, which matters on a CPU where augmentation competes with LeNet-sized training.
    """

    def __init__(self, degrees: float, translate: float, scale: float) -> None:
        super().__init__()
        self.degrees, self.translate, self.scale = degrees, translate, scale

    def sample(self) -> tuple[float, float, float, float]:
        """Return (angle in degrees, shift x, shift y as fractions of the side, scale), drawn from torch's RNG."""
        r = (torch.rand(4) * 2 - 1).tolist()  # uniform in [-1, 1)
        return r[0] * self.degrees, r[1] * self.translate, r[2] * self.translate, 1 + r[3] * self.scale

    @staticmethod
    def theta(angle: float, tx: float, ty: float, scale: float) -> torch.Tensor:
        """Return the (1, 2, 3) matrix mapping output to input coordinates in [-1, 1] (affine_grid's convention)."""
        a = -math.radians(
            angle
        )  # positive angle: counter-clockwise on screen, as torchvision (y points down)
        c, s = math.cos(a) / scale, math.sin(a) / scale  # inverse of rotate-then-scale
        # output pixel p comes from input R^-1 (p - t); normalised coordinates span 2 per side
        return torch.tensor([[[c, s, -(c * 2 * tx + s * 2 * ty)], [-s, c, -(-s * 2 * tx + c * 2 * ty)]]])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not x.is_floating_point():
            raise TypeError("RandomAffine expects a float image; put it after ToDtype")
        theta = self.theta(*self.sample())
        grid = F.affine_grid(theta, [1, *x.shape], align_corners=False)  # (1, H, W, 2)
        return F.grid_sample(x[None], grid, mode="bilinear", padding_mode="zeros", align_corners=False)[0]

    def extra_repr(self) -> str:
        return f"degrees={self.degrees}, translate={self.translate}, scale={self.scale}"


@dataclass
class Pipeline:
    """The two parts of a transform: ``static`` (deterministic, cacheable) and ``dynamic`` (random, per sample)."""

    static: v2.Compose
    dynamic: v2.Compose | None

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        x = self.static(x)
        return self.dynamic(x) if self.dynamic is not None else x


def build_transforms(
    aug, info: DatasetInfo, *, size: tuple[int, int], in_chans: int, train: bool, resize: bool = True
) -> Pipeline:
    """Return the pipeline from uint8 images to normalised float inputs of (in_chans, *size).

    ``aug`` is an AugmentConfig (ignored when ``train`` is False). ``resize`` False skips
    the resize (the caller guarantees the images already have ``size``).
    """
    static: list[torch.nn.Module] = []
    if info.in_chans != in_chans:
        static.append(_AdaptChannels(in_chans))
    if resize:
        static.append(v2.Resize(list(size), antialias=True))
    dynamic: list[torch.nn.Module] = []
    if train:
        if aug.crop_padding:
            dynamic.append(v2.RandomCrop(list(size), padding=aug.crop_padding, padding_mode="reflect"))
        if aug.hflip:
            dynamic.append(v2.RandomHorizontalFlip(aug.hflip))
        if aug.color_jitter:
            j = aug.color_jitter
            dynamic.append(v2.ColorJitter(brightness=j, contrast=j, saturation=j if in_chans == 3 else None))
        policy = {
            "autoaugment": lambda: v2.AutoAugment(v2.AutoAugmentPolicy.IMAGENET),
            "randaugment": lambda: v2.RandAugment(),
            "trivialaugment": lambda: v2.TrivialAugmentWide(),
        }.get(aug.policy)
        if policy is not None:
            dynamic.append(policy())
    mean = tuple(info.mean) * (in_chans // len(info.mean)) if len(info.mean) != in_chans else tuple(info.mean)
    std = tuple(info.std) * (in_chans // len(info.std)) if len(info.std) != in_chans else tuple(info.std)
    if len(mean) != in_chans:  # RGB statistics for a grey model input: average them
        mean, std = (sum(info.mean) / len(info.mean),), (sum(info.std) / len(info.std),)
    affine = []  # on [0, 1] floats, so the zero fill is black, before normalisation
    if train and (aug.affine_degrees or aug.affine_translate or aug.affine_scale):
        affine = [RandomAffine(aug.affine_degrees, aug.affine_translate, aug.affine_scale)]
    finish = [v2.ToDtype(torch.float32, scale=True), *affine, v2.Normalize(list(mean), list(std))]
    erasing = [v2.RandomErasing(aug.random_erasing)] if train and aug.random_erasing else []
    if dynamic or erasing or affine:
        return Pipeline(v2.Compose(static or [v2.Identity()]), v2.Compose(dynamic + finish + erasing))
    return Pipeline(v2.Compose(static + finish), None)


def build_batch_mix(
    aug, num_classes: int
) -> Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]] | None:
    """Return a batch transform (images, labels) -> (images, soft targets (B, classes)) for mixup/cutmix, or None.

    With both on, each batch takes one of the two at random; a batch is mixed with
    probability ``aug.mix_prob`` and otherwise gets one-hot targets. Run it under
    :func:`seeded` for reproducibility.
    """
    ops = []
    if aug.mixup_alpha > 0:
        ops.append(v2.MixUp(alpha=aug.mixup_alpha, num_classes=num_classes))
    if aug.cutmix_alpha > 0:
        ops.append(v2.CutMix(alpha=aug.cutmix_alpha, num_classes=num_classes))
    if not ops:
        return None
    choice = ops[0] if len(ops) == 1 else v2.RandomChoice(ops)

    def mix(images: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if torch.rand(()) < aug.mix_prob:
            return choice(images, labels)
        return images, torch.nn.functional.one_hot(labels, num_classes).to(images.dtype)

    return mix


def describe(pipeline: Pipeline) -> str:
    """Return a one-line description of a pipeline's steps, for the printed run config."""

    def names(c: v2.Compose | None) -> list[str]:
        if c is None:
            return []
        out = []
        for t in c.transforms:
            if isinstance(t, v2.Identity):
                continue
            if isinstance(t, v2.Resize):
                out.append(f"Resize({'x'.join(map(str, t.size))})")
            elif isinstance(t, _AdaptChannels):
                out.append(f"Channels({t.out})")
            else:
                out.append(type(t).__name__)
        return out

    return " -> ".join(names(pipeline.static) + names(pipeline.dynamic))
