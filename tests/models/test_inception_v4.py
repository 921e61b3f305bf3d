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
