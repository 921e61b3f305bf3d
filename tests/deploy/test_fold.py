"""BatchNorm folding: the formula by hand, and equivalence on every family that uses BatchNorm."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn

from cnnlineage.analysis import profile
from cnnlineage.deploy.fold import fold_batchnorm
from cnnlineage.registry import create_model

# The smallest model of every family with BatchNorm (plus variants whose blocks differ).
BN_MODELS = [
    "googlenet",
    "vgg11_bn",
    "resnet18",
    "resnest50",
    "plain20",
    "preact_resnet18",
    "densenet_bc_100_12",
    "mobilenet_v1_0.5",
    "mobilenet_v3_small",
    "xception",
    "shufflenet_v2_x0_5",
    "shufflenet_v1_g3",
    "efficientnet_b0",
    "regnet_y_400mf",
    "darts",
    "anynet",
]


def _randomise_bn(model: nn.Module, seed: int = 0) -> None:
    # Fresh BatchNorms are the identity in eval mode; random statistics make folding non-trivial.
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            k = m.num_features
            m.running_mean.copy_(torch.randn(k, generator=g) * 0.5)
            m.running_var.copy_(torch.rand(k, generator=g) * 1.5 + 0.5)
            m.weight.data.copy_(torch.rand(k, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(k, generator=g) * 0.2)


def test_folded_weights_match_the_formula_by_hand():
    conv = nn.Conv2d(1, 1, 1, bias=True)
    conv.weight.data.fill_(2.0)
    conv.bias.data.fill_(0.5)
    bn = nn.BatchNorm2d(1, eps=0.0)
    bn.running_mean.fill_(1.5)
    bn.running_var.fill_(4.0)
    bn.weight.data.fill_(3.0)
    bn.bias.data.fill_(-1.0)
    folded, report = fold_batchnorm(nn.Sequential(conv, bn))
    # scale = γ/√σ² = 3/2; W' = 2·1.5 = 3; b' = (0.5 − 1.5)·1.5 − 1 = −2.5
    assert folded[0].weight.item() == 3.0 and folded[0].bias.item() == -2.5
    assert isinstance(folded[1], nn.Identity) and report.folded == [("0", "1")] and report.unfolded == []
    assert report.params_before - report.params_after == 2  # γ and β


def test_shared_conv_output_is_not_folded():
    class Branch(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv, self.bn = nn.Conv2d(2, 2, 3, padding=1), nn.BatchNorm2d(2)

        def forward(self, x):
            y = self.conv(x)
            return self.bn(y) + y  # the conv output feeds the BatchNorm and the sum

    m = Branch()
    _randomise_bn(m)
    folded, report = fold_batchnorm(m)
    assert report.folded == [] and report.unfolded == ["bn"]
    x = torch.randn(1, 2, 5, 5)
    assert torch.equal(folded(x), m.eval()(x))


@pytest.mark.parametrize("name", BN_MODELS)
def test_folding_keeps_the_outputs(name):
    model = create_model(name, num_classes=10)
    _randomise_bn(model)
    model.eval()
    c, h, w = model.input_size
    if not model.fixed_size:
        h = w = max(32, model.min_size[0])
    x = torch.randn(2, c, h, w, generator=torch.Generator().manual_seed(1))
    folded, report = fold_batchnorm(model)
    with torch.no_grad():
        ref, got = model(x), folded(x)
    assert report.folded, f"{name}: nothing folded"
    assert (got - ref).abs().max() <= 1e-5 * max(1.0, ref.abs().max().item())
    n_bn = sum(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in folded.modules())
    assert n_bn == len(report.unfolded)
    # parameters: each folded BatchNorm drops γ and β (2C); a bias-free conv gains a bias (C)
    convs = {n: m for n, m in model.named_modules()}
    expected = sum(
        2 * convs[bn].num_features - (convs[p].bias is None) * convs[bn].num_features
        for p, bn in report.folded
    )
    assert report.params_before - report.params_after == expected


def test_analyzer_counts_the_folded_model():
    model = create_model("plain20", num_classes=10).eval()
    folded, report = fold_batchnorm(model)
    before, after = profile(model, (3, 32, 32)), profile(folded, (3, 32, 32))
    assert after.total_params == report.params_after
    assert after.total_macs == before.total_macs  # the convolutions' multiply-accumulates are unchanged
    assert (
        sum(r.type == "BatchNorm2d" for r in after.rows)
        == 0
        < sum(r.type == "BatchNorm2d" for r in before.rows)
    )
    assert after.total_flops < before.total_flops
