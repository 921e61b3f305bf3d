"""The effective receptive field of a unit, against the theoretical one.

Luo, Li, Urtasun & Zemel, "Understanding the Effective Receptive Field in Deep
Convolutional Neural Networks", NeurIPS 2016, arXiv:1701.04128: set the gradient of the
centre unit of a layer to 1 and every other to 0, back-propagate to the input, and
average |∂unit/∂pixel| over many inputs; the mass concentrates in a roughly Gaussian blob
much smaller than the theoretical receptive field. Captum's ``NeuronGradient`` computes
the gradients; the averaging, the measurements and the figure are written here. The
theoretical field comes from :func:`cnnlineage.analysis.profile` and is drawn as a square;
no gradient can fall outside it (a test checks that on real networks).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import torch

from .plotting import _plt, save, show_image
from .subject import (
    Example,
    Subject,
    Visual,
    check_channel,
    default_layer,
    find_layer,
    spatial_geometry,
    unit_centre,
)

__all__ = ["erf", "mass_inside", "effective_side"]


def erf(
    subject: Subject,
    examples: Sequence[Example] = (),
    *,
    layer: str | None = None,
    channel: int | None = None,
    samples: int = 16,
    seed: int = 0,
    out_dir: str | os.PathLike | None = None,
) -> Visual:
    """Return the effective receptive field (H, W) of a layer's centre unit, mean |gradient| over the inputs.

    The inputs are ``examples`` when given, else ``samples`` standard-normal images in the
    normalised input space (Luo et al. average over random inputs). ``channel`` None sums
    the unit over all channels (the paper's "gradient signal of 1 at the centre of the
    output plane").
    """
    from captum.attr import NeuronGradient

    name = layer or default_layer(subject)
    geom = spatial_geometry(subject, name, kind="erf")
    check_channel(geom, channel)
    _, _, h, w = geom.output_shape
    cy, cx = h // 2, w // 2  # the centre unit (lower-right of the middle four for even sizes)
    if examples:
        x = torch.stack([e.x for e in examples])
        inputs = f"{len(examples)} image(s)"
    else:
        g = torch.Generator().manual_seed(seed)
        x = torch.randn((samples, *subject.input_size), generator=g)
        inputs = f"{samples} random N(0, 1) inputs (seed {seed})"

    def unit(out: torch.Tensor) -> torch.Tensor:
        return out[:, :, cy, cx].sum(1) if channel is None else out[:, channel, cy, cx]

    grads = []
    ng = NeuronGradient(subject.model, find_layer(subject.model, name))
    for chunk in x.split(8):
        grads.append(ng.attribute(chunk.clone().requires_grad_(True), neuron_selector=unit).detach())
    field = (
        torch.cat(grads).abs().sum(1).mean(0).numpy()
    )  # (H, W): mean |grad| over inputs, summed over colours
    centre = unit_centre(geom, cy, cx)
    rf_hw = geom.square()  # where the field is global (SE gates, attention): the convolutional paths' field
    inside = mass_inside(field, centre, rf_hw) if rf_hw else 1.0
    side95 = effective_side(field, centre, 0.95)
    info = dict(layer=name, unit=(channel, cy, cx), centre=centre, theoretical_rf=rf_hw, mass_inside_rf=inside,
                side_95=side95, inputs=inputs)  # fmt: skip
    paths = []
    if out_dir is not None:
        paths.append(_figure(subject, field, geom, info, examples, out_dir=out_dir))
    return Visual("erf", {"erf": field}, paths, info)


def _box(centre: tuple[float, float], hw: tuple[float, float], shape: tuple[int, int]) -> tuple[slice, slice]:
    """Return the pixel slices of a box of size hw centred at ``centre`` (pixel i spans [i - 0.5, i + 0.5])."""
    (cy, cx), (bh, bw) = centre, hw
    y0, y1 = int(np.ceil(cy - bh / 2 + 0.5 - 1e-9)), int(np.floor(cy + bh / 2 - 0.5 + 1e-9)) + 1
    x0, x1 = int(np.ceil(cx - bw / 2 + 0.5 - 1e-9)), int(np.floor(cx + bw / 2 - 0.5 + 1e-9)) + 1
    return slice(max(y0, 0), min(y1, shape[0])), slice(max(x0, 0), min(x1, shape[1]))


def mass_inside(field: np.ndarray, centre: tuple[float, float], hw: tuple[int, int]) -> float:
    """Return the fraction of the field's total inside the box of size ``hw`` centred at ``centre``."""
    total = float(field.sum())
    if total == 0:
        return 1.0
    ys, xs = _box(centre, hw, field.shape)
    return float(field[ys, xs].sum()) / total


def effective_side(field: np.ndarray, centre: tuple[float, float], fraction: float) -> int:
    """Return the side of the smallest square centred at ``centre`` that holds ``fraction`` of the field's mass."""
    limit = 2 * max(field.shape) + 2
    for side in range(1, limit):
        if mass_inside(field, centre, (side, side)) >= fraction:
            return side
    return limit


def _figure(subject, field, geom, info, examples, *, out_dir) -> os.PathLike:  # noqa: ANN001
    from .attribution import _rf_square

    plt = _plt()
    panels = 2 if examples else 1
    fig, axes = plt.subplots(
        1, panels, figsize=(4.2 * panels + 0.6, 4.4), squeeze=False, layout="constrained"
    )
    ax = axes[0, -1]
    peak = float(field.max()) or 1.0
    im = ax.imshow(field / peak, cmap="magma", vmin=0, vmax=1, interpolation="nearest")
    (cy, cx), trf = info["centre"], info["theoretical_rf"] or (0, 0)
    # widen the view to show the whole theoretical square where it overhangs the image
    x0, x1 = min(-0.5, cx - trf[1] / 2 - 2), max(field.shape[1] - 0.5, cx + trf[1] / 2 + 2)
    y0, y1 = min(-0.5, cy - trf[0] / 2 - 2), max(field.shape[0] - 0.5, cy + trf[0] / 2 + 2)
    ax.set_xlim(x0, x1)
    ax.set_ylim(y1, y0)
    ax.set_facecolor("0.85")  # outside the image
    _rf_square(ax, geom, info["unit"][1], info["unit"][2], color="cyan")
    s = info["side_95"]
    import matplotlib.patches as mpatches

    ax.add_patch(
        mpatches.Rectangle((cx - s / 2, cy - s / 2), s, s, fill=False, edgecolor="lime", linestyle="--")
    )
    ax.set_xticks([])
    ax.set_yticks([])
    ch = "all channels" if info["unit"][0] is None else f"channel {info['unit'][0]}"
    ax.set_title(
        f"effective receptive field of {info['layer']}[{ch}, {info['unit'][1]}, {info['unit'][2]}]",
        fontsize=9,
    )
    cb = fig.colorbar(im, ax=ax, fraction=0.046, pad=0.03)
    cb.set_label("mean |d unit / d pixel| / max", fontsize=8)
    if examples:
        show_image(axes[0, 0], examples[0].display, title=f"input: {examples[0].name}")
    trf = info["theoretical_rf"]
    trf_text = "whole input (global)" if trf is None else f"{trf[0]}x{trf[1]} px (cyan)"
    if geom.global_rf and trf is not None:
        trf_text = (
            f"is the whole input (global gates); the convolutional paths' field {trf[0]}x{trf[1]} px (cyan)"
        )
    fig.suptitle(f"{subject.label}: effective receptive field (Luo et al. 2016)", fontsize=10)
    lines = [
        f"{info['layer']}: {geom.describe()}; averaged over {info['inputs']}",
        f"theoretical field {trf_text} holds {info['mass_inside_rf']:.1%} of the gradient mass; "
        f"95% lies in the central {s}x{s} px (green)",
    ]
    if examples:
        lines.insert(0, examples[0].note)
    fig.text(0.5, -0.02, "\n".join(lines), ha="center", va="top", fontsize=7)
    return save(fig, out_dir, f"erf-{info['layer']}.png")
