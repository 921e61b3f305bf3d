"""Vision Transformer — Dosovitskiy et al., "An Image is Worth 16x16 Words: Transformers for
Image Recognition at Scale", ICLR 2021, arXiv:2010.11929.

The end of the convolutional lineage, and its foil: cut the image into P×P patches, embed
each linearly (a convolution with stride = kernel = P), prepend a learned class token, add
learned position embeddings, and run a standard pre-norm Transformer encoder,
``x + MSA(LN(x))`` then ``x + MLP(LN(x))`` (Eq. 2-3). The class token's final state,
layer-normed, feeds the linear head (Eq. 4). Almost no image-specific inductive bias: with
enough data (JFT-300M) it matches ResNets; on ImageNet alone it needs strong regularisation.

Module names are torchvision's (``conv_proj``, ``class_token``, ``encoder.pos_embedding``,
``encoder.layers.encoder_layer_{i}.{ln_1, self_attention, ln_2, mlp}``, ``encoder.ln``,
``heads.head``), and the attention keeps ``nn.MultiheadAttention``'s parameter names
(``in_proj_weight``, ``in_proj_bias``, ``out_proj``) while computing with
``F.scaled_dot_product_attention``. timm's ViT loads through ``remap_timm``.

Position embeddings are learned for the default grid; at another input size they are
resized bicubically (§3.2, "2D interpolation of the pre-trained position embeddings"),
the class token's embedding kept as it is. At the default size nothing is resized.
"""

from __future__ import annotations

import functools
import math
import re
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..layers.drop_path import DropPath
from ..registry import register_model
from ._base import LineageModel

__all__ = ["VisionTransformer", "ViTConfig", "SelfAttention", "EncoderBlock", "resize_pos_embedding"]


_LAYER_NORM = functools.partial(nn.LayerNorm, eps=1e-6)  # eps of the reference implementation


def resize_pos_embedding(
    pos: torch.Tensor, old_grid: tuple[int, int], new_grid: tuple[int, int], *, mode: str = "bicubic"
) -> torch.Tensor:
    """Return position embeddings (1, 1 + h·w, D) resized to another patch grid, the class token's kept.

    The grid part is interpolated as an image (``align_corners=True``, as torchvision's
    ``interpolate_embeddings``); ``pos`` is returned itself when the grids are equal.
    """
    if tuple(old_grid) == tuple(new_grid):
        return pos
    (gh, gw), (nh, nw) = old_grid, new_grid
    dim = pos.shape[-1]
    cls_pos, grid = pos[:, :1], pos[:, 1:]
    grid = grid.reshape(1, gh, gw, dim).permute(0, 3, 1, 2)  # (1, D, gh, gw)
    grid = F.interpolate(grid, size=(nh, nw), mode=mode, align_corners=True)
    grid = grid.permute(0, 2, 3, 1).reshape(1, nh * nw, dim)  # (1, nh·nw, D)
    return torch.cat([cls_pos, grid], dim=1)


