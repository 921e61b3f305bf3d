"""DARTS search: mixed ops, genotype derivation, the second-order gradient, exact resume, hardware cost."""

import json
import random

import pytest
import torch
import torch.nn.functional as F
from torch.func import functional_call

from cnnlineage.models.darts import PRIMITIVES
from cnnlineage.search.common import SearchData
from cnnlineage.search.darts import (
    Architect,
    MixedOp,
    SearchNetwork,
    derive_genotype,
    expected_cost,
    op_costs,
    run_darts,
)
from cnnlineage.search.random_search import run_random_search, sample_genotype


def _data(n=64, size=8, seed=0) -> SearchData:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(2 * n, 1, size, size, generator=g)
    y = torch.randint(0, 3, (2 * n,), generator=g)
    return SearchData("toy", x[:n], y[:n], x[n:], y[n:], num_classes=3, in_chans=1, size=(size, size))


def test_mixed_op_is_a_convex_combination_and_gradients_reach_w_and_alpha():
    torch.manual_seed(0)
    op = MixedOp(4, 1)
    alpha = torch.randn(len(PRIMITIVES), requires_grad=True)
    w = F.softmax(alpha, -1)
    assert torch.allclose(w.sum(), torch.tensor(1.0))
    x = torch.randn(2, 4, 6, 6)
    out = op(x, w)
    # the mixture equals the weighted sum of each candidate's output
    assert torch.allclose(out, sum(wi * o(x) for wi, o in zip(w, op.ops)), atol=1e-6)
    out.square().mean().backward()
    assert alpha.grad is not None and alpha.grad.abs().sum() > 0
    conv_grads = [p.grad for p in op.parameters() if p.requires_grad]
    assert conv_grads and all(g is not None and g.abs().sum() > 0 for g in conv_grads)


def test_genotype_derivation_on_crafted_weights():
    k = 14
    w = torch.full((k, len(PRIMITIVES)), 0.01)
    none, sep3, maxp, skip = (
        PRIMITIVES.index(n) for n in ("none", "sep_conv_3x3", "max_pool_3x3", "skip_connect")
    )
    w[:, none] = 0.9  # "none" is strongest everywhere and must never be chosen
    # node 0: edges 0 (input 0), 1 (input 1): sep3 on input 1 strongest, skip on input 0
    w[1, sep3], w[0, skip] = 0.5, 0.3
    # node 1 (edges 2, 3, 4 from inputs 0, 1, 2): keep inputs 2 (maxp 0.6) and 0 (sep3 0.4), drop 1 (0.2)
    w[4, maxp], w[2, sep3], w[3, sep3] = 0.6, 0.4, 0.2
    g = derive_genotype(w, w)
    assert g.normal[:4] == (
        ("sep_conv_3x3", 1),
        ("skip_connect", 0),
        ("max_pool_3x3", 2),
        ("sep_conv_3x3", 0),
    )
    assert all(op != "none" for op, _ in g.normal + g.reduce)
    assert g.normal_concat == (2, 3, 4, 5)
    with pytest.raises(ValueError, match="do not fit"):
        derive_genotype(w[:5], w)


def test_second_order_gradient_matches_exact_differentiation_through_the_virtual_step():
    torch.manual_seed(0)
    net = SearchNetwork(channels=2, layers=3, num_classes=3, in_chans=1).double()
    for m in net.modules():  # batch statistics differ between passes only by the weights: keep BN stateless
        if isinstance(m, torch.nn.BatchNorm2d):
            m.track_running_stats = False
            m.running_mean = m.running_var = None
    with torch.no_grad():
        net.alphas_normal.normal_(0, 0.5)
        net.alphas_reduce.normal_(0, 0.5)
    d = _data(n=8)
    xt, yt, xv, yv = d.x_search.double(), d.y_search, d.x_val.double(), d.y_val
    eta = 0.1
    opt = torch.optim.SGD([p for _, p in net.named_weights()], lr=eta, momentum=0.9, weight_decay=0.0)
    approx = Architect(net, opt, order=2, fd_radius=1e-6)._unrolled_grads(xt, yt, xv, yv, eta)[1]
    # exact: differentiate L_val(w - eta * grad_w L_train(w, a), a) w.r.t. a, second derivatives included
    names, weights = zip(*net.named_weights())
    alphas = net.arch_parameters()
    g = torch.autograd.grad(F.cross_entropy(net(xt), yt), weights, create_graph=True)
    params = {n: w - eta * gw for n, w, gw in zip(names, weights, g)}
    params.update(alphas_normal=alphas[0], alphas_reduce=alphas[1])
    exact = torch.autograd.grad(F.cross_entropy(functional_call(net, params, (xv,)), yv), alphas)
    for a, e in zip(approx, exact):
        rel = (a - e).norm() / e.norm()
        assert rel < 1e-3, float(rel)
    first = torch.autograd.grad(F.cross_entropy(net(xv), yv), alphas)
    assert (first[0] - exact[0]).norm() > 10 * (approx[0] - exact[0]).norm()  # the second-order term matters


