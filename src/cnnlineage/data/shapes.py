"""``shapes10``: a synthetic, procedurally generated 32×32 RGB dataset of ten shape classes.

SYNTHETIC, not real data: meant for colour-input experiments that must run offline. Each
image is one filled shape on a background, with random foreground and background colours
(kept apart so the shape stays visible), position, scale, rotation, a faint linear
background gradient and Gaussian pixel noise as texture. Shapes are defined as regions of
the shape's own (u, v) plane, unit size, so rotation and scale act on every class alike;
the classes are chosen so that no rotation turns one into another. Generation is
vectorised and fully determined by the seed: the same seed gives the same bytes.
"""

from __future__ import annotations

import math

import torch

__all__ = ["SHAPES", "make_shapes"]

SHAPES = ("circle", "ring", "square", "frame", "triangle", "cross", "star", "crescent", "half_disk", "bar")


def _mask(k: int, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Return the boolean region of shape ``k`` (index into SHAPES) over the unit-scaled coordinates u, v."""
    r = torch.sqrt(u * u + v * v)
    box = torch.maximum(u.abs(), v.abs())
    s3 = math.sqrt(3.0)
    if k == 0:
        return r < 0.95  # circle
    if k == 1:
        return (r < 0.95) & (r > 0.55)  # ring
    if k == 2:
        return box < 0.8  # square
    if k == 3:
        return (box < 0.85) & (box > 0.5)  # frame (hollow square)
    if k == 4:
        return (v > -0.5) & (s3 * u + v < 1.0) & (-s3 * u + v < 1.0)  # equilateral triangle
    if k == 5:
        return ((u.abs() < 0.3) & (v.abs() < 0.95)) | (
            (v.abs() < 0.3) & (u.abs() < 0.95)
        )  # plus-shaped cross
    if k == 6:
        return r < 0.55 + 0.4 * torch.cos(5.0 * torch.atan2(v, u))  # five-pointed star
    if k == 7:
        return (r < 0.95) & ((u - 0.45) ** 2 + v**2 > 0.75**2)  # crescent
    if k == 8:
        return (r < 0.95) & (v > -0.2)  # half disk (a disk cut by a chord)
    return (u.abs() < 0.95) & (v.abs() < 0.22)  # bar


def _masks(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Return (10, ...) boolean masks of every shape over the same coordinates."""
    return torch.stack([_mask(k, u, v) for k in range(len(SHAPES))])


def make_shapes(n: int, *, seed: int, size: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    """Return ``n`` synthetic images (n, 3, size, size) uint8 and balanced labels (n,), determined by ``seed``."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % len(SHAPES)
    labels = labels[torch.randperm(n, generator=g)]

    def uniform(lo: float, hi: float, *shape: int) -> torch.Tensor:
        return lo + (hi - lo) * torch.rand(*shape, generator=g)

    centre = uniform(0.32 * size, 0.68 * size, n, 2)  # shape centre in pixels
    scale = uniform(0.18 * size, 0.34 * size, n)  # pixels per shape unit
    angle = uniform(0.0, 2 * math.pi, n)
    fg = torch.rand(n, 3, generator=g)
    bg = torch.rand(n, 3, generator=g)
    close = (fg - bg).norm(dim=1) < 0.45  # too little contrast: take the complementary foreground
    fg[close] = 1.0 - bg[close]
    gradient = uniform(-0.15, 0.15, n, 2)  # background brightness slope across the image
    noise_std = uniform(0.02, 0.08, n)

    coords = torch.arange(size, dtype=torch.float32) + 0.5
    yy, xx = torch.meshgrid(coords, coords, indexing="ij")  # (size, size)
    images = torch.empty(n, 3, size, size, dtype=torch.uint8)
    for start in range(0, n, 2000):  # chunks keep the float temporaries small
        sl = slice(start, min(n, start + 2000))
        dx = xx - centre[sl, 0, None, None]  # (B, size, size)
        dy = yy - centre[sl, 1, None, None]
        c, s = torch.cos(angle[sl])[:, None, None], torch.sin(angle[sl])[:, None, None]
        k = scale[sl, None, None]
        u, v = (c * dx + s * dy) / k, (-s * dx + c * dy) / k  # rotate and scale into the shape's own frame
        mask = torch.zeros(u.shape, dtype=torch.bool)
        for shape in range(len(SHAPES)):
            sel = labels[sl] == shape
            mask[sel] = _mask(shape, u[sel], v[sel])
        ramp = gradient[sl, 0, None, None] * (xx / size - 0.5) + gradient[sl, 1, None, None] * (
            yy / size - 0.5
        )
        back = bg[sl, :, None, None] + ramp[:, None]  # (B, 3, size, size)
        img = torch.where(mask[:, None], fg[sl, :, None, None], back)
        img = img + noise_std[sl, None, None, None] * torch.randn(img.shape, generator=g)
        images[sl] = (img.clamp(0, 1) * 255).round().to(torch.uint8)
    return images, labels