class SelfAttention(nn.Module):
    """Multi-head self-attention with ``nn.MultiheadAttention``'s parameters, computed by SDPA.

    ``in_proj_weight`` (3D, D) stacks the query, key and value projections (as torchvision
    and timm's ``qkv`` do); softmax(QKᵀ/√d_h)V per head, then ``out_proj``.
    """

    def __init__(self, dim: int, num_heads: int, *, attn_drop: float = 0.0) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"width {dim} must divide by the number of heads, got {num_heads}")
        self.num_heads = num_heads
        self.attn_drop = attn_drop
        self.in_proj_weight = nn.Parameter(torch.empty(3 * dim, dim))
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * dim))
        self.out_proj = nn.Linear(dim, dim)
        nn.init.xavier_uniform_(self.in_proj_weight)  # nn.MultiheadAttention's init
        nn.init.zeros_(self.out_proj.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        qkv = F.linear(x, self.in_proj_weight, self.in_proj_bias)  # (B, N, 3D)
        qkv = qkv.reshape(b, n, 3, self.num_heads, d // self.num_heads).permute(
            2, 0, 3, 1, 4
        )  # (3, B, h, N, d_h)
        q, k, v = qkv.unbind(0)
        x = F.scaled_dot_product_attention(q, k, v, dropout_p=self.attn_drop if self.training else 0.0)
        x = x.transpose(1, 2).reshape(b, n, d)  # (B, N, D)
        return self.out_proj(x)


class EncoderBlock(nn.Module):
    """Pre-norm Transformer block: ``x + MSA(LN(x))``, then ``x + MLP(LN(x))`` (Eq. 2-3)."""

    def __init__(
        self,
        dim: int,
        num_heads: int,
        mlp_dim: int,
        *,
        dropout: float = 0.0,
        attn_drop: float = 0.0,
        drop_path: float = 0.0,
        norm_layer: Callable[[int], nn.Module] = _LAYER_NORM,
        act_layer: Callable[[], nn.Module] = nn.GELU,
    ) -> None:
        super().__init__()
        self.ln_1 = norm_layer(dim)
        self.self_attention = SelfAttention(dim, num_heads, attn_drop=attn_drop)
        self.dropout = nn.Dropout(dropout)
        self.ln_2 = norm_layer(dim)
        # indices 0 and 3 hold the weights, as torchvision's MLPBlock
        self.mlp = nn.Sequential(
            nn.Linear(dim, mlp_dim),
            act_layer(),
            nn.Dropout(dropout),
            nn.Linear(mlp_dim, dim),
            nn.Dropout(dropout),
        )
        for m in (self.mlp[0], self.mlp[3]):
            nn.init.xavier_uniform_(m.weight)
            nn.init.normal_(m.bias, std=1e-6)
        # one instance per residual branch: a module called twice in a forward breaks PT2E quantization
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.drop_path2 = DropPath(drop_path) if drop_path > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.drop_path(self.dropout(self.self_attention(self.ln_1(x))))
        return x + self.drop_path2(self.mlp(self.ln_2(x)))


class Encoder(nn.Module):
    """Position embeddings, ``depth`` encoder blocks and the final LayerNorm."""

    def __init__(
        self,
        seq_length: int,
        depth: int,
        dim: int,
        num_heads: int,
        mlp_dim: int,
        *,
        dropout: float = 0.0,
        attn_drop: float = 0.0,
        drop_path_rate: float = 0.0,
        norm_layer: Callable[[int], nn.Module] = _LAYER_NORM,
    ) -> None:
        super().__init__()
        self.pos_embedding = nn.Parameter(torch.empty(1, seq_length, dim).normal_(std=0.02))
        self.dropout = nn.Dropout(dropout)
        rates = [drop_path_rate * i / max(depth - 1, 1) for i in range(depth)]  # linear decay (DeiT)
        blocks = [
            EncoderBlock(
                dim,
                num_heads,
                mlp_dim,
                dropout=dropout,
                attn_drop=attn_drop,
                drop_path=r,
                norm_layer=norm_layer,
            )
            for r in rates
        ]
        self.layers = nn.Sequential(OrderedDict((f"encoder_layer_{i}", b) for i, b in enumerate(blocks)))
        self.ln = norm_layer(dim)

    def forward(self, x: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
        return self.ln(self.layers(self.dropout(x + pos)))


@dataclass(frozen=True)
class ViTConfig:
    """One ViT variant (Table 1 of the paper for Base/Large)."""

    patch_size: int  # P: patches are P×P, the stride of the patch embedding
    depth: int  # number of encoder blocks
    num_heads: int
    dim: int  # D, the token width
    mlp_dim: int  # hidden width of each block's MLP (4D in the paper)
    img_size: int = 224
    num_classes: int = 1000


class VisionTransformer(LineageModel):
    """Patch embedding + class token + position embeddings → Transformer encoder → head on the class token."""

    def __init__(
        self,
        cfg: ViTConfig,
        *,
        num_classes: int | None = None,
        in_chans: int = 3,
        img_size: int | None = None,
        dropout: float = 0.0,
        attention_dropout: float = 0.0,
        drop_path_rate: float = 0.0,
        norm_layer: Callable[[int], nn.Module] = _LAYER_NORM,
    ) -> None:
        num_classes = cfg.num_classes if num_classes is None else num_classes
        img_size = img_size or cfg.img_size
        p = cfg.patch_size
        if img_size % p:
            raise ValueError(f"img_size must be a multiple of the patch size {p}, got {img_size}")
        super().__init__(
            in_chans=in_chans,
            num_classes=num_classes,
            input_size=(in_chans, img_size, img_size),
            min_size=p,
            size_multiple=p,
        )
        self.patch_size = p
        self.hidden_dim = cfg.dim
        self.grid = (img_size // p, img_size // p)
        self.conv_proj = nn.Conv2d(in_chans, cfg.dim, kernel_size=p, stride=p)
        self.class_token = nn.Parameter(torch.zeros(1, 1, cfg.dim))
        self.encoder = Encoder(
            self.grid[0] * self.grid[1] + 1,
            cfg.depth,
            cfg.dim,
            cfg.num_heads,
            cfg.mlp_dim,
            dropout=dropout,
            attn_drop=attention_dropout,
            drop_path_rate=drop_path_rate,
            norm_layer=norm_layer,
        )
        self.heads = nn.Sequential(OrderedDict(head=self._make_head(num_classes)))
        self.num_features = cfg.dim
        # the token sequence after each quarter of the blocks
        self.feature_info = [
            dict(
                module=f"encoder.layers.encoder_layer_{(i + 1) * cfg.depth // 4 - 1}",
                num_chs=cfg.dim,
                reduction=p,
            )
            for i in range(4)
        ]
        fan_in = in_chans * p * p
        nn.init.trunc_normal_(self.conv_proj.weight, std=math.sqrt(1 / fan_in))
        nn.init.zeros_(self.conv_proj.bias)

    def _make_head(self, num_classes: int) -> nn.Module:
        if num_classes == 0:
            return nn.Identity()
        head = nn.Linear(self.hidden_dim, num_classes)
        nn.init.zeros_(head.weight)  # zero-initialised head (the paper's fine-tuning setup; torchvision)
        nn.init.zeros_(head.bias)
        return head

    def pos_embedding_for(self, grid: tuple[int, int]) -> torch.Tensor:
        """Return position embeddings (1, 1 + h·w, D) for a patch grid, resized unless it is the default."""
        return resize_pos_embedding(self.encoder.pos_embedding, self.grid, grid)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv_proj(x)  # (B, D, H/P, W/P)
        grid = (x.shape[-2], x.shape[-1])
        x = x.flatten(2).transpose(1, 2)  # (B, N, D), patches in row-major order
        x = torch.cat([self.class_token.expand(x.shape[0], -1, -1), x], dim=1)  # (B, 1 + N, D)
        return self.encoder(x, self.pos_embedding_for(grid))

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = x[:, 0]  # the class token, (B, D)
        return x if pre_logits else self.heads(x)

    def get_classifier(self) -> nn.Module:
        return self.heads.head

    def reset_classifier(self, num_classes: int) -> None:
        self.num_classes = num_classes
        self.heads.head = self._make_head(num_classes)

    # timm's names → ours; qkv/in_proj both stack q, k, v in that order
    _TIMM_RENAMES = (
        (r"^cls_token$", "class_token"),
        (r"^pos_embed$", "encoder.pos_embedding"),
        (r"^patch_embed\.proj\.", "conv_proj."),
        (r"^blocks\.(\d+)\.norm1\.", r"encoder.layers.encoder_layer_\1.ln_1."),
        (
            r"^blocks\.(\d+)\.attn\.qkv\.weight$",
            r"encoder.layers.encoder_layer_\1.self_attention.in_proj_weight",
        ),
        (r"^blocks\.(\d+)\.attn\.qkv\.bias$", r"encoder.layers.encoder_layer_\1.self_attention.in_proj_bias"),
        (r"^blocks\.(\d+)\.attn\.proj\.", r"encoder.layers.encoder_layer_\1.self_attention.out_proj."),
        (r"^blocks\.(\d+)\.norm2\.", r"encoder.layers.encoder_layer_\1.ln_2."),
        (r"^blocks\.(\d+)\.mlp\.fc1\.", r"encoder.layers.encoder_layer_\1.mlp.0."),
        (r"^blocks\.(\d+)\.mlp\.fc2\.", r"encoder.layers.encoder_layer_\1.mlp.3."),
        (r"^norm\.", "encoder.ln."),
        (r"^head\.", "heads.head."),
    )

    def remap_timm(self, state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Return a timm ``VisionTransformer`` state_dict (class token, no registers) renamed to ours."""
        out = {}
        for key, value in state_dict.items():
            for pattern, repl in self._TIMM_RENAMES:
                key, n = re.subn(pattern, repl, key)
                if n:
                    break
            out[key] = value
        return out


# name: patch, depth, heads, D, MLP; Base and Large from the paper's Table 1
VIT_CFGS = {
    "vit_b_16": ViTConfig(16, 12, 12, 768, 3072),
    "vit_b_32": ViTConfig(32, 12, 12, 768, 3072),
    "vit_l_16": ViTConfig(16, 24, 16, 1024, 4096),
    "vit_small_patch16_224": ViTConfig(16, 12, 6, 384, 1536),  # timm / DeiT-S width
    "vit_tiny_patch4_32": ViTConfig(4, 6, 3, 192, 768, img_size=32, num_classes=10),  # CIFAR-sized, for CPU
}

_VIT = dict(
    family="vit",
    year=2020,
    paper="An Image is Worth 16x16 Words: Transformers for Image Recognition at Scale",
    authors=(
        "Dosovitskiy",
        "Beyer",
        "Kolesnikov",
        "Weissenborn",
        "Zhai",
        "Unterthiner",
        "Dehghani",
        "Minderer",
        "Heigold",
        "Gelly",
        "Uszkoreit",
        "Houlsby",
    ),
    venue="ICLR",
    venue_year=2021,
    arxiv="2010.11929",
)


def _tv_card(name: str, params: int, top1: float, idea: str) -> dict:
    weights = {"vit_b_16": "ViT_B_16", "vit_b_32": "ViT_B_32", "vit_l_16": "ViT_L_16"}[name]
    return dict(
        **_VIT,
        key_idea=idea,
        input_size=(3, 224, 224),
        ref_params=params,
        ref_params_source=f"torchvision {weights}_Weights.IMAGENET1K_V1 meta num_params",
        ref_top1=top1,
        ref_top1_kind="recipe",
        ref_top1_source=f"torchvision {weights}_Weights.IMAGENET1K_V1 (ImageNet-1K only, DeiT-style recipe)",
        torchvision=name,
        notes="Inputs of any size divisible by the patch: position embeddings are resized bicubically.",
    )


def _vit(name: str, **kwargs) -> VisionTransformer:
    return VisionTransformer(VIT_CFGS[name], **kwargs)


@register_model(
    **_tv_card(
        "vit_b_16", 86_567_656, 81.072, "Images as sequences of 16x16 patches for a plain Transformer."
    )
)
def vit_b_16(
    *,
    num_classes: int = 1000,
    in_chans: int = 3,
    img_size: int = 224,
    dropout: float = 0.0,
    drop_path_rate: float = 0.0,
) -> VisionTransformer:
    """Return ViT-B/16: 12 blocks, D = 768, 12 heads, 16×16 patches."""
    return _vit(
        "vit_b_16",
        num_classes=num_classes,
        in_chans=in_chans,
        img_size=img_size,
        dropout=dropout,
        drop_path_rate=drop_path_rate,
    )


@register_model(
    **_tv_card("vit_b_32", 88_224_232, 75.912, "ViT-Base with 32x32 patches: 4x fewer tokens, cheaper.")
)
def vit_b_32(
    *,
    num_classes: int = 1000,
    in_chans: int = 3,
    img_size: int = 224,
    dropout: float = 0.0,
    drop_path_rate: float = 0.0,
) -> VisionTransformer:
    """Return ViT-B/32: 12 blocks, D = 768, 12 heads, 32×32 patches."""
    return _vit(
        "vit_b_32",
        num_classes=num_classes,
        in_chans=in_chans,
        img_size=img_size,
        dropout=dropout,
        drop_path_rate=drop_path_rate,
    )


@register_model(
    **_tv_card("vit_l_16", 304_326_632, 79.662, "ViT-Large: 24 blocks, D = 1024; scale pays off with data.")
)
def vit_l_16(
    *,
    num_classes: int = 1000,
    in_chans: int = 3,
    img_size: int = 224,
    dropout: float = 0.0,
    drop_path_rate: float = 0.0,
) -> VisionTransformer:
    """Return ViT-L/16: 24 blocks, D = 1024, 16 heads, 16×16 patches."""
    return _vit(
        "vit_l_16",
        num_classes=num_classes,
        in_chans=in_chans,
        img_size=img_size,
        dropout=dropout,
        drop_path_rate=drop_path_rate,
    )


@register_model(
    **_VIT,
    key_idea="ViT-S/16 (D = 384, 6 heads): the small ViT of DeiT and timm, trainable without JFT.",
    input_size=(3, 224, 224),
    ref_params=22_050_664,
    ref_params_source="timm vit_small_patch16_224 parameter count (hand count in the test)",
    timm="vit_small_patch16_224",
    notes="Not in the paper's Table 1: timm's ViT-S (Touvron et al. 2021, DeiT-S width). timm weights "
    "load through remap_timm.",
)
def vit_small_patch16_224(
    *,
    num_classes: int = 1000,
    in_chans: int = 3,
    img_size: int = 224,
    dropout: float = 0.0,
    drop_path_rate: float = 0.0,
) -> VisionTransformer:
    """Return ViT-S/16 as timm's ``vit_small_patch16_224``: 12 blocks, D = 384, 6 heads."""
    return _vit(
        "vit_small_patch16_224",
        num_classes=num_classes,
        in_chans=in_chans,
        img_size=img_size,
        dropout=dropout,
        drop_path_rate=drop_path_rate,
    )


@register_model(
    **_VIT,
    key_idea="A ViT small enough for CPU: 4x4 patches of a 32x32 image, 6 blocks of width 192.",
    input_size=(3, 32, 32),
    num_classes=10,
    ref_params=2_693_578,
    ref_params_source="hand count (tests/models/test_vit.py)",
    notes="Not in the paper: a CIFAR-sized ViT (64 patch tokens + class token) for experiments on CPU.",
)
def vit_tiny_patch4_32(
    *,
    num_classes: int = 10,
    in_chans: int = 3,
    img_size: int = 32,
    dropout: float = 0.0,
    drop_path_rate: float = 0.0,
) -> VisionTransformer:
    """Return a tiny ViT for 32×32 inputs: 4×4 patches, 6 blocks, D = 192, 3 heads, 10 classes."""
    return _vit(
        "vit_tiny_patch4_32",
        num_classes=num_classes,
        in_chans=in_chans,
        img_size=img_size,
        dropout=dropout,
        drop_path_rate=drop_path_rate,
    )
