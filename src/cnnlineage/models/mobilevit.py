"""MobileViT — Mehta & Rastegari, "MobileViT: Light-weight, General-purpose, and Mobile-friendly
Vision Transformer", ICLR 2022, arXiv:2110.02178.

Convolutions see locally, transformers globally; the *MobileViT block* (§3.1, Fig. 1b) does
both on a C×H×W map. A 3×3 conv and a 1×1 projection to width d encode local context; the
map is then *unfolded* into P = h·w non-overlapping h×w patches (h = w = 2), and for each
of the P pixel positions a transformer attends across the N = HW/P patches — every pixel
thus sees every other through its neighbours (an effective receptive field of H×W). The
result is *folded* back, projected to C, concatenated with the block's input and fused by
a 3×3 conv. The rest is MobileNetV2: inverted residuals (expansion 4) with SiLU.

``mobilevit_xs`` and ``mobilevit_s`` are Table 4 / Fig. 3's networks at 256×256; their
inverted residuals are the library's MBConv (``layers.InvertedResidual``). timm's
``mobilevit_xs``/``mobilevit_s`` state_dicts load through ``remap_timm``. Attention runs
through ``F.scaled_dot_product_attention`` so the analyzer counts it.
"""

from __future__ import annotations

import functools
import math
import re

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..layers.conv_norm_act import ConvNormAct
from ..layers.inverted_residual import InvertedResidual
from ..registry import register_model
from ._base import LineageModel

__all__ = ["MobileViT", "MobileViTBlock", "MOBILEVIT_CFGS"]

_SILU = functools.partial(nn.SiLU, inplace=True)


class _Attention(nn.Module):
    """Multi-head self-attention over (B, N, d) tokens (timm's names ``qkv``, ``proj``)."""

    def __init__(self, dim: int, num_heads: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.num_heads, d // self.num_heads).permute(2, 0, 3, 1, 4)
        x = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2])  # (B, h, N, d_h)
        return self.proj(x.transpose(1, 2).reshape(b, n, d))


class _Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1, self.act, self.fc2 = nn.Linear(dim, hidden), nn.SiLU(), nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class _TransformerBlock(nn.Module):
    """Pre-norm transformer block with a SiLU MLP of ratio 2 (§3.1, Table 4)."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 2.0) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = _Attention(dim, num_heads)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = _Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class MobileViTBlock(nn.Module):
    """Local 3×3 conv and 1×1 projection → unfold → transformers across patches → fold → project → fuse."""

    def __init__(self, chs: int, dim: int, depth: int, *, patch: int = 2, num_heads: int = 4) -> None:
        super().__init__()
        self.patch = patch
        cna = functools.partial(ConvNormAct, act_layer=_SILU)
        self.conv_kxk = cna(chs, chs, 3)
        self.conv_1x1 = nn.Conv2d(chs, dim, 1, bias=False)
        self.transformer = nn.Sequential(*[_TransformerBlock(dim, num_heads) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim)
        self.conv_proj = cna(dim, chs, 1)
        self.conv_fusion = cna(2 * chs, chs, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x
        x = self.conv_1x1(self.conv_kxk(x))
        b, d, h, w = x.shape
        p = self.patch
        nh, nw = math.ceil(h / p), math.ceil(w / p)
        resized = (nh * p, nw * p) != (h, w)
        if resized:  # the authors resize to a whole number of patches, and back after folding
            x = F.interpolate(x, size=(nh * p, nw * p), mode="bilinear", align_corners=False)
        # unfold: one sequence of N = nh·nw patches per pixel position inside a p×p patch
        x = (
            x.reshape(b, d, nh, p, nw, p).permute(0, 3, 5, 2, 4, 1).reshape(b * p * p, nh * nw, d)
        )  # (B·P, N, d)
        x = self.norm(self.transformer(x))
        x = x.reshape(b, p, p, nh, nw, d).permute(0, 5, 3, 1, 4, 2).reshape(b, d, nh * p, nw * p)  # fold
        if resized:
            x = F.interpolate(x, size=(h, w), mode="bilinear", align_corners=False)
        return self.conv_fusion(torch.cat([shortcut, self.conv_proj(x)], dim=1))


# Table 4 / Fig. 3 (and the authors' code): stem 16, then per stage the output width, the number of
# inverted residuals, the stride, and (d, depth) of the MobileViT block that follows, if any; last 1×1 conv.
MOBILEVIT_CFGS = {
    "mobilevit_xs": ((32, 1, 1, None), (48, 3, 2, None), (64, 1, 2, (96, 2)), (80, 1, 2, (120, 4)),
                     (96, 1, 2, (144, 3)), 384),
    "mobilevit_s": ((32, 1, 1, None), (64, 3, 2, None), (96, 1, 2, (144, 2)), (128, 1, 2, (192, 4)),
                    (160, 1, 2, (240, 3)), 640),
}  # fmt: skip


class MobileViT(LineageModel):
    """MobileViT: 3×3/2 stem, five stages of inverted residuals (three ending in a MobileViT block), 1×1 conv, pool, FC."""

    def __init__(
        self, cfg: tuple, *, num_classes: int = 1000, in_chans: int = 3, dropout: float = 0.1
    ) -> None:
        super().__init__(in_chans=in_chans, num_classes=num_classes, input_size=(in_chans, 256, 256))
        *stages, head = cfg
        self.stem = ConvNormAct(in_chans, 16, 3, 2, act_layer=_SILU)
        chs, reduction, layers = 16, 2, []
        self.feature_info = []
        for i, (out, n, stride, vit) in enumerate(stages):
            blocks: list[nn.Module] = [
                InvertedResidual(chs if j == 0 else out, out, mid_chs=4 * (chs if j == 0 else out),
                                 stride=stride if j == 0 else 1, act_layer=_SILU)
                for j in range(n)
            ]  # fmt: skip
            if vit is not None:
                blocks.append(MobileViTBlock(out, *vit))
            layers.append(nn.Sequential(*blocks))
            chs, reduction = out, reduction * stride
            self.feature_info.append(dict(module=f"stages.{i}", num_chs=chs, reduction=reduction))
        self.stages = nn.Sequential(*layers)
        self.final_conv = ConvNormAct(chs, head, 1, act_layer=_SILU)
        self.num_features = head
        self.dropout = nn.Dropout(dropout)
        self.fc = self._fc(num_classes)

    def _fc(self, num_classes: int) -> nn.Module:
        return nn.Linear(self.num_features, num_classes) if num_classes > 0 else nn.Identity()

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.final_conv(self.stages(self.stem(x)))

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = self.dropout(x.mean((2, 3)))  # (B, C)
        return x if pre_logits else self.fc(x)

    def get_classifier(self) -> nn.Module:
        return self.fc

    def reset_classifier(self, num_classes: int) -> None:
        self.num_classes = num_classes
        self.fc = self._fc(num_classes)

    _TIMM_RENAMES = (
        (r"\.conv1_1x1\.", ".block.0."), (r"\.conv2_kxk\.", ".block.1."), (r"\.conv3_1x1\.", ".block.2."),
        (r"\.conv\.weight$", ".0.weight"), (r"\.bn\.", ".1."), (r"^head\.fc\.", "fc."),
    )  # fmt: skip

    def remap_timm(self, state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Return timm's MobileViT state_dict renamed to ours (conv-norm-act pairs ``.0``/``.1``, MBConv ``block.i``)."""
        out = {}
        for key, value in state_dict.items():
            for pattern, repl in self._TIMM_RENAMES:
                key = re.sub(pattern, repl, key)
            out[key] = value
        return out