def test_search_resumes_exactly_after_an_interruption(tmp_path):
    d = _data(n=32)
    kw = dict(order=1, epochs=2, channels=2, layers=3, batch_size=16, seed=3, checkpoint_every=1)
    full = run_darts(d, str(tmp_path / "full"), **kw)

    class Killed(Exception):
        pass

    calls = []

    def kill_at_5(info):
        calls.append(info)
        if len(calls) == 3:  # in epoch 2, after its first step's checkpoint
            raise Killed

    with pytest.raises(Killed):
        run_darts(d, str(tmp_path / "cut"), progress=kill_at_5, **kw)
    resumed = run_darts(d, str(tmp_path / "cut"), **kw)
    assert resumed["genotype"] == full["genotype"]
    for a, b in zip(resumed["history"], full["history"]):
        assert a["alphas_normal"] == b["alphas_normal"] and a["train_loss"] == b["train_loss"]
    s1 = torch.load(tmp_path / "full" / "search_state.pt", weights_only=True)["net"]
    s2 = torch.load(tmp_path / "cut" / "search_state.pt", weights_only=True)["net"]
    assert all(torch.equal(s1[k], s2[k]) for k in s1)
    with pytest.raises(ValueError, match="holds a darts-1 search"):
        run_darts(d, str(tmp_path / "full"), **{**kw, "seed": 4})


def test_budget_too_small_names_the_minimum(tmp_path):
    with pytest.raises(ValueError, match=r"too small: one search epoch takes about .* give --budget"):
        run_darts(
            _data(n=96), str(tmp_path), epochs=3, channels=2, layers=3, batch_size=16, budget_minutes=1e-5
        )


def test_expected_cost_equals_the_hand_sum_and_pulls_alpha_to_cheap_ops():
    net = SearchNetwork(channels=2, layers=3, num_classes=3, in_chans=1)
    tables = op_costs(net, (1, 8, 8), kind="macs")
    none, sep3, sep5 = (PRIMITIVES.index(n) for n in ("none", "sep_conv_3x3", "sep_conv_5x5"))
    # a normal-cell sep_conv_3x3 on 2 channels at 8x8, counted by hand, summed over the first cell's edges
    c, hw = 2, 64
    sep3_macs = 2 * (c * 9 * hw + c * c * hw)
    first_cell = tables[0][0, sep3]  # edge 0 of the one normal cell (cell 0): 8x8
    assert float(first_cell) == sep3_macs
    assert float(tables[0][0, none]) == 0 and tables[0][0, sep5] > tables[0][0, sep3]
    with torch.no_grad():
        manual = sum((F.softmax(a, -1) * t).sum() for a, t in zip(net.arch_parameters(), tables))
    assert torch.allclose(expected_cost(net, tables), manual)
    opt = torch.optim.SGD([p for _, p in net.named_weights()], lr=0.1)
    arch = Architect(net, opt, order=1, lr=0.05, cost_tables=tables, cost_weight=100.0)
    before = float(expected_cost(net, tables))
    d = _data(n=16)
    for _ in range(5):
        arch.step(d.x_search, d.y_search, d.x_val, d.y_val, 0.1)
    assert float(expected_cost(net, tables)) < before


def test_random_genotypes_are_valid_and_random_search_resumes(tmp_path):
    rng = random.Random(0)
    for _ in range(50):
        g = sample_genotype(rng)
        for edges in (g.normal, g.reduce):
            for n in range(4):
                (op1, a), (op2, b) = edges[2 * n], edges[2 * n + 1]
                assert a != b and max(a, b) < n + 2 and "none" not in (op1, op2)
    d = _data(n=32)
    kw = dict(max_candidates=2, candidate_epochs=1.0, channels=2, layers=3, seed=1)
    a = run_random_search(d, str(tmp_path / "a"), **kw)
    b_dir = tmp_path / "b"
    run_random_search(d, str(b_dir), **{**kw, "max_candidates": 1})  # stopped after one candidate
    b = run_random_search(d, str(b_dir), **kw)  # continues with the second only
    assert [(c["genotype"], c["val_top1"]) for c in a["candidates"]] == [
        (c["genotype"], c["val_top1"]) for c in b["candidates"]
    ]
    assert b["candidates"][0]["seconds"] == json.loads(json.dumps(b["candidates"][0]))["seconds"]


def test_a_corrupt_search_state_is_named_and_kept(tmp_path):
    state = tmp_path / "search_state.pt"
    state.write_bytes(b"not a checkpoint at all")
    with pytest.raises(
        ValueError, match=r"search_state.pt is corrupt .* delete it to start the search again"
    ):
        run_random_search(_data(n=16), str(tmp_path), max_candidates=1, channels=2, layers=3)
    assert state.read_bytes() == b"not a checkpoint at all"
