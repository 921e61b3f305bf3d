"""Inception-v4: the grids and widths of Fig. 9 and Reduction-A's k-l-m-n of Table 1."""

from __future__ import annotations

import torch

import cnnlineage
from cnnlineage.models.inception_v4 import INCEPTION_V4_LAYOUT


def test_grids_and_widths_follow_fig9():
    with torch.device("meta"):
        model = cnnlineage.create_model("inception_v4")
        x = torch.empty(1, 3, 299, 299)
        shapes = []
        for layer in model.features:
            x = layer(x)
            shapes.append(tuple(x.shape[1:]))
    assert shapes[2] == (64, 147, 147)  # the stem's three convs
    assert shapes[5] == (384, 35, 35)  # Fig. 3: the stem ends at 35x35x384
    assert shapes[9] == (384, 35, 35) and shapes[10] == (1024, 17, 17)  # 4x Inception-A, Reduction-A
    assert shapes[17] == (1024, 17, 17) and shapes[18] == (1536, 8, 8)  # 7x Inception-B, Reduction-B
    assert shapes[21] == (1536, 8, 8)  # 3x Inception-C
    assert len(INCEPTION_V4_LAYOUT) == 3 + 4 + 1 + 7 + 1 + 3


def test_reduction_a_uses_table1_k_l_m_n():
    # Table 1, Inception-v4: k = 192, l = 224, m = 256, n = 384 (Fig. 7)
    red_a = INCEPTION_V4_LAYOUT[7]
    n_branch, kml_branch, _ = red_a
    assert n_branch[0][0] == 384
    assert [step[0] for step in kml_branch] == [192, 224, 256]


def test_inception_resnet_v2_scales_and_block35_by_hand():
    from cnnlineage.models.inception_v4 import ResidualInceptionBlock

    with torch.device("meta"):
        model = cnnlineage.create_model("inception_resnet_v2")
    blocks = [m for m in model.features if isinstance(m, ResidualInceptionBlock)]
    # §3.3: residuals scaled by 0.17 (10 x 35x35), 0.10 (20 x 17x17), 0.20 (9 x 8x8), then the unscaled last block
    assert [b.scale for b in blocks] == [0.17] * 10 + [0.10] * 20 + [0.20] * 9 + [1.0]
    assert isinstance(blocks[-1].act, torch.nn.Identity) and isinstance(blocks[0].act, torch.nn.ReLU)
    # Block35 on 320 channels: 1x1→32 | 1x1→32, 3x3→32 | 1x1→32, 3x3→48, 3x3→64 (conv + 2 BN each), 1x1 128→320 + bias
    convs = [(320, 32, 1), (320, 32, 1), (32, 32, 3), (320, 32, 1), (32, 48, 3), (48, 64, 3)]
    expected = sum(i * o * k * k + 2 * o for i, o, k in convs) + 128 * 320 + 320
    assert sum(p.numel() for p in blocks[0].parameters()) == expected
