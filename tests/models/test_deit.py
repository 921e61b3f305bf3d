"""DeiT with distillation: the extra token and head by hand, late fusion, and the training path."""

from __future__ import annotations

import torch

import cnnlineage
from cnnlineage.models._base import count_params


def test_distillation_adds_one_token_one_position_and_one_head():
    # DeiT-S⚗ = ViT-S/16 + distillation token (D) + its position embedding (D) + head_dist (D·1000 + 1000)
    d = 384
    vit_s = cnnlineage.model_info("vit_small_patch16_224").ref_params
    assert cnnlineage.model_info("deit_small_distilled").ref_params == vit_s + 2 * d + d * 1000 + 1000


def test_eval_averages_the_two_heads_and_training_can_return_both():
    model = cnnlineage.create_model("deit_tiny_distilled", num_classes=7).eval()
    x = torch.randn(2, 3, 64, 64)  # 4x4 patches: position embeddings resized, both tokens kept
    with torch.no_grad():
        tokens = model.forward_features(x)
        assert tokens.shape == (2, 2 + 16, 192)
        fused = model(x)
        cls, dist = model.heads(tokens[:, 0]), model.head_dist(tokens[:, 1])
    assert torch.allclose(fused, (cls + dist) / 2, atol=1e-6)
    model.train()
    assert model(x).shape == (2, 7)  # plain training: the fused logits
    model.distilled_training = True
    out = model(x)
    assert isinstance(out, tuple) and [o.shape for o in out] == [(2, 7), (2, 7)]
    model.reset_classifier(3)
    assert count_params(model.head_dist) == 192 * 3 + 3
