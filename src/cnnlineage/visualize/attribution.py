"""Which pixels matter: deconvnet, guided backpropagation, occlusion, saliency, Grad-CAM, integrated gradients.

Captum does the heavy lifting for every method here (``NeuronDeconvolution``,
``NeuronGuidedBackprop``, ``Occlusion``, ``Saliency``, ``LayerGradCam``,
``IntegratedGradients``); this module picks the unit, target, layer and baseline as the
papers do, and draws the figures.

- Deconvnet — Zeiler & Fergus, "Visualizing and Understanding Convolutional Networks",
  ECCV 2014, arXiv:1311.2901: one unit's activation (the strongest of a channel, all others
  zeroed) projected back to pixels, ReLUs applied to the backward signal; max-pooling's
  backward routes through the forward pass's argmax, the paper's unpooling "switches". Guided
  backpropagation (Springenberg et al. 2015, arXiv:1412.6806) is drawn beside it. Both
  rules are defined for ReLU modules; a model with other activations (LeNet-5's tanh,
  GELU) gets the plain gradient through them, and the figure says how many ReLUs were used.
- Occlusion — Zeiler & Fergus §4.2, Fig. 7: a grey square (the data set mean, 0 after
  normalisation) slides over the image; the map is the drop in the target's probability.
- Saliency — Simonyan, Vedaldi & Zisserman 2014, arXiv:1312.6034 §3.1: |∂score/∂pixel|,
  maximum over colour channels.
- Grad-CAM — Selvaraju et al. 2017, arXiv:1610.02391: ReLU of the feature maps weighted by
  their spatially averaged gradients, upsampled bilinearly to the input.
- Integrated gradients — Sundararajan, Taly & Yan 2017, arXiv:1703.01365: the gradient
  integrated along the straight path from a black image; the completeness error
  |Σ attributions − (F(x) − F(baseline))| is measured and printed.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn as nn

from .plotting import footer_text, heatmap_panel, normalise, panel_figure, save, show_image
from .subject import (
    Example,
    Subject,
    Visual,
    check_channel,
    default_layer,
    find_layer,
    place_maps,
    spatial_geometry,
    unit_centre,
)

__all__ = ["deconvnet", "gradcam", "integrated_gradients", "occlusion", "saliency"]


def _batch(examples: Sequence[Example]) -> torch.Tensor:
    if not examples:
        raise ValueError("no images: give image files or data set sample indices")
    return torch.stack([e.x for e in examples])


def _targets(
    subject: Subject, examples: Sequence[Example], target: int | None
) -> tuple[list[int], torch.Tensor]:
    """Return per example the class to explain (given, else true label, else predicted) and the probabilities."""
    with torch.no_grad():
        probs = torch.softmax(subject.model(_batch(examples)).float(), dim=1)
    if target is not None and not 0 <= target < probs.shape[1]:
        raise ValueError(f"target class {target} out of range: {subject.name} has {probs.shape[1]} classes")
    out = []
    for e, p in zip(examples, probs):
        out.append(target if target is not None else e.label if e.label is not None else int(p.argmax()))
    return out, probs


def _class(subject: Subject, i: int) -> str:
    return subject.classes[i] if i < len(subject.classes) else str(i)


def _caption(subject: Subject, e: Example, t: int, p: torch.Tensor) -> str:
    pred = int(p.argmax())
    true = f", true {_class(subject, e.label)}" if e.label is not None else ""
    return f"target {_class(subject, t)} (p={p[t]:.2f}){true}\npredicted {_class(subject, pred)} (p={p[pred]:.2f})"


def _maps_figure(
    subject: Subject,
    examples: Sequence[Example],
    maps: np.ndarray,
    targets: list[int],
    probs: torch.Tensor,
    *,
    method: str,
    cbar: str,
    notes: Sequence[str] = (),
    symmetric: bool = False,
    out_dir: str | os.PathLike,
    stem: str,
) -> list:
    """Write one figure per example: the input, the map over it; return the paths."""
    paths = []
    for i, e in enumerate(examples):
        fig, axes = panel_figure(2)
        show_image(
            axes[0, 0], e.display, title=f"input: {e.name}\n{_caption(subject, e, targets[i], probs[i])}"
        )
        heatmap_panel(fig, axes[0, 1], e.display, maps[i], title=method, cbar_label=cbar, symmetric=symmetric)
        fig.suptitle(f"{method} — {subject.label}", fontsize=10)
        fig.text(0.5, -0.02, footer_text(e.note, *notes), ha="center", va="top", fontsize=7)
        paths.append(save(fig, out_dir, f"{stem}-{e.name}.png"))
    return paths


# ------------------------------------------------------------------------------- saliency
def saliency(
    subject: Subject,
    examples: Sequence[Example],
    *,
    target: int | None = None,
    out_dir: str | os.PathLike | None = None,
) -> Visual:
    """Return |∂score/∂x| maxed over channels, (N, H, W) (Simonyan et al. 2014), and write a figure per image."""
    from captum.attr import Saliency

    targets, probs = _targets(subject, examples, target)
    grads = Saliency(subject.model).attribute(_batch(examples), target=targets, abs=True)
    maps = grads.amax(dim=1).detach().numpy()  # (N, H, W): max over colour channels (§3.1)
    paths = []
    if out_dir is not None:
        paths = _maps_figure(subject, examples, maps, targets, probs, method="saliency |d score / d pixel|",
                             cbar="|gradient| (max over channels)", out_dir=out_dir, stem="saliency")  # fmt: skip
    return Visual("saliency", {"saliency": maps}, paths, {"targets": targets})


# ------------------------------------------------------------------------------- Grad-CAM
def gradcam(
    subject: Subject,
    examples: Sequence[Example],
    *,
    layer: str | None = None,
    target: int | None = None,
    out_dir: str | os.PathLike | None = None,
) -> Visual:
    """Return Grad-CAM maps (N, H, W) upsampled to the input, and the layer's own (N, h, w); write figures."""
    from captum.attr import LayerGradCam

    name = layer or default_layer(subject)
    geom = spatial_geometry(subject, name, kind="gradcam")
    module = find_layer(subject.model, name)
    targets, probs = _targets(subject, examples, target)
    x = _batch(examples)
    cam = LayerGradCam(subject.model, module).attribute(
        x, target=targets, relu_attributions=True
    )  # (N, 1, h, w)
    maps = place_maps(cam[:, 0].detach(), geom, tuple(x.shape[-2:])).numpy()
    paths = []
    if out_dir is not None:
        paths = _maps_figure(subject, examples, maps, targets, probs, method=f"Grad-CAM at {name}",
                             cbar=r"ReLU($\Sigma_k\,\alpha_k A^k$) at the units' centres", notes=[f"{name}: {geom.describe()}"],
                             out_dir=out_dir, stem=f"gradcam-{name}")  # fmt: skip
    return Visual("gradcam", {"gradcam": maps, "layer_map": cam[:, 0].detach().numpy()}, paths,
                  {"layer": name, "targets": targets})  # fmt: skip


