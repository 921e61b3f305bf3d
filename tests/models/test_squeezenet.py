"""SqueezeNet: the Fire module and Table 1's parameter count by hand."""

from __future__ import annotations

import torch

import cnnlineage
from cnnlineage.models._base import count_params
from cnnlineage.models.squeezenet import SQUEEZENET_CONFIGS, Fire


def _fire_params(in_chs: int, s: int, e1: int, e3: int) -> int:
    # squeeze 1×1, expand 1×1 and 3×3, each with a bias
    return in_chs * s + s + s * e1 + e1 + s * e3 * 9 + e3


def _hand_count(version: str, num_classes: int = 1000) -> int:
    (stem, k, _), rows = SQUEEZENET_CONFIGS[version]
    total, chs = 3 * stem * k * k + stem, stem
    for row in rows:
        if row != "pool":
            total += _fire_params(chs, *row)
            chs = row[1] + row[2]
    return total + chs * num_classes + num_classes  # the 1×1 class conv


def test_table1_parameter_count_by_hand():
    # Iandola et al. 2016, Table 1: 1,248,424 parameters in total
    assert _hand_count("1_0") == 1_248_424 == cnnlineage.model_info("squeezenet1_0").ref_params
    assert _hand_count("1_1") == 1_235_496 == cnnlineage.model_info("squeezenet1_1").ref_params
    assert count_params(cnnlineage.create_model("squeezenet1_1", num_classes=10)) == _hand_count("1_1", 10)


def test_fire_concatenates_both_expand_layers():
    fire = Fire(96, 16, 64, 64)
    out = fire(torch.randn(1, 96, 9, 9))
    assert out.shape == (1, 128, 9, 9) and (out >= 0).all()
    assert sum(p.numel() for p in fire.parameters()) == _fire_params(96, 16, 64, 64) == 11_920


def test_pre_logits_are_the_pooled_fire9_features():
    model = cnnlineage.create_model("squeezenet1_1", num_classes=5).eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        feats = model.forward_features(x)
        pooled = model.forward_head(feats, pre_logits=True)
    assert torch.allclose(pooled, feats.mean((2, 3)))
