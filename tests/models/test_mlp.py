"""Perceptron and multilayer perceptron: hand counts, the perceptron rule, and what each can learn."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn

import cnnlineage


def test_hand_counts():
    assert cnnlineage.model_info("perceptron").ref_params == 28 * 28 * 10 + 10 == 7_850
    # LeCun 1998's 300-100 net: (784+1)*300 + (300+1)*100 + (100+1)*10
    assert cnnlineage.model_info("mlp").ref_params == 785 * 300 + 301 * 100 + 101 * 10 == 266_610
    custom = cnnlineage.create_model("mlp", hidden=(50,), num_classes=3, in_chans=3, img_size=8)
    assert sum(p.numel() for p in custom.parameters()) == (3 * 64 + 1) * 50 + (50 + 1) * 3


def test_perceptron_rule_by_hand():
    model = cnnlineage.create_model("perceptron", num_classes=3, img_size=2)  # 4 inputs, 3 units, zero start
    x = torch.tensor([[[[1.0, -2.0], [0.5, 0.0]]]])
    assert model.rosenblatt_update(x, torch.tensor([2]), lr=0.5) == 1
    # all units said 0; only unit 2 (target 1) was wrong: w_2 += 0.5 * x, b_2 += 0.5
    expected = torch.zeros(3, 4)
    expected[2] = 0.5 * x.flatten()
    torch.testing.assert_close(model.fc.weight, expected)
    torch.testing.assert_close(model.fc.bias, torch.tensor([0.0, 0.0, 0.5]))
    # now correct for this sample: the rule changes nothing
    assert torch.equal(model.predict_units(x), torch.tensor([[0.0, 0.0, 1.0]]))
    assert model.rosenblatt_update(x, torch.tensor([2])) == 0
    torch.testing.assert_close(model.fc.weight, expected)


def _train(model, x, y, epochs):
    for epoch in range(epochs):
        if model.rosenblatt_update(x, y) == 0:
            return epoch
    return None


def test_perceptron_learns_a_linearly_separable_problem():
    torch.manual_seed(0)
    # three classes, each a cube of side 2 around 5·e_c in 16 dimensions: unit c separates its class with
    # w = e_c, b = -2.5, so every one-vs-rest problem is separable and the rule must converge (Novikoff 1962)
    y = torch.randint(0, 3, (150,))
    x = torch.rand(150, 16) * 2 - 1
    x[torch.arange(150), y] += 5
    x = x.reshape(150, 1, 4, 4)
    model = cnnlineage.create_model("perceptron", num_classes=3, img_size=4)
    assert model.predict(x).eq(y).float().mean() < 0.5  # nothing learned yet (all scores zero)
    epochs = _train(model, x, y, epochs=50)
    assert epochs is not None, "the perceptron rule did not converge on separable data"
    assert torch.equal(model.predict(x), y)
    assert torch.equal(model.predict_units(x), nn.functional.one_hot(y, 3).float())


def test_single_unit_learns_a_random_halfspace_but_not_xor():
    torch.manual_seed(1)
    w_true = torch.randn(2)
    x = torch.rand(400, 2) * 2 - 1
    margin = x @ w_true + 0.1
    keep = margin.abs() > 0.1  # a margin gamma > 0 bounds the number of mistakes by (R / gamma)^2
    x, y = x[keep].reshape(-1, 2, 1, 1), (margin[keep] > 0).long()
    model = cnnlineage.create_model("perceptron", num_classes=1, in_chans=2, img_size=1)
    assert _train(model, x, y, epochs=200) is not None
    assert torch.equal(model.predict(x), y)
    # XOR is not linearly separable (Minsky & Papert 1969): the rule never stops making mistakes
    xor_x = torch.tensor([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]]).reshape(4, 2, 1, 1)
    xor_y = torch.tensor([0, 1, 1, 0])
    model.reset_classifier(1)
    assert _train(model, xor_x, xor_y, epochs=100) is None


def test_mlp_learns_xor_with_backprop():
    torch.manual_seed(0)
    x = torch.tensor([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]]).reshape(4, 2, 1, 1)
    y = torch.tensor([0, 1, 1, 0])
    model = cnnlineage.create_model("mlp", hidden=(8,), num_classes=2, in_chans=2, img_size=1)
    opt = torch.optim.Adam(model.parameters(), lr=0.1)
    for _ in range(100):
        loss = nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert torch.equal(model(x).argmax(1), y)


def test_mlp_default_is_lecun_300_100_tanh():
    model = cnnlineage.create_model("mlp")
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(784, 300), (300, 100), (100, 10)]
    assert sum(isinstance(m, nn.Tanh) for m in model.modules()) == 2
    assert [f["num_chs"] for f in model.feature_info] == [300, 100]


@pytest.mark.parametrize("name", ["perceptron", "mlp"])
def test_flattening_models_take_only_their_size(name):
    model = cnnlineage.create_model(name)
    assert model.fixed_size
    with pytest.raises(ValueError, match=f"{name} takes only 28x28"):
        model(torch.randn(1, 1, 32, 32))
    if name == "perceptron":  # the learning rule checks its input like forward does
        with pytest.raises(ValueError, match="takes only 28x28"):
            model.rosenblatt_update(torch.randn(1, 1, 32, 32), torch.tensor([0]))
