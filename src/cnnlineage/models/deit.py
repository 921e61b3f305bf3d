"""DeiT with distillation — Touvron, Cord, Douze, Massa, Sablayrolles & Jégou, "Training
data-efficient image transformers & distillation through attention", ICML 2021, arXiv:2012.12877.

DeiT trains a ViT on ImageNet-1k alone with a strong recipe (RandAugment, Mixup, CutMix,
random erasing, stochastic depth, repeated augmentation, 300 epochs), and adds a
*distillation token* (§4, Fig. 2): a second learned token beside the class token that
attends with the patches and feeds its own linear head, trained to match a teacher
(a RegNetY-16GF convnet) — hard-label distillation, ``L = ½·CE(head(cls), y) + ½·CE(head_dist(dist), y_teacher)``
(Eq. 3 and after). At test time the two heads' logits are averaged (§5.2, "late fusion").

The encoder is ``models.vit``'s (pre-norm blocks, SDPA attention); only the token layout and
the heads differ. Names are timm's where they differ from ViT's, and timm's
``deit_*_distilled_patch16_224`` state_dicts load through ``remap_timm``.

In training mode ``forward`` returns the averaged logits, so the model trains like any
other; with ``distilled_training = True`` it returns ``(logits_cls, logits_dist)`` for a
distillation loop that supplies the teacher's labels to the second head.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from ..registry import register_model
from ._base import is_tracing
from .vit import VisionTransformer, ViTConfig, resize_pos_embedding

__all__ = ["DistilledVisionTransformer", "DEIT_CFGS"]


class DistilledVisionTransformer(VisionTransformer):
    """A ViT with class *and* distillation tokens and one head on each; eval output = the heads' mean."""

    def __init__(self, cfg: ViTConfig, *, num_classes: int | None = None, **kwargs) -> None:
        super().__init__(cfg, num_classes=num_classes, **kwargs)
        d = cfg.dim
        self.dist_token = nn.Parameter(torch.zeros(1, 1, d))
        n = self.grid[0] * self.grid[1] + 2  # cls, dist, patches
        self.encoder.pos_embedding = nn.Parameter(torch.empty(1, n, d).normal_(std=0.02))
        nn.init.trunc_normal_(self.dist_token, std=0.02)
        nn.init.trunc_normal_(self.class_token, std=0.02)
        self.head_dist = self._make_head(self.num_classes)
        self.distilled_training = False

    def pos_embedding_for(self, grid: tuple[int, int]) -> torch.Tensor:
        """Return position embeddings (1, 2 + h·w, D), the grid part resized unless it is the default."""
        pos = self.encoder.pos_embedding
        return torch.cat([pos[:, :1], resize_pos_embedding(pos[:, 1:], self.grid, grid)], dim=1)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv_proj(x)  # (B, D, H/P, W/P)
        grid = (x.shape[-2], x.shape[-1])
        x = x.flatten(2).transpose(1, 2)  # (B, N, D)
        b = x.shape[0]
        x = torch.cat([self.class_token.expand(b, -1, -1), self.dist_token.expand(b, -1, -1), x], dim=1)
        return self.encoder(x, self.pos_embedding_for(grid))  # (B, 2 + N, D)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        if pre_logits:
            return (x[:, 0] + x[:, 1]) / 2  # (B, D)
        cls, dist = self.heads(x[:, 0]), self.head_dist(x[:, 1])
        if self.distilled_training and self.training and not is_tracing():
            return cls, dist  # type: ignore[return-value]
        return (cls + dist) / 2

    def reset_classifier(self, num_classes: int) -> None:
        super().reset_classifier(num_classes)
        self.head_dist = self._make_head(num_classes)

    def _make_head(self, num_classes: int) -> nn.Module:
        if num_classes == 0:
            return nn.Identity()
        head = nn.Linear(self.hidden_dim, num_classes)
        nn.init.trunc_normal_(head.weight, std=0.02)  # timm's DeiT initialisation
        nn.init.zeros_(head.bias)
        return head


# Touvron et al. 2021, Table 1: DeiT-Ti, -S, -B (patch 16, 12 blocks, MLP 4D)
DEIT_CFGS = {
    "deit_tiny_distilled": ViTConfig(16, 12, 3, 192, 768),
    "deit_small_distilled": ViTConfig(16, 12, 6, 384, 1536),
    "deit_base_distilled": ViTConfig(16, 12, 12, 768, 3072),
}
# name: (timm model, timm parameter count, Table 5 top-1 of the distilled model at 224)
_REFERENCE = {
    "deit_tiny_distilled": ("deit_tiny_distilled_patch16_224", 5_910_800, 74.5),
    "deit_small_distilled": ("deit_small_distilled_patch16_224", 22_436_432, 81.2),
    "deit_base_distilled": ("deit_base_distilled_patch16_224", 87_338_192, 83.4),
}


def _card(name: str) -> dict:
    timm_name, params, top1 = _REFERENCE[name]
    size = {"tiny": "Ti", "small": "S", "base": "B"}[name.split("_")[1]]
    return dict(
        family="deit",
        year=2020,
        paper="Training data-efficient image transformers & distillation through attention",
        authors=("Touvron", "Cord", "Douze", "Massa", "Sablayrolles", "Jégou"),
        venue="ICML",
        venue_year=2021,
        arxiv="2012.12877",
        input_size=(3, 224, 224),
        key_idea="A ViT trained on ImageNet-1k alone, with a distillation token that learns from a convnet teacher.",
        ref_params=params,
        ref_params_source=f"timm {timm_name} parameter count",
        ref_top1=top1,
        ref_top1_kind="paper",
        ref_top1_source=f"Touvron et al. 2021, Table 5: DeiT-{size} with distillation, 224x224, 300 epochs",
        timm=timm_name,
        notes="Eval output averages the class and distillation heads (late fusion); set distilled_training=True "
        "to get both logits in training. The paper's teacher is RegNetY-16GF (regnet_y_16gf here).",
    )


def _deit(name: str, num_classes: int, in_chans: int, drop_path_rate: float) -> DistilledVisionTransformer:
    return DistilledVisionTransformer(
        DEIT_CFGS[name], num_classes=num_classes, in_chans=in_chans, drop_path_rate=drop_path_rate
    )


@register_model(**_card("deit_tiny_distilled"))
def deit_tiny_distilled(
    *, num_classes: int = 1000, in_chans: int = 3, drop_path_rate: float = 0.1
) -> DistilledVisionTransformer:
    """Return DeiT-Ti with the distillation token (D = 192, 3 heads)."""
    return _deit("deit_tiny_distilled", num_classes, in_chans, drop_path_rate)


@register_model(**_card("deit_small_distilled"))
def deit_small_distilled(
    *, num_classes: int = 1000, in_chans: int = 3, drop_path_rate: float = 0.1
) -> DistilledVisionTransformer:
    """Return DeiT-S with the distillation token (D = 384, 6 heads)."""
    return _deit("deit_small_distilled", num_classes, in_chans, drop_path_rate)


@register_model(**_card("deit_base_distilled"))
def deit_base_distilled(
    *, num_classes: int = 1000, in_chans: int = 3, drop_path_rate: float = 0.1
) -> DistilledVisionTransformer:
    """Return DeiT-B with the distillation token (D = 768, 12 heads)."""
    return _deit("deit_base_distilled", num_classes, in_chans, drop_path_rate)
