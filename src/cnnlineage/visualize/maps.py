"""What the layers hold: convolution kernels as image grids and the feature maps an image produces.

Written here with PyTorch forward hooks and matplotlib (there is nothing to borrow for a
grid of kernels). ``filters`` draws first-layer kernels as Krizhevsky et al. 2012 do in
Fig. 3 of the AlexNet paper (each RGB kernel scaled to its own range); for any other
convolution it draws each kernel's mean over its input channels on one shared colour
scale. ``features`` draws a layer's maps for an image with the layer's shape and
receptive field, from :func:`cnnlineage.analysis.profile`, in the title.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn as nn

from .plotting import grid_figure, normalise, save
from .subject import (
    Example,
    Subject,
    Visual,
    _profile,
    check_channel,
    default_layer,
    find_layer,
    layer_geometry,
    spatial_geometry,
)

__all__ = ["features", "filters"]


def _conv_names(subject: Subject) -> list[str]:
    """Return the Conv2d modules in execution order (from the analyzer's rows)."""
    modules = dict(subject.model.named_modules())
    names: list[str] = []
    for r in _profile(subject).rows:
        if isinstance(modules.get(r.name), nn.Conv2d) and r.name not in names:
            names.append(r.name)
    return names


def filters(
    subject: Subject,
    *,
    layer: str | None = None,
    max_filters: int = 96,
    out_dir: str | os.PathLike | None = None,
) -> Visual:
    """Return a convolution's kernels as tiles (K, kh, kw[, 3]) and write them as a grid (AlexNet Fig. 3 style).

    ``layer`` defaults to the first convolution the input meets. Kernels over RGB inputs
    are shown in colour, each scaled to its own range; others as the mean over input
    channels on one shared, symmetric colour scale (blue negative, red positive).
    """
    convs = _conv_names(subject)
    name = layer or (convs[0] if convs else None)
    if name is None:
        raise ValueError(f"{subject.name} has no Conv2d layer: filters has nothing to show")
    module = find_layer(subject.model, name)
    if not isinstance(module, nn.Conv2d):
        raise ValueError(
            f"filters needs a Conv2d layer; {name} of {subject.name} is {type(module).__name__}. "
            f"Convolutions: {', '.join(convs[:6])}{', ...' if len(convs) > 6 else ''}"
        )
    w = module.weight.detach().float()  # (O, I/groups, kh, kw)
    o, i, kh, kw = w.shape
    shown = min(o, max_filters)
    rgb = i == 3
    if rgb:  # (K, kh, kw, 3), each kernel scaled to [0, 1] on its own
        tiles = [normalise(np.transpose(w[k].numpy(), (1, 2, 0))) for k in range(shown)]
        how, cbar = "RGB, each kernel scaled to its own min..max", None
    else:
        tiles = [w[k].mean(0).numpy() for k in range(shown)]
        m = max(float(np.abs(t).max()) for t in tiles) or 1.0
        tiles = [t / m for t in tiles]  # one symmetric scale for all
        how = "grey input" if i == 1 else f"mean over the {i} input channels of each kernel"
        cbar = f"weight / {m:.3g}"
    fig = grid_figure(
        tiles,
        titles=[str(k) for k in range(shown)],
        suptitle=f"{subject.label}: {name} kernels {o}x{i}x{kh}x{kw} ({how})",
        footer=f"showing {shown} of {o} kernels" + (f"; groups={module.groups}" if module.groups > 1 else ""),
        cmap="RdBu_r",
        cbar_label=cbar,
        shared_scale=not rgb,
        symmetric=True,
        max_cols=12 if shown > 48 else 8,
        tile_inches=0.9 if shown > 48 else 1.2,
    )
    paths = [save(fig, out_dir, f"filters-{name}.png")] if out_dir is not None else []
    if out_dir is None:
        import matplotlib.pyplot as plt

        plt.close(fig)
    return Visual("filters", {"filters": np.stack(tiles)}, paths, {"layer": name, "shape": (o, i, kh, kw)})


def features(
    subject: Subject,
    examples: Sequence[Example],
    *,
    layers: Sequence[str] | None = None,
    channel: int | None = None,
    max_maps: int = 32,
    out_dir: str | os.PathLike | None = None,
) -> Visual:
    """Return each layer's feature maps (N, C, h, w) for the images, and write a grid per layer and image.

    The grid shows the ``max_maps`` most active channels (by their largest value), or only
    ``channel``, on one colour scale; the title gives the layer's output shape and receptive
    field from the analyzer. ``layers`` defaults to the model's stages (``feature_info``)
    that have a spatial output (H·W > 1).
    """
    if not examples:
        raise ValueError("features needs an image: give image files or data set sample indices")
    if layers:
        names = list(layers)
    else:
        stages = [f["module"] for f in getattr(subject.model, "feature_info", []) if "module" in f]
        shapes = {n: layer_geometry(subject, n).output_shape for n in stages}
        names = [n for n in stages if len(shapes[n]) == 4 and shapes[n][2] * shapes[n][3] > 1]
        names = names or [default_layer(subject)]
    geoms = [spatial_geometry(subject, n, kind="features") for n in names]
    for g in geoms:
        check_channel(g, channel)
    store: dict[str, torch.Tensor] = {}
    handles = [
        find_layer(subject.model, n).register_forward_hook(
            lambda _m, _i, o, n=n: store.__setitem__(n, o.detach())
        )
        for n in names
    ]
    try:
        with torch.no_grad():
            subject.model(torch.stack([e.x for e in examples]))
    finally:
        for h in handles:
            h.remove()
    arrays, paths = {}, []
    for n, g in zip(names, geoms):
        acts = store[n].float()  # (N, C, h, w)
        arrays[n] = acts.numpy()
        for j, e in enumerate(examples):
            a = acts[j]
            if channel is not None:
                order = [channel]
            else:
                order = a.flatten(1).amax(1).argsort(descending=True)[:max_maps].tolist()
            tiles = [a[c].numpy() for c in order]
            which = (f"channel {channel}" if channel is not None
                     else f"the {len(order)} most active of {a.shape[0]} channels (by max)")  # fmt: skip
            if out_dir is None:
                continue
            fig = grid_figure(
                [e.display, *tiles],
                titles=["input", *[f"ch {c}" for c in order]],
                suptitle=f"{subject.label}: {n} ({g.describe()})\n{which}",
                footer=e.note,
                cbar_label="activation (one scale for all maps)",
                shared_scale=True,
                images=1,
                tile_inches=1.2 if len(order) > 1 else 3.0,
            )
            paths.append(save(fig, out_dir, f"features-{n}-{e.name}.png"))
    return Visual("features", arrays, paths, {"layers": names})