# ---------------------------------------------------------------------- integrated gradients
def integrated_gradients(
    subject: Subject,
    examples: Sequence[Example],
    *,
    target: int | None = None,
    steps: int = 16,
    out_dir: str | os.PathLike | None = None,
) -> Visual:
    """Return integrated gradients summed over channels (N, H, W) from a black baseline, with the completeness error."""
    from captum.attr import IntegratedGradients

    targets, probs = _targets(subject, examples, target)
    x = _batch(examples)
    mean = torch.tensor(subject.mean).view(1, -1, 1, 1)
    std = torch.tensor(subject.std).view(1, -1, 1, 1)
    baseline = ((0 - mean) / std).expand_as(x).contiguous()  # a black image, normalised as the inputs are
    attr, delta = IntegratedGradients(subject.model).attribute(
        x,
        baselines=baseline,
        target=targets,
        n_steps=steps,
        internal_batch_size=8,
        return_convergence_delta=True,
    )
    with torch.no_grad():
        gap = (subject.model(x) - subject.model(baseline)).gather(1, torch.tensor(targets)[:, None])[:, 0]
    maps = attr.sum(dim=1).detach().numpy()  # signed, (N, H, W)
    rel = (delta.abs() / gap.abs().clamp_min(1e-12)).detach().numpy()
    paths = []
    if out_dir is not None:
        for i in range(len(examples)):
            note = (f"{steps} steps (Gauss-Legendre), black baseline; completeness: sum of attributions "
                    f"{float(attr[i].sum()):.4g} vs F(x) - F(black) {float(gap[i]):.4g} (error {rel[i]:.1%})")  # fmt: skip
            paths += _maps_figure(subject, [examples[i]], maps[i : i + 1], targets[i : i + 1], probs[i : i + 1],
                                  method="integrated gradients", cbar="attribution (sum over channels)",
                                  notes=[note], symmetric=True, out_dir=out_dir, stem="integrated-gradients")  # fmt: skip
    return Visual("integrated-gradients", {"integrated_gradients": maps, "attributions": attr.detach().numpy()},
                  paths, {"targets": targets, "completeness_error": rel.tolist(), "steps": steps})  # fmt: skip


