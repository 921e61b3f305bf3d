"""MobileViT: unfold and fold are inverse, and each sequence holds one pixel position of every patch."""

from __future__ import annotations

import torch
import torch.nn as nn

import cnnlineage
from cnnlineage.models.mobilevit import MobileViTBlock


def test_unfold_groups_one_position_of_every_patch_and_fold_inverts_it():
    block = MobileViTBlock(8, 8, 1).eval()
    seen = {}
    block.transformer = nn.Identity()
    block.norm = nn.Identity()
    block.conv_kxk, block.conv_1x1 = nn.Identity(), nn.Identity()
    block.conv_proj = nn.Identity()
    block.conv_fusion = nn.Identity()
    block.norm.register_forward_hook(lambda m, i, o: seen.__setitem__("seq", o))
    x = torch.arange(2 * 8 * 6 * 4, dtype=torch.float32).reshape(2, 8, 6, 4)
    out = block(x)
    assert torch.equal(out[:, 8:], x)  # fold(unfold(x)) = x, concatenated after the shortcut
    seq = seen["seq"]  # (B·P, N, d) = (2·4, 3·2, 8)
    assert seq.shape == (8, 6, 8)
    # sequence 1 of image 0 is pixel (0, 1) of each 2x2 patch, patches in row-major order
    assert torch.equal(seq[1, :, 0], x[0, 0, 0::2, 1::2].flatten())


def test_parameter_count_of_a_block_by_hand():
    c, d, depth = 64, 96, 2
    block = MobileViTBlock(c, d, depth)
    transformer = depth * (
        2 * 2 * d + (d * 3 * d + 3 * d) + (d * d + d) + (d * 2 * d + 2 * d) + (2 * d * d + d)
    )
    convs = (9 * c * c + 2 * c) + c * d + (d * c + 2 * c) + (9 * 2 * c * c + 2 * c)
    assert sum(p.numel() for p in block.parameters()) == transformer + 2 * d + convs
    model = cnnlineage.create_model("mobilevit_xs", num_classes=3).eval()
    with torch.no_grad():
        assert model(torch.randn(1, 3, 66, 70)).shape == (1, 3)  # odd grids are resized inside the blocks
