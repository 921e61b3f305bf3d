"""Where a Vision Transformer looks: attention per head and attention rollout.

Captum has no attention maps, so this module is written by hand. The models compute
attention with ``F.scaled_dot_product_attention``, which never materialises the weights;
rather than change their forward (or slow it), a forward pre-hook — present only while a
visualisation runs — takes each attention layer's input x and recomputes
softmax(QKᵀ/√d_h) from the layer's own ``in_proj_weight``/``in_proj_bias``. The tests
check that these weights, applied to V and ``out_proj``, give the layer's output.

Attention rollout — Abnar & Zuidema, "Quantifying Attention Flow in Transformers", ACL
2020, arXiv:2005.00928 §3: average the heads of each layer, add the identity for the
residual connection and renormalise the rows, Â = 0.5·A + 0.5·I, then multiply through
the layers, R = Â_L ··· Â_1; the class token's row of R says how much each patch flows
into the representation the head classifies.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from .plotting import _plt, save, show_image
from .subject import Example, Subject, Visual, find_layer

__all__ = ["attention", "attention_layers", "attention_weights", "rollout"]


def attention_layers(model: nn.Module) -> list[str]:
    """Return the names of the self-attention modules (fused q/k/v projection ``in_proj_weight``, ``num_heads``)."""
    return [
        n
        for n, m in model.named_modules()
        if isinstance(getattr(m, "in_proj_weight", None), torch.Tensor)
        and hasattr(m, "num_heads")
        and (not isinstance(m, nn.MultiheadAttention) or m.batch_first)
    ]


def attention_weights(subject: Subject, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """Return each attention layer's weights softmax(QKᵀ/√d_h), (B, heads, N, N), for inputs ``x``."""
    names = attention_layers(subject.model)
    if not names:
        from ..registry import list_models

        vits = ", ".join(list_models("vit*")[:3])
        raise ValueError(
            f"attention needs a model with self-attention layers (a ViT, e.g. {vits}); {subject.name} has none"
        )
    found: dict[str, torch.Tensor] = {}

    def grab(name: str, module: nn.Module):
        def hook(_m: nn.Module, args: tuple) -> None:
            t = args[0]  # (B, N, D)
            b, n, d = t.shape
            heads = module.num_heads
            qkv = F.linear(t, module.in_proj_weight, module.in_proj_bias)  # (B, N, 3D)
            q, k, _ = qkv.reshape(b, n, 3, heads, d // heads).permute(2, 0, 3, 1, 4)  # (B, h, N, d_h) each
            found[name] = torch.softmax(
                q @ k.transpose(-2, -1) / math.sqrt(d // heads), dim=-1
            )  # (B, h, N, N)

        return hook

    handles = [find_layer(subject.model, n).register_forward_pre_hook(grab(n, find_layer(subject.model, n)))
               for n in names]  # fmt: skip
    try:
        with torch.no_grad():
            subject.model(x)
    finally:
        for h in handles:
            h.remove()
    return {n: found[n] for n in names}


def rollout(weights: Sequence[torch.Tensor]) -> torch.Tensor:
    """Return attention rollout R = Â_L ··· Â_1 (B, N, N), Â = rownorm(0.5·mean_heads(A) + 0.5·I) (Abnar & Zuidema 2020)."""
    out = None
    for a in weights:
        a = a.mean(dim=1)  # (B, N, N): heads averaged
        a = 0.5 * a + 0.5 * torch.eye(a.shape[-1], dtype=a.dtype)
        a = a / a.sum(dim=-1, keepdim=True)
        out = a if out is None else a @ out
    return out


def _grid(subject: Subject, tokens: int) -> tuple[int, int]:
    """Return the patch grid (rows, cols) of the input for a sequence of ``tokens`` tokens (class token first)."""
    _, h, w = subject.input_size
    p = getattr(subject.model, "patch_size", None)
    if p and (h // p) * (w // p) == tokens - 1:
        return h // p, w // p
    side = int(round(math.sqrt(tokens - 1)))
    if side * side != tokens - 1:
        raise ValueError(f"cannot lay {tokens - 1} patch tokens out as a grid for a {h}x{w} input")
    return side, side


def _to_image(m: torch.Tensor, grid: tuple[int, int], size: tuple[int, int]) -> np.ndarray:
    """Return patch scores (B, gh·gw) as maps (B, H, W), upsampled bilinearly to the input."""
    maps = m.reshape(-1, 1, *grid)
    return F.interpolate(maps, size=size, mode="bilinear", align_corners=False)[:, 0].numpy()


def attention(
    subject: Subject,
    examples: Sequence[Example],
    *,
    layer: str | None = None,
    out_dir: str | os.PathLike | None = None,
) -> Visual:
    """Return the class token's attention to the patches per head (N, heads, H, W) and the rollout (N, H, W).

    ``layer`` picks the attention layer (or the block holding it) whose heads are drawn;
    default the last. The rollout runs over all layers.
    """
    if not examples:
        raise ValueError("attention needs an image: give image files or data set sample indices")
    x = torch.stack([e.x for e in examples])
    weights = attention_weights(subject, x)
    names = list(weights)
    pick = names[-1]
    if layer is not None:
        find_layer(subject.model, layer)
        inside = [n for n in names if n == layer or n.startswith(layer + ".")]
        if not inside:
            raise ValueError(f"{layer} holds no attention layer; attention layers: {', '.join(names)}")
        pick = inside[-1]
    a = weights[pick]  # (B, h, N, N)
    grid = _grid(subject, a.shape[-1])
    size = tuple(subject.input_size[1:])
    heads = np.stack([_to_image(a[i, :, 0, 1:], grid, size) for i in range(len(examples))])  # (B, h, H, W)
    roll = rollout(list(weights.values()))[:, 0, 1:]  # (B, N-1): class token row, patches only
    roll_maps = _to_image(roll, grid, size)
    paths = []
    if out_dir is not None:
        for i, e in enumerate(examples):
            paths.append(
                _figure(
                    subject,
                    e,
                    heads[i],
                    roll_maps[i],
                    pick,
                    (names.index(pick) + 1, len(names)),
                    grid,
                    out_dir=out_dir,
                )
            )
    return Visual("attention", {"heads": heads, "rollout": roll_maps, "rollout_tokens": roll.numpy()}, paths,
                  {"layer": pick, "layers": names, "grid": grid})  # fmt: skip


def _figure(subject, e, heads, roll, pick, position, grid, *, out_dir):  # noqa: ANN001
    plt = _plt()
    n = heads.shape[0]
    cols = min(6, n + 2)
    rows = math.ceil((n + 2) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(2.3 * cols + 0.8, 2.4 * rows + 0.9), squeeze=False,
                             layout="constrained")  # fmt: skip
    grey = e.display if e.display.ndim == 2 else e.display.mean(-1)
    show_image(axes.flat[0], e.display, title=f"input: {e.name}")
    panels = [(roll, "rollout (all layers)")] + [(heads[h], f"head {h}") for h in range(n)]
    vmax = float(heads.max()) or 1.0
    for ax, (m, title) in zip(list(axes.flat)[1:], panels):
        ax.imshow(grey, cmap="gray", vmin=0, vmax=1)
        rolled = title.startswith("r")  # rollout: its own min..max (near uniform at random init)
        lo, hi = (float(m.min()), float(m.max())) if rolled else (0.0, vmax)
        im = ax.imshow(m, cmap="inferno", alpha=0.6, vmin=lo, vmax=max(hi, lo + 1e-9))
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(title, fontsize=8)
        if rolled:
            fig.colorbar(im, ax=ax, fraction=0.046, pad=0.03).set_label(
                "flow from patch to class token", fontsize=7
            )
    for ax in list(axes.flat)[n + 2 :]:
        ax.axis("off")
    fig.colorbar(im, ax=list(axes.flat)[2 : n + 2], fraction=0.02, pad=0.02).set_label(
        "class-token attention weight (one scale for all heads)", fontsize=8
    )
    fig.suptitle(f"{subject.label}: class-token attention of {pick} ({n} heads; attention layer "
                 f"{position[0]} of {position[1]}) and rollout (Abnar & Zuidema 2020)", fontsize=9)  # fmt: skip
    fig.text(0.5, -0.01, f"{e.note}; {grid[0]}x{grid[1]} patches, maps upsampled bilinearly",
             ha="center", va="top", fontsize=7)  # fmt: skip
    return save(fig, out_dir, f"attention-{pick}-{e.name}.png")
