"""Swin Transformer: window attention's cost against the paper's Eq. 2, and the shifted-window mask."""

from __future__ import annotations

import pytest
import torch

import cnnlineage
from cnnlineage.analysis import profile
from cnnlineage.models.swin import _shift_mask, relative_position_index


@pytest.mark.parametrize("name", ["swin_t"])
def test_window_attention_macs_follow_eq2(name):
    # Eq. 2: Ω(W-MSA) = 4hwC² + 2M²hwC multiply-adds (qkv and output projections, then q·kᵀ and attention·v)
    card = cnnlineage.model_info(name)
    c0, depths = card.default_kwargs["embed_dim"], card.default_kwargs["depths"]
    p = profile(name)
    m = 7
    for stage, depth in enumerate(depths):
        h = w = 224 // 4 // 2**stage  # 56, 28, 14, 7: multiples of the window, no padding
        c = c0 * 2**stage
        for block in range(depth):
            prefix = f"features.{2 * stage + 1}.{block}.attn."
            macs = sum(r.macs for r in p.rows if r.name.startswith(prefix))
            assert macs == 4 * h * w * c * c + 2 * m * m * h * w * c, (stage, block)


def test_relative_position_index_covers_the_bias_table():
    idx = relative_position_index(7).view(49, 49)
    assert idx.min() == 0 and idx.max() == 13 * 13 - 1 and idx.unique().numel() == 13 * 13
    assert torch.equal(idx.diagonal(), torch.full((49,), 6 * 13 + 6))  # zero offset = the table's centre
    # position (0,0) against (6,6): offset (-6,-6) → row 0 of the shifted offsets
    assert idx[0, 48] == 0 and idx[48, 0] == 13 * 13 - 1


def test_shift_mask_separates_regions_the_roll_brought_together():
    mask = _shift_mask(14, 14, 7, (3, 3), torch.device("cpu"))  # 4 windows of 49 tokens
    assert mask.shape == (4, 49, 49)
    assert set(mask.unique().tolist()) == {0.0, -100.0}
    assert torch.equal(mask, mask.transpose(1, 2))
    # the top-left window holds one region only; the bottom-right holds four (sizes 4x4, 4x3, 3x4, 3x3)
    assert (mask[0] == 0).all()
    allowed = (mask[3] == 0).sum().item()
    assert allowed == 16**2 + 12**2 + 12**2 + 9**2


def test_odd_sizes_pad_to_whole_windows():
    from cnnlineage.models.swin import SwinTransformer

    model = SwinTransformer(embed_dim=12, depths=(2, 2, 2, 2), num_heads=(1, 2, 3, 4), num_classes=5).eval()
    with torch.no_grad():  # 60x52 → stage maps 15x13, 8x7, 4x4, 2x2: padded to whole 7x7 windows
        assert model(torch.randn(1, 3, 60, 52)).shape == (1, 5)
