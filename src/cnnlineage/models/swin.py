"""Swin Transformer — Liu, Lin, Cao, Hu, Wei, Zhang, Lin & Guo, "Swin Transformer: Hierarchical
Vision Transformer using Shifted Windows", ICCV 2021, arXiv:2103.14030.

ViT's global self-attention costs (hw)² in the number of patches; Swin attends only within
non-overlapping M×M windows (M = 7), linear in the image size (§3.2, Eq. 1–2). Every second
block shifts the windows by ⌊M/2⌋ (a cyclic roll of the map, with a mask so that tokens
that were not neighbours before the roll do not attend to each other), which connects
neighbouring windows. Patch merging (concatenate 2×2 neighbours, LayerNorm, linear 4C → 2C)
halves the grid between stages, giving a CNN-like pyramid of strides 4, 8, 16, 32.
Attention adds a learned *relative position bias* B ∈ R^{M²×M²} indexed from a
(2M−1)² table per head (§3.2, Eq. 4).

Module names are torchvision's, so its swin_t/s/b state_dicts load as they are. Window
attention runs through ``F.scaled_dot_product_attention`` with the bias (and shift mask)
as its additive mask, so the analyzer counts it as attention: B·nW·heads·M²·M²·(2·d)
multiply-accumulates per block, exactly.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..layers.drop_path import DropPath
from ..registry import register_model
from ._base import LineageModel
from .convnext import Permute

__all__ = ["PatchMerging", "SwinBlock", "SwinTransformer", "WindowAttention", "relative_position_index"]


def relative_position_index(window: int) -> torch.Tensor:
    """Return the (M², M²) index into the (2M−1)² bias table for every pair of positions in an M×M window."""
    coords = torch.stack(torch.meshgrid(torch.arange(window), torch.arange(window), indexing="ij")).flatten(1)
    rel = coords[:, :, None] - coords[:, None, :] + (window - 1)  # (2, M², M²), offsets shifted to 0 … 2M−2
    return (rel[0] * (2 * window - 1) + rel[1]).flatten()


def _shift_mask(hp: int, wp: int, window: int, shift: tuple[int, int], device: torch.device) -> torch.Tensor:
    # label the regions the roll brings together; tokens of different regions may not attend (-100, §3.2)
    label = torch.zeros((hp, wp), device=device)
    count = 0
    for hs in ((0, -window), (-window, -shift[0]), (-shift[0], None)):
        for ws in ((0, -window), (-window, -shift[1]), (-shift[1], None)):
            label[hs[0] : hs[1], ws[0] : ws[1]] = count
            count += 1
    label = (
        label.view(hp // window, window, wp // window, window)
        .permute(0, 2, 1, 3)
        .reshape(-1, window * window)
    )
    diff = label.unsqueeze(1) - label.unsqueeze(2)  # (nW, M², M²), integer labels: |diff| >= 1 across regions
    return diff.abs().clamp(max=1.0) * -100.0


class WindowAttention(nn.Module):
    """(Shifted-)window multi-head self-attention with relative position bias on a (B, H, W, C) map.

    The map is padded to a multiple of the window, rolled by ``shift`` (unless one window
    covers it), split into M×M windows, attended within each, and put back.
    """

    def __init__(self, dim: int, num_heads: int, window: int = 7, shift: int = 0, attn_drop: float = 0.0,
                 proj_drop: float = 0.0) -> None:  # fmt: skip
        super().__init__()
        self.num_heads, self.window, self.shift = num_heads, window, shift
        self.attn_drop, self.proj_drop = attn_drop, proj_drop
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.relative_position_bias_table = nn.Parameter(torch.zeros((2 * window - 1) ** 2, num_heads))
        nn.init.trunc_normal_(self.relative_position_bias_table, std=0.02)
        self.register_buffer("relative_position_index", relative_position_index(window))

    def position_bias(self) -> torch.Tensor:
        """Return the relative position bias (heads, M², M²)."""
        n = self.window**2
        return self.relative_position_bias_table[self.relative_position_index].view(n, n, -1).permute(2, 0, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, h, w, c = x.shape
        m = self.window
        x = F.pad(x, (0, 0, 0, (-w) % m, 0, (-h) % m))
        hp, wp = x.shape[1], x.shape[2]
        # no shift along an axis that one window covers (the roll would wrap the map onto itself)
        shift = (self.shift if m < hp else 0, self.shift if m < wp else 0)
        if any(shift):
            x = torch.roll(x, shifts=(-shift[0], -shift[1]), dims=(1, 2))
        nh, nw = hp // m, wp // m
        x = (
            x.view(b, nh, m, nw, m, c).permute(0, 1, 3, 2, 4, 5).reshape(b * nh * nw, m * m, c)
        )  # (B·nW, M², C)
        heads, d = self.num_heads, c // self.num_heads
        # 4-D (B·nW, heads, M², d): the form every SDPA kernel and the ONNX exporter take
        qkv = self.qkv(x).view(b * nh * nw, m * m, 3, heads, d).permute(2, 0, 3, 1, 4)  # (3, B·nW, h, M², d)
        mask = self.position_bias()  # (heads, M², M²), the same for every window
        if any(shift):
            mask = mask + _shift_mask(hp, wp, m, shift, x.device).unsqueeze(1)  # (nW, heads, M², M²)
            mask = mask.expand(b, *mask.shape).reshape(b * nh * nw, heads, m * m, m * m)
        x = F.scaled_dot_product_attention(
            qkv[0], qkv[1], qkv[2], attn_mask=mask, dropout_p=self.attn_drop if self.training else 0.0
        )  # (B·nW, heads, M², d)
        x = x.transpose(1, 2)  # (B·nW, M², h, d)
        if torch.compiler.is_compiling():
            # The CPU kernel's output is already laid out (B·nW, M², h, d), so a traced reshape
            # becomes a view, which the ONNX exporter's reference kernel (laid out by heads) cannot
            # take. An explicit copy keeps export working; eager reshapes without a copy.
            x = x.clone(memory_format=torch.contiguous_format)
        x = x.reshape(b * nh * nw, m * m, c)
        x = F.dropout(self.proj(x), self.proj_drop, self.training)
        x = x.view(b, nh, nw, m, m, c).permute(0, 1, 3, 2, 4, 5).reshape(b, hp, wp, c)
        if any(shift):
            x = torch.roll(x, shifts=shift, dims=(1, 2))
        return x[:, :h, :w, :].contiguous()


class SwinBlock(nn.Module):
    """Return ``x + drop(attn(norm1(x)))`` then ``x + drop(mlp(norm2(x)))`` on a (B, H, W, C) map (Eq. 3)."""

    def __init__(
        self,
        dim: int,
        num_heads: int,
        *,
        window: int = 7,
        shift: int = 0,
        mlp_ratio: float = 4.0,
        drop_path: float = 0.0,
        norm_layer: Callable[[int], nn.Module] = nn.LayerNorm,
        act_layer: Callable[..., nn.Module] = nn.GELU,
    ) -> None:
        super().__init__()
        self.norm1 = norm_layer(dim)
        self.attn = WindowAttention(dim, num_heads, window, shift)
        # one instance per residual branch: a module called twice in a forward breaks PT2E quantization
        self.stochastic_depth = DropPath(drop_path)
        self.stochastic_depth2 = DropPath(drop_path)
        self.norm2 = norm_layer(dim)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), act_layer(), nn.Dropout(0.0), nn.Linear(hidden, dim),
                                 nn.Dropout(0.0))  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.stochastic_depth(self.attn(self.norm1(x)))
        return x + self.stochastic_depth2(self.mlp(self.norm2(x)))


class PatchMerging(nn.Module):
    """Concatenate each 2×2 neighbourhood (padding odd sides), LayerNorm, then a linear 4C → 2C (§3.1)."""

    def __init__(self, dim: int, norm_layer: Callable[[int], nn.Module] = nn.LayerNorm) -> None:
        super().__init__()
        self.reduction = nn.Linear(4 * dim, 2 * dim, bias=False)
        self.norm = norm_layer(4 * dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-3], x.shape[-2]
        x = F.pad(x, (0, 0, 0, w % 2, 0, h % 2))
        parts = [x[..., 0::2, 0::2, :], x[..., 1::2, 0::2, :], x[..., 0::2, 1::2, :], x[..., 1::2, 1::2, :]]
        x = torch.cat(parts, -1)  # (B, H/2, W/2, 4C)
        return self.reduction(self.norm(x))


class SwinTransformer(LineageModel):
    """Swin: 4×4 patch embedding, four stages of (shifted-)window blocks with patch merging between, LN, pool, FC.

    ``forward_features`` returns the normalised last map as (B, C, H, W); the stages work on
    channels-last (B, H, W, C) maps, and ``feature_info`` marks them ``layout="NHWC"``.
    """

    def __init__(
        self,
        *,
        embed_dim: int = 96,
        depths: tuple[int, ...] = (2, 2, 6, 2),
        num_heads: tuple[int, ...] = (3, 6, 12, 24),
        window: int = 7,
        patch_size: int = 4,
        drop_path_rate: float = 0.2,
        num_classes: int = 1000,
        in_chans: int = 3,
    ) -> None:
        # torchvision's meta min_size is 224, but padding to whole windows makes any size from one patch work
        super().__init__(in_chans=in_chans, num_classes=num_classes, input_size=(in_chans, 224, 224),
                         min_size=patch_size)  # fmt: skip
        norm = functools.partial(nn.LayerNorm, eps=1e-5)
        layers: list[nn.Module] = [
            nn.Sequential(
                nn.Conv2d(in_chans, embed_dim, patch_size, stride=patch_size),
                Permute((0, 2, 3, 1)),
                norm(embed_dim),
            )  # fmt: skip
        ]
        total, index = sum(depths), 0
        self.feature_info = []
        for i, (depth, heads) in enumerate(zip(depths, num_heads)):
            dim = embed_dim * 2**i
            blocks = []
            for j in range(depth):
                # stochastic depth rising linearly to drop_path_rate at the last block (torchvision's rule)
                rate = drop_path_rate * index / (total - 1)
                blocks.append(SwinBlock(dim, heads, window=window, shift=window // 2 if j % 2 else 0,
                                        drop_path=rate, norm_layer=norm))  # fmt: skip
                index += 1
            layers.append(nn.Sequential(*blocks))
            self.feature_info.append(
                dict(
                    module=f"features.{len(layers) - 1}",
                    num_chs=dim,
                    reduction=patch_size * 2**i,
                    layout="NHWC",
                )
            )
            if i < len(depths) - 1:
                layers.append(PatchMerging(dim, norm))
        self.features = nn.Sequential(*layers)
        self.num_features = embed_dim * 2 ** (len(depths) - 1)
        self.norm = norm(self.num_features)
        self.permute = Permute((0, 3, 1, 2))  # (B, H, W, C) → (B, C, H, W)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.head = self._fc(num_classes)
        for m in self.modules():  # the authors' (and torchvision's) initialisation of every linear layer
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def _fc(self, num_classes: int) -> nn.Module:
        return nn.Linear(self.num_features, num_classes) if num_classes > 0 else nn.Identity()

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.permute(self.norm(self.features(x)))  # (B, C, H/32, W/32)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = torch.flatten(self.avgpool(x), 1)  # (B, C)
        return x if pre_logits else self.head(x)

    def get_classifier(self) -> nn.Module:
        return self.head

    def reset_classifier(self, num_classes: int) -> None:
        self.num_classes = num_classes
        self.head = self._fc(num_classes)


# ---------------------------------------------------------------------------------------- registry
_PAPER = dict(
    family="swin",
    year=2021,
    paper="Swin Transformer: Hierarchical Vision Transformer using Shifted Windows",
    authors=("Liu", "Lin", "Cao", "Hu", "Wei", "Zhang", "Lin", "Guo"),
    venue="ICCV",
    venue_year=2021,
    arxiv="2103.14030",
    input_size=(3, 224, 224),
    key_idea="Self-attention within 7x7 windows, shifted every second block; patch merging builds a 4-stage pyramid.",
)
# name: (C, depths, heads, stochastic depth, torchvision meta num_params, Table 1(a) top-1)
_VARIANTS = {
    "swin_t": (96, (2, 2, 6, 2), (3, 6, 12, 24), 0.2, 28_288_354, 81.3),
    "swin_s": (96, (2, 2, 18, 2), (3, 6, 12, 24), 0.3, 49_606_258, 83.0),
    "swin_b": (128, (2, 2, 18, 2), (4, 8, 16, 32), 0.5, 87_768_224, 83.5),
}


def _card(name: str) -> dict:
    c, depths, heads, dp, params, top1 = _VARIANTS[name]
    return dict(
        **_PAPER,
        ref_params=params,
        ref_params_source=f"torchvision Swin_{name[-1].upper()}_Weights meta num_params",
        ref_top1=top1,
        ref_top1_kind="paper",
        ref_top1_source=f"Liu et al. 2021, Table 1(a): Swin-{name[-1].upper()} at 224x224, ImageNet-1K training",
        torchvision=name,
        notes=f"C = {c}, depths {depths}, heads {heads}, window 7, stochastic depth {dp}. Inputs that are not "
        "multiples of the window are padded per stage, as torchvision does. Window attention runs as 4-D "
        "(batch x windows, heads, tokens, dim) scaled-dot-product attention, the form the ONNX exporter "
        "converts: `cnnlineage export` writes and verifies ONNX, TorchScript and exported-program files.",
        default_kwargs=dict(embed_dim=c, depths=depths, num_heads=heads, drop_path_rate=dp),
    )


def _swin(name: str, **kwargs) -> SwinTransformer:
    c, depths, heads, dp, _, _ = _VARIANTS[name]
    kwargs.setdefault("drop_path_rate", dp)
    return SwinTransformer(embed_dim=c, depths=depths, num_heads=heads, **kwargs)


@register_model(**_card("swin_t"))
def swin_t(*, num_classes: int = 1000, in_chans: int = 3, drop_path_rate: float = 0.2) -> SwinTransformer:
    """Return Swin-T (C = 96, depths 2-2-6-2)."""
    return _swin("swin_t", num_classes=num_classes, in_chans=in_chans, drop_path_rate=drop_path_rate)


@register_model(**_card("swin_s"))
def swin_s(*, num_classes: int = 1000, in_chans: int = 3, drop_path_rate: float = 0.3) -> SwinTransformer:
    """Return Swin-S (C = 96, depths 2-2-18-2)."""
    return _swin("swin_s", num_classes=num_classes, in_chans=in_chans, drop_path_rate=drop_path_rate)


@register_model(**_card("swin_b"))
def swin_b(*, num_classes: int = 1000, in_chans: int = 3, drop_path_rate: float = 0.5) -> SwinTransformer:
    """Return Swin-B (C = 128, depths 2-2-18-2)."""
    return _swin("swin_b", num_classes=num_classes, in_chans=in_chans, drop_path_rate=drop_path_rate)
