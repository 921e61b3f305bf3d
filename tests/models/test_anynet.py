"""AnyNet: a hand count of the default build, stage checks."""

import pytest
import torch

from cnnlineage import create_model, model_info
from cnnlineage.models.anynet import AnyNet


def _hand_count(stages, *, stem=16, in_chans=3, classes=10) -> int:
    total = in_chans * stem * 9 + 2 * stem  # stem 3x3 conv + BN
    w_in = stem
    for d, w, b, g in stages:
        wb = w // b
        for j in range(d):
            src = w_in if j == 0 else w
            total += src * wb + 2 * wb  # 1x1 a
            total += wb * g * 9 + 2 * wb  # grouped 3x3 b: wb/g groups of g channels
            total += wb * w + 2 * w  # 1x1 c
            if j == 0:  # stride 2 (and maybe new width): 1x1 projection shortcut
                total += src * w + 2 * w
        w_in = w
    return total + w_in * classes + classes


def test_default_anynet_matches_a_hand_count_and_its_card():
    m = create_model("anynet")
    stages = [(1, 16, 1, 4), (1, 32, 1, 8), (2, 64, 1, 8), (1, 128, 1, 8)]
    assert sum(p.numel() for p in m.parameters()) == _hand_count(stages) == model_info("anynet").ref_params


def test_bottleneck_and_groups_count_by_hand():
    stages = [[2, 24, 2, 4], [1, 48, 4, 3]]
    m = AnyNet(stages, num_classes=7, in_chans=1, stem_width=16)
    assert sum(p.numel() for p in m.parameters()) == _hand_count(stages, in_chans=1, classes=7)
    assert m(torch.randn(1, 1, 32, 32)).shape == (1, 7)


@pytest.mark.parametrize(
    "stages, words",
    [
        ([[1, 24, 1, 5]], "not a multiple of group width 5"),
        ([[0, 8, 1, 1]], "must be positive"),
        ([], "at least one stage"),
    ],
)
def test_impossible_stages_are_refused(stages, words):
    with pytest.raises(ValueError, match=words):
        AnyNet(stages)
