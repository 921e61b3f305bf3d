"""The analytic calculators against worked examples from the papers and lecture notes."""

import pytest
import torch
import torch.nn as nn

from cnnlineage.analysis.calculators import (
    LayerSpec,
    bottleneck_cost,
    conv_cost,
    conv_output_size,
    depthwise_separable_cost,
    kxk_vs_3x3_stack,
    receptive_field,
)


@pytest.mark.parametrize(
    "size,k,s,p,d,ceil",
    [(227, 11, 4, 0, 1, False), (224, 11, 4, 2, 1, False), (55, 3, 2, 0, 1, False), (56, 3, 2, 1, 1, True),
     (112, 3, 2, 0, 1, True), (14, 3, 1, 2, 2, False), (7, 7, 1, 0, 1, False), (28, 2, 2, 0, 1, False),
     (13, 3, 2, 0, 1, True), (147, 3, 2, 0, 1, True)],
)  # fmt: skip
def test_conv_output_size_matches_pytorch(size, k, s, p, d, ceil):
    x = torch.zeros(1, 1, size, size)
    if ceil:
        y = nn.MaxPool2d(k, s, p, dilation=d, ceil_mode=True)(x)
    else:
        y = nn.Conv2d(1, 1, k, s, p, dilation=d)(x)
    assert conv_output_size(size, k, s, p, d, ceil) == y.shape[-1]


def test_conv_output_size_worked_examples_and_errors():
    assert conv_output_size(227, 11, 4) == 55  # AlexNet conv1 (Krizhevsky 2012)
    assert conv_output_size(55, 3, 2) == 27  # overlapping pooling
    assert conv_output_size(32, 5) == 28  # LeNet-5 C1
    with pytest.raises(ValueError, match="smaller than the kernel"):
        conv_output_size(4, 5)
    with pytest.raises(ValueError, match="stride"):
        conv_output_size(32, 3, 0)


def test_receptive_field_of_a_chain():
    # LeNet-5: C1 5x5, S2 2x2/2, C3 5x5, S4 2x2/2, C5 5x5 -> 32 (the whole input)
    steps = receptive_field([(5,), (2, 2), (5,), (2, 2), (5,)])
    assert [s.r for s in steps] == [5, 6, 14, 16, 32]
    assert [s.j for s in steps] == [1, 2, 2, 4, 4]
    # three stacked 3x3 convolutions see 7x7 (VGG, Simonyan & Zisserman 2015)
    assert receptive_field([LayerSpec(3, 1, 1)] * 3)[-1].r == 7
    # dilation 2 on a 3x3 kernel sees 5
    assert receptive_field([LayerSpec(3, 1, 2, 2)])[-1].r == 5


def test_kxk_vs_stack_of_3x3():
    c = 64
    single, stack, n = kxk_vs_3x3_stack(c, 5)
    assert (single.params, stack.params, n) == (25 * c * c, 18 * c * c, 2)  # 25C² vs 18C²
    single, stack, n = kxk_vs_3x3_stack(c, 7)
    assert (single.params, stack.params, n) == (49 * c * c, 27 * c * c, 3)
    with pytest.raises(ValueError):
        kxk_vs_3x3_stack(c, 4)


def test_bottleneck_cuts_googlenet_5x5_branch():
    # inception (3a): 192 channels in, 5x5 branch of 32 filters, 1x1 reduction to 16 (Szegedy 2015, Table 1)
    direct = conv_cost(192, 32, 5)
    reduced = bottleneck_cost(192, 16, 32, 5)
    assert direct.macs_per_position == 153_600
    assert reduced.macs_per_position == 15_872
    assert reduced.ratio(direct) == pytest.approx(9.68, abs=0.01)


def test_depthwise_separable_saves_8_to_9x():
    for c_out in (256, 512, 1024):
        std = conv_cost(c_out, c_out, 3)
        sep = depthwise_separable_cost(c_out, c_out, 3)
        assert sep.macs_per_position == 9 * c_out + c_out * c_out
        # ratio 1 / (1/N + 1/9) (Howard et al. 2017, §3.1)
        assert sep.ratio(std) == pytest.approx(1 / (1 / c_out + 1 / 9))
        assert 8.0 < sep.ratio(std) < 9.0
    assert conv_cost(32, 64, 3, groups=32).params == 3 * 3 * 64  # grouped: C_in/g per filter
    with pytest.raises(ValueError, match="groups"):
        conv_cost(30, 64, 3, groups=4)
