"""Highway networks: hand-counted parameters, the gate at initialisation, gradient flow at depth 100."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

import cnnlineage
from cnnlineage.models.highway import HighwayLayer, highway_fc


def fc(n_in: int, n_out: int) -> int:
    return n_in * n_out + n_out


def conv3x3(c_in: int, c_out: int) -> int:
    return c_in * c_out * 9 + c_out


def mlp_count(depth: int, width: int, highway: bool) -> int:
    # 784 → width plain layer, depth − 1 hidden layers (H and T for a highway layer), width → 10
    per_layer = 2 * fc(width, width) if highway else fc(width, width)
    return fc(784, width) + (depth - 1) * per_layer + fc(width, 10)


def cnn_count(depth: int, width: int, highway: bool) -> int:
    per_layer = 2 * conv3x3(width, width) if highway else conv3x3(width, width)
    return conv3x3(3, width) + (depth - 1) * per_layer + fc(width, 10)


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("depth", [1, 10, 100])
def test_mlp_parameters_match_hand_count(depth):
    assert n_params(cnnlineage.create_model("highway_mlp", depth=depth)) == mlp_count(depth, 50, True)
    assert n_params(cnnlineage.create_model("plain_mlp", depth=depth)) == mlp_count(depth, 71, False)


@pytest.mark.parametrize("depth", [1, 19, 32])
def test_cnn_parameters_match_hand_count(depth):
    assert n_params(cnnlineage.create_model("highway_cnn", depth=depth)) == cnn_count(depth, 32, True)
    assert n_params(cnnlineage.create_model("plain_cnn", depth=depth)) == cnn_count(depth, 32, False)


def test_cards_hold_the_hand_counts_at_default_depth():
    assert cnnlineage.model_info("highway_mlp").ref_params == mlp_count(10, 50, True)
    assert cnnlineage.model_info("plain_mlp").ref_params == mlp_count(10, 71, False)
    assert cnnlineage.model_info("highway_cnn").ref_params == cnn_count(19, 32, True)
    assert cnnlineage.model_info("plain_cnn").ref_params == cnn_count(19, 32, False)
    # §3.1: a 71-unit plain layer costs about what a 50-block highway layer does (~5,000)
    assert abs(fc(71, 71) - 2 * fc(50, 50)) < 0.01 * fc(71, 71)


@pytest.mark.parametrize("name", ["highway_mlp", "plain_mlp", "highway_cnn", "plain_cnn"])
@pytest.mark.parametrize("depth", [0, 101, -3, 2.5, True])
def test_depth_outside_1_to_100_is_refused(name, depth):
    with pytest.raises(ValueError, match="depth"):
        cnnlineage.create_model(name, depth=depth)


def test_cnn_layers_are_split_over_three_pooled_stages():
    model = cnnlineage.create_model("highway_cnn", depth=20).eval()  # 19 highway layers: 7 + 6 + 6
    assert [sum(isinstance(m, HighwayLayer) for m in stage) for stage in model.stages] == [7, 6, 6]
    with torch.no_grad():
        assert model.forward_features(torch.randn(2, 3, 32, 32)).shape == (2, 32, 8, 8)


@pytest.mark.parametrize("name", ["highway_mlp", "highway_cnn"])
def test_gate_biases_start_negative(name):
    model = cnnlineage.create_model(name)
    gates = [m for m in model.modules() if isinstance(m, HighwayLayer)]
    assert len(gates) == model.depth - 1
    for g in gates:
        assert torch.equal(g.gate.bias, torch.full_like(g.gate.bias, -2.0))
    plain = cnnlineage.create_model(name.replace("highway", "plain"))
    assert not any(isinstance(m, HighwayLayer) for m in plain.modules())


def test_highway_layer_computes_transform_and_carry():
    layer = highway_fc(50)
    x = torch.randn(8, 50)
    with torch.no_grad():
        h = layer.transform(x)
        t = torch.sigmoid(layer.gate(x))
        torch.testing.assert_close(layer(x), h * t + x * (1 - t))
        layer.gate.bias.fill_(-30.0)  # gate shut: pure carry
        torch.testing.assert_close(layer(x), x)
        layer.gate.bias.fill_(30.0)  # gate open: a plain layer
        torch.testing.assert_close(layer(x), h)


def test_at_init_the_gate_is_mostly_closed_and_the_layer_near_identity():
    model = cnnlineage.create_model("highway_mlp", depth=2)
    layer = model.layers[0]
    x = torch.relu(torch.randn(256, 50))  # a layer's input: the ReLU output of the one before
    with torch.no_grad():
        t = layer.transform_gate(x)
        y = layer(x)
        plain = layer.transform(x)
    assert t.mean() < 0.25 and abs(t.mean() - 1 / (1 + math.exp(2))) < 0.1  # sigmoid(-2) = 0.12
    assert (y - x).norm() / x.norm() < 0.35  # mostly carried
    assert (plain - x).norm() / x.norm() > 0.7  # the transform alone is far from the identity


def test_100_layers_gradients_reach_the_first_layer_only_with_highways():
    grads = {}
    for name in ("highway_mlp", "plain_mlp"):
        torch.manual_seed(0)
        model = cnnlineage.create_model(name, depth=100)
        x, y = torch.rand(64, 1, 28, 28), torch.randint(0, 10, (64,))
        F.cross_entropy(model(x), y).backward()
        assert all(torch.isfinite(p.grad).all() for p in model.parameters())
        first, last = model.stem[1][0].weight.grad.norm(), model.fc.weight.grad.norm()
        grads[name] = (first.item(), last.item())
    (hw_first, hw_last), (plain_first, _) = grads["highway_mlp"], grads["plain_mlp"]
    # Through 99 plain ReLU layers the gradient shrinks by ~2^(-1/2) per layer (~1e-15 here);
    # the carry path keeps the highway network's first-layer gradient at the output layer's scale.
    assert hw_first > 1e3 * plain_first
    assert hw_first > 0.1 * hw_last
