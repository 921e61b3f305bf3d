"""MnasNet: width rounding and the block layout against torchvision's builder."""

from __future__ import annotations

import pytest

import cnnlineage
from cnnlineage.models.mnasnet import MNASNET_B1_STAGES, mnasnet_width


@pytest.mark.parametrize("alpha", [0.5, 0.75, 1.0, 1.3])
def test_widths_match_torchvision_rounding(alpha):
    from torchvision.models.mnasnet import _get_depths

    ours = [mnasnet_width(c, alpha) for c in (32, 16, *(s[3] for s in MNASNET_B1_STAGES))]
    assert ours == _get_depths(alpha)


def test_stage_table_matches_fig7_depths_and_strides():
    model = cnnlineage.create_model("mnasnet1_0")
    depths = [len(model.layers[i]) for i in range(2, 8)]
    assert depths == [3, 3, 3, 2, 4, 1]  # Fig. 7 (B1): 16 MBConv blocks
    assert [f["reduction"] for f in model.feature_info] == [2, 4, 8, 16, 32]
    with pytest.raises(ValueError, match="alpha"):
        cnnlineage.create_model("mnasnet1_0").__class__(0.0)
