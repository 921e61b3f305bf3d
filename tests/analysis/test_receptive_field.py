"""Receptive fields: the analytic chain calculator for chain networks, and an independent
empirical method for branching ones.

The empirical method: make every weight positive, replace the non-linearities by the
identity and max-pooling by average pooling of the same geometry (so every path
carries gradient and nothing cancels), back-propagate from one output unit near the
centre, and measure the rows and columns of the input where the gradient is non-zero.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn as nn

import cnnlineage
from cnnlineage.analysis import profile
from cnnlineage.analysis.calculators import LayerSpec, receptive_field


def _chain_specs(model: nn.Module) -> list[LayerSpec]:
    specs = []
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d)):
            k, s, p = (v if isinstance(v, int) else v[0] for v in (m.kernel_size, m.stride, m.padding))
            d = m.dilation if isinstance(getattr(m, "dilation", 1), int) else m.dilation[0]
            specs.append(LayerSpec(k, s, p, d))
    return specs


@pytest.mark.parametrize("name", ["lenet5_modern", "alexnet", "vgg16", "zfnet"])
def test_chain_networks_match_the_calculator(name):
    model = cnnlineage.create_model(name)
    expected = receptive_field(_chain_specs(model))[-1]
    p = profile(name)
    last_spatial = [r for r in p.rows if len(r.output_shape) == 4 and not r.global_rf][-1]
    assert last_spatial.receptive_field == expected.r
    assert last_spatial.jump == expected.j
    assert last_spatial.start == expected.start
    assert p.receptive_field == expected.r


def _linearised(model: nn.Module) -> nn.Module:
    """Return the model with positive weights, identity activations and average pooling."""
    for name, m in list(model.named_modules()):
        parent = model.get_submodule(name.rsplit(".", 1)[0]) if "." in name else model
        leaf = name.rsplit(".", 1)[-1]
        if isinstance(m, (nn.ReLU, nn.ReLU6, nn.GELU, nn.SiLU, nn.Hardswish, nn.Dropout)):
            setattr(parent, leaf, nn.Identity())
        elif isinstance(m, nn.MaxPool2d):
            setattr(parent, leaf, nn.AvgPool2d(m.kernel_size, m.stride, m.padding, ceil_mode=m.ceil_mode))
    with torch.no_grad():
        for p in model.parameters():
            p.abs_().add_(1e-3)
    return model.eval()


def _empirical_extent(model: nn.Module, layer_row, size: int) -> tuple[tuple[int, int], tuple[int, int]]:
    """Return ((first row, last row), (first col, last col)) of the input that one unit of the row's output sees."""
    _, c, oh, ow = layer_row.output_shape
    jump, start = layer_row.jump, layer_row.start
    centre = (size - 1) / 2
    i = min(max(round((centre - start) / jump), 0), oh - 1)  # the unit whose field is centred on the image
    captured = {}
    module = model.get_submodule(layer_row.name)
    handle = module.register_forward_hook(lambda m, a, out: captured.__setitem__("out", out))
    x = torch.ones(1, model.in_chans, size, size, requires_grad=True)
    model(x)
    handle.remove()
    captured["out"][0, :, i, i].sum().backward()
    g = x.grad[0].abs().sum(0)
    rows = torch.nonzero(g.sum(1)).flatten()
    cols = torch.nonzero(g.sum(0)).flatten()
    predicted_centre = start + i * jump
    return (rows.min().item(), rows.max().item()), (cols.min().item(), cols.max().item()), predicted_centre


@pytest.mark.parametrize(
    "name,layer,size",
    [
        ("resnet18", "layer2", 160),  # residual: identity and 3x3 paths merge
        ("googlenet", "inception3b", 192),  # parallel 1x1 / 3x3 / 5x5 / pool branches, concatenated
        ("densenet_bc_100_12", "features.denseblock1", 96),  # dense concatenation
        ("resnet20", "layer2", 64),  # option-A shortcuts: strided identity, zero-padded channels
    ],
)
def test_branching_networks_match_the_empirical_field(name, layer, size):
    model = _linearised(cnnlineage.create_model(name))
    p = profile(name, (model.in_chans, size, size))
    row = [r for r in p.rows if r.name == layer or r.name.startswith(layer + ".")][-1]
    row.name = layer  # the module whose output the last row of the group produces
    assert not row.global_rf
    r = row.receptive_field
    (r0, r1), (c0, c1), centre = _empirical_extent(model, row, size)
    lo, hi = centre - (r - 1) / 2, centre + (r - 1) / 2
    assert lo >= 0 and hi <= size - 1, "choose a larger input: the field must lie inside the image"
    assert (r0, r1) == (math.floor(lo + 0.5), math.floor(hi + 0.5)), (
        f"{name}.{layer}: rows {r0}-{r1}, predicted {lo}-{hi}"
    )
    assert (c0, c1) == (r0, r1)
    assert r1 - r0 + 1 == r


def test_vit_attention_makes_the_field_global():
    name = "vit_tiny_patch4_32"
    p = profile(name)
    patch = next(r for r in p.rows if r.type == "Conv2d")
    assert patch.receptive_field == 4 and patch.jump == 4 and not patch.global_rf
    attn = next(r for r in p.rows if r.type == "scaled_dot_product_attention")
    assert attn.global_rf and attn.receptive_field == 32
    # empirically: one output token after the first block depends on every input pixel
    model = cnnlineage.create_model(name).eval()
    x = torch.randn(1, 3, 32, 32, requires_grad=True)
    tokens = model.forward_features(x)  # (B, N, D)
    # a random projection of one patch token (a plain sum is constant after the final LayerNorm)
    (tokens[0, 1] * torch.randn(tokens.shape[-1])).sum().backward()
    assert (x.grad.abs().sum(1)[0] > 0).all()


def test_squeeze_excitation_makes_the_field_global_but_keeps_the_local_field():
    p = profile("seresnet50")
    conv = next(r for r in p.rows if r.name == "layer1.0.conv3")
    gated = next(
        r for r in p.rows if r.name.startswith("layer1.0.") and r.global_rf and r.local_rf is not None
    )
    assert not conv.global_rf
    assert gated.local_rf is not None and gated.receptive_field == 224
    assert p.receptive_field == profile("resnet50").receptive_field  # SE adds no local extent