# ---------------------------------------------------------------------------------------- registry
_REFERENCE = {
    # name: (timm parameter count, top-1 of the paper, Table / abstract)
    "mobilevit_xs": (2_317_848, 74.8),
    "mobilevit_s": (5_578_632, 78.4),
}


def _card(name: str) -> dict:
    params, top1 = _REFERENCE[name]
    return dict(
        family="mobilevit",
        year=2021,
        paper="MobileViT: Light-weight, General-purpose, and Mobile-friendly Vision Transformer",
        authors=("Mehta", "Rastegari"),
        venue="ICLR",
        venue_year=2022,
        arxiv="2110.02178",
        input_size=(3, 256, 256),
        key_idea="Transformers as convolutions: unfold 2x2 patches, attend across patches per pixel position, fold "
        "back and fuse with the input.",
        ref_params=params,
        ref_params_source=f"timm {name} parameter count",
        ref_top1=top1,
        ref_top1_kind="paper",
        ref_top1_source=f"Mehta & Rastegari 2022: MobileViT-{name.split('_')[1].upper()} {top1}% top-1 on ImageNet-1k "
        "at 256x256",
        timm=name,
        notes="256x256 input; multi-scale sampler training (§3.3) is a recipe, not built here. Inputs that are "
        "not whole patches are resized bilinearly inside each MobileViT block, as the authors' code does.",
    )


@register_model(**_card("mobilevit_xs"))
def mobilevit_xs(*, num_classes: int = 1000, in_chans: int = 3, dropout: float = 0.1) -> MobileViT:
    """Return MobileViT-XS (d = 96, 120, 144)."""
    return MobileViT(
        MOBILEVIT_CFGS["mobilevit_xs"], num_classes=num_classes, in_chans=in_chans, dropout=dropout
    )


@register_model(**_card("mobilevit_s"))
def mobilevit_s(*, num_classes: int = 1000, in_chans: int = 3, dropout: float = 0.1) -> MobileViT:
    """Return MobileViT-S (d = 144, 192, 240)."""
    return MobileViT(
        MOBILEVIT_CFGS["mobilevit_s"], num_classes=num_classes, in_chans=in_chans, dropout=dropout
    )