# ------------------------------------------------------------------------------- occlusion
def occlusion(
    subject: Subject,
    examples: Sequence[Example],
    *,
    target: int | None = None,
    patch: int | None = None,
    stride: int | None = None,
    out_dir: str | os.PathLike | None = None,
) -> Visual:
    """Return the drop in the target's probability when a grey square covers each pixel, (N, H, W) (ZFNet Fig. 7)."""
    from captum.attr import Occlusion

    c, h, w = subject.input_size
    patch = patch or max(2, round(min(h, w) / 7))  # the occluder: about a seventh of the side by default
    stride = stride or patch  # non-overlapping squares: 7x7 = 49 forward passes; --stride for finer maps
    if not 1 <= patch <= min(h, w) or stride < 1:
        raise ValueError(
            f"occlusion patch must be 1..{min(h, w)} and stride >= 1, got patch {patch}, stride {stride}"
        )
    targets, probs = _targets(subject, examples, target)

    def prob(inp: torch.Tensor) -> torch.Tensor:
        return torch.softmax(subject.model(inp), dim=1)

    with torch.no_grad():
        drop = Occlusion(prob).attribute(
            _batch(examples), sliding_window_shapes=(c, patch, patch), strides=(c, stride, stride),
            baselines=0.0, target=targets, perturbations_per_eval=16,
        )  # fmt: skip
    maps = drop[:, 0].numpy()  # identical over channels: the window spans them all
    positions = ((h - patch) // stride + 1) * ((w - patch) // stride + 1)
    paths = []
    if out_dir is not None:
        note = (f"grey {patch}x{patch} square (the data set mean), stride {stride}: {positions} positions; "
                "each pixel: mean drop over the positions covering it")  # fmt: skip
        paths = _maps_figure(subject, examples, maps, targets, probs, method="occlusion sensitivity",
                             cbar="drop in p(target)", notes=[note], symmetric=True,
                             out_dir=out_dir, stem="occlusion")  # fmt: skip
    return Visual("occlusion", {"occlusion": maps}, paths,
                  {"targets": targets, "patch": patch, "stride": stride, "positions": positions})  # fmt: skip


# ------------------------------------------------------------------------------- deconvnet
def deconvnet(
    subject: Subject,
    examples: Sequence[Example],
    *,
    layer: str | None = None,
    channel: int | None = None,
    out_dir: str | os.PathLike | None = None,
) -> Visual:
    """Return the deconvnet and guided-backprop projections (N, C, H, W) of one unit of a layer; write figures.

    The unit is the strongest activation of ``channel`` (default: of the most active channel)
    in each image, as Zeiler & Fergus project "the strongest activation" of a feature map.
    """
    from captum.attr import NeuronDeconvolution, NeuronGuidedBackprop

    name = layer or default_layer(subject)
    geom = spatial_geometry(subject, name, kind="deconvnet")
    check_channel(geom, channel)
    module = find_layer(subject.model, name)
    relus = sum(isinstance(m, nn.ReLU) for m in subject.model.modules())
    deconv = NeuronDeconvolution(subject.model, module)
    guided = NeuronGuidedBackprop(subject.model, module)
    d_out, g_out, units = [], [], []
    for e in examples:
        x = e.x[None]
        act = _activation(subject.model, module, x)[0]  # (C, h, w)
        ch = channel if channel is not None else int(act.flatten(1).amax(1).argmax())
        pos = int(act[ch].argmax())
        unit = (ch, pos // act.shape[-1], pos % act.shape[-1])
        d_out.append(deconv.attribute(x, neuron_selector=unit)[0].detach())
        g_out.append(guided.attribute(x, neuron_selector=unit)[0].detach())
        units.append((unit, float(act[unit])))
    d, g = torch.stack(d_out).numpy(), torch.stack(g_out).numpy()
    paths = []
    if out_dir is not None:
        rule = (
            f"{relus} ReLU modules use the rule" if relus else "no ReLU modules: both reduce to the gradient"
        )
        for i, e in enumerate(examples):
            (ch, r, col), value = units[i]
            fig, axes = panel_figure(3)
            show_image(
                axes[0, 0], e.display, title=f"input: {e.name}\nunit {name}[{ch}, {r}, {col}] = {value:.3g}"
            )
            _rf_square(axes[0, 0], geom, r, col)
            show_image(axes[0, 1], _as_image(d[i]), title="deconvnet (Zeiler & Fergus 2014)")
            show_image(axes[0, 2], _as_image(g[i]), title="guided backprop (Springenberg 2015)")
            fig.suptitle(f"projection of one unit of {name} — {subject.label}", fontsize=10)
            notes = [e.note, f"{name}: {geom.describe()}; red square: the unit's theoretical receptive field",
                     f"{rule}; projections scaled symmetrically about grey (0)"]  # fmt: skip
            fig.text(0.5, -0.02, footer_text(*notes), ha="center", va="top", fontsize=7)
            paths.append(save(fig, out_dir, f"deconvnet-{name}-{e.name}.png"))
    return Visual("deconvnet", {"deconvnet": d, "guided_backprop": g}, paths,
                  {"layer": name, "units": [u for u, _ in units], "relu_modules": relus})  # fmt: skip


def _as_image(a: np.ndarray) -> np.ndarray:
    """Return a (C, H, W) projection as a displayable grey or RGB image, 0 at mid-grey."""
    img = normalise(a, symmetric=True)
    return img[0] if img.shape[0] == 1 else np.transpose(img, (1, 2, 0))


def _activation(model: nn.Module, module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Return ``module``'s output for input ``x`` (no gradient)."""
    store: list[torch.Tensor] = []
    handle = module.register_forward_hook(lambda _m, _i, o: store.append(o.detach()))
    try:
        with torch.no_grad():
            model(x)
    finally:
        handle.remove()
    return store[-1]


def _rf_square(ax, geom, row: int, col: int, *, color: str = "red") -> None:  # noqa: ANN001
    """Draw the theoretical receptive field of unit (row, col) of a layer as a square."""
    import matplotlib.patches as mpatches

    square = geom.square()
    if square is None:
        return
    rh, rw = square
    cy, cx = unit_centre(geom, row, col)
    # pixel i covers [i - 0.5, i + 0.5] in imshow's coordinates
    ax.add_patch(
        mpatches.Rectangle((cx - rw / 2, cy - rh / 2), rw, rh, fill=False, edgecolor=color, linewidth=1.5)
    )
