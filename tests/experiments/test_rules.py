"""Every experiment's verdict rule on crafted numbers: the verdict follows the numbers, seed by seed."""

import math

import torch

from cnnlineage.experiments import HOLDS, NOT_AT_THIS_SCALE, SEEDS_DISAGREE, get_experiment


def _results(name, units, budget=None):
    exp = get_experiment(name)
    return {
        "budget": budget or exp.budgets["full"],
        "units": {k: {"seed": int(k.rsplit("-s", 1)[1]), "data": d} for k, d in units.items()},
    }


def _outcome(name, units, budget=None):
    return get_experiment(name).verdict(_results(name, units, budget)).outcome


def test_xor_rule():
    good = lambda s: {f"perceptron-s{s}": {"accuracy": [75.0]}, f"mlp-s{s}": {"accuracy": [100.0]}}  # noqa: E731
    assert _outcome("xor", {**good(0), **good(1)}) == HOLDS
    bad = {**good(0), "mlp-s1": {"accuracy": [75.0]}, "perceptron-s1": {"accuracy": [50.0]}}
    assert _outcome("xor", bad) == SEEDS_DISAGREE
    assert (
        _outcome("xor", {"perceptron-s0": {"accuracy": [100.0]}, "mlp-s0": {"accuracy": [100.0]}})
        == NOT_AT_THIS_SCALE
    )


def test_why_cnn_rule():
    u = {"lenet5-s0": {"accuracy_by_shift": [98, 90, 60]}, "mlp-s0": {"accuracy_by_shift": [95, 70, 30]}}
    assert _outcome("why-cnn", u) == HOLDS
    u["mlp-s0"]["accuracy_by_shift"] = [95, 95, 70]  # the MLP more robust to shifts
    assert _outcome("why-cnn", u) == NOT_AT_THIS_SCALE


def test_relu_vs_tanh_rule():
    def units(s, relu, tanh):
        return {f"relu-s{s}": {"epochs_to_target": relu}, f"tanh-s{s}": {"epochs_to_target": tanh}}

    assert _outcome("relu-vs-tanh", {**units(0, 2, 6), **units(1, 3, None)}) == HOLDS  # 12 epochs / 3 >= 2
    assert _outcome("relu-vs-tanh", {**units(0, 2, 6), **units(1, 5, 6)}) == SEEDS_DISAGREE  # 1.2x is not 2x
    assert _outcome("relu-vs-tanh", units(0, None, 3)) == NOT_AT_THIS_SCALE
    assert _outcome("relu-vs-tanh", units(0, 7, None)) == NOT_AT_THIS_SCALE  # at least 12/7, not surely 2x


def test_lrn_vs_bn_rule():
    u = {"none-s0": {"test_top1": 80.0}, "lrn-s0": {"test_top1": 81.0}, "bn-s0": {"test_top1": 90.0}}
    assert _outcome("lrn-vs-bn", u) == HOLDS
    u["lrn-s0"]["test_top1"] = 79.0
    assert _outcome("lrn-vs-bn", u) == NOT_AT_THIS_SCALE


def test_regularization_rule():
    gaps = {"none": 20.0, "dropout": 10.0, "augmentation": 8.0, "both": 5.0}
    u = {f"{k}-s0": {"gap": v} for k, v in gaps.items()}
    assert _outcome("regularization", u) == HOLDS
    u["dropout-s0"]["gap"] = 21.0
    assert _outcome("regularization", u) == NOT_AT_THIS_SCALE


def test_small_filters_rule():
    def d(params, macs, acc):
        return {"params": params, "macs": macs, "test_top1": acc}

    u = {"k5-single-s0": d(100, 1000, 80), "k5-stack-s0": d(72, 720, 82), "k7-single-s0": d(196, 1960, 79),
         "k7-stack-s0": d(108, 1080, 79)}  # fmt: skip
    assert _outcome("small-filters", u) == HOLDS
    u["k7-stack-s0"] = d(108, 1080, 78.9)
    assert _outcome("small-filters", u) == NOT_AT_THIS_SCALE


def test_cost_of_convolutions_rule():
    def rnd(t):
        return {"time_ratio": {"standard": 1, "bottleneck": t, "depthwise_separable": t, "grouped": 9},
                "macs_ratio": {"standard": 1, "bottleneck": 8.5, "depthwise_separable": 8.7, "grouped": 8}}  # fmt: skip

    assert _outcome("cost-of-convolutions", {"round-s0": rnd(8.1), "round-s1": rnd(9.0)}) == HOLDS
    assert _outcome("cost-of-convolutions", {"round-s0": rnd(2.0), "round-s1": rnd(1.5)}) == NOT_AT_THIS_SCALE


def test_batchnorm_rule():
    lrs = get_experiment("batchnorm").budgets["full"]["lrs"]

    def units(bn_max, plain_max):
        u = {}
        for lr in lrs:
            u[f"bn-lr{lr:g}-s0"] = {"steps_to_target": 10 if bn_max and lr <= bn_max else None}
            u[f"none-lr{lr:g}-s0"] = {"steps_to_target": 10 if plain_max and lr <= plain_max else None}
        return u

    assert _outcome("batchnorm", units(lrs[-1], lrs[1])) == HOLDS
    assert _outcome("batchnorm", units(lrs[2], None)) == HOLDS
    assert _outcome("batchnorm", units(lrs[1], lrs[1])) == NOT_AT_THIS_SCALE


def test_gradient_flow_rule():
    def units(sig, alive):
        u = {"sigmoid_mlp-s0": {"init_ratio": sig}}
        u.update(
            {
                f"{n}-s0": {"init_ratio": alive}
                for n in ("bn_mlp", "residual_mlp", "highway_mlp", "dense_block")
            }
        )
        return u

    assert _outcome("gradient-flow", units(1e-6, 0.5)) == HOLDS
    assert _outcome("gradient-flow", units(0.5, 0.5)) == NOT_AT_THIS_SCALE
    assert _outcome("gradient-flow", units(1e-6, 0.05)) == NOT_AT_THIS_SCALE


def test_highway_rule():
    depths = get_experiment("highway").budgets["full"]["depths"]

    def units(plain, highway):
        u = {f"plain_mlp-d{d}-s0": {"best_train_loss": p} for d, p in zip(depths, plain)}
        u.update({f"highway_mlp-d{d}-s0": {"best_train_loss": h} for d, h in zip(depths, highway)})
        return u

    assert _outcome("highway", units([0.1, 0.2, 1.0, 2.3], [0.1, 0.1, 0.12, 0.15])) == HOLDS
    assert _outcome("highway", units([0.1, 0.1, 0.1, 0.15], [0.1, 0.1, 0.12, 0.15])) == NOT_AT_THIS_SCALE


def test_degradation_rule():
    def units(s, p20, p56, r20, r56):
        return {f"plain20-s{s}": {"train_error": [p20]}, f"plain56-s{s}": {"train_error": [p56]},
                f"resnet20-s{s}": {"train_error": [r20]}, f"resnet56-s{s}": {"train_error": [r56]}}  # fmt: skip

    assert _outcome("degradation", units(0, 10, 15, 10, 8)) == HOLDS
    assert (
        _outcome("degradation", units(0, 10, 10.5, 10, 8)) == NOT_AT_THIS_SCALE
    )  # within the 1-point tolerance
    assert _outcome("degradation", {**units(0, 10, 15, 10, 8), **units(1, 10, 15, 10, 12)}) == SEEDS_DISAGREE


def test_residual_ensembles_rule():
    def net(full, accs, down):
        return {
            "full_accuracy": full,
            "blocks": [{"accuracy": a, "downsampling": d} for a, d in zip(accs, down)],
        }

    down = [False, True, False]
    u = {"resnet-s0": net(90, [88, 40, 86], down), "plain-s0": net(90, [10, None, 12], down)}
    assert _outcome("residual-ensembles", u) == HOLDS  # the downsampling block's 50-point drop is not counted
    u["resnet-s0"] = net(90, [60, 40, 70], down)
    assert _outcome("residual-ensembles", u) == NOT_AT_THIS_SCALE


def test_effective_rf_rule():
    def u(init, trained):
        d = {"theoretical_rf": 81, "init_erf": init, "trained_erf": trained}
        return {"plain-s0": d, "resnet-s0": d}

    assert _outcome("effective-receptive-field", u(20.0, 30.0)) == HOLDS
    assert _outcome("effective-receptive-field", u(50.0, 60.0)) == NOT_AT_THIS_SCALE
    assert _outcome("effective-receptive-field", u(20.0, 19.0)) == NOT_AT_THIS_SCALE


def test_compound_scaling_rule():
    b = {"phis": [1, 2]}
    u = {
        f"{m}-phi2-s0": {"test_top1": a}
        for m, a in zip(("compound", "depth", "width", "resolution"), (80, 78, 79, 75))
    }
    assert _outcome("compound-scaling", u, b) == HOLDS
    u["width-phi2-s0"]["test_top1"] = 81
    assert _outcome("compound-scaling", u, b) == NOT_AT_THIS_SCALE


# ---------------------------------------------------------------------------- measurements
def test_shift_moves_pixels_with_zero_fill():
    from cnnlineage.experiments.why_cnn import shift

    x = torch.arange(16, dtype=torch.uint8).view(1, 1, 4, 4)
    right = shift(x, 1, 0)
    assert right[0, 0, :, 0].tolist() == [0, 0, 0, 0] and right[0, 0, 0, 1:].tolist() == [0, 1, 2]
    up = shift(x, 0, -2)
    assert up[0, 0, 0].tolist() == [8, 9, 10, 11] and up[0, 0, 2:].sum() == 0


def test_effective_side_of_a_gaussian_is_its_two_sigma_disc():
    from cnnlineage.experiments.effective_rf import effective_side

    sigma, n = 6.0, 101
    r = torch.arange(n) - n // 2
    g = torch.exp(-(r[:, None] ** 2 + r[None, :] ** 2) / (2 * sigma**2))
    # the area where a Gaussian exceeds e^-2 of its peak is the disc of radius 2 sigma
    assert abs(effective_side(g) - math.sqrt(math.pi) * 2 * sigma) < 0.5


def test_small_filter_designs_match_vgg_hand_counts():
    from cnnlineage.experiments.nets import build

    c = 16
    for k, n in ((5, 2), (7, 3)):
        one = sum(
            p.numel()
            for p in build("exp_filternet", width=c, kernel=k, block="single", stages=1).parameters()
        )
        stack = sum(
            p.numel() for p in build("exp_filternet", width=c, kernel=k, block="stack", stages=1).parameters()
        )
        # Simonyan & Zisserman §2.3: k²C² weights against n·9·C² (plus C biases per layer)
        assert one - stack == (k * k * c * c + c) - n * (9 * c * c + c)


def test_experiment_networks_leave_the_registry():
    from cnnlineage.experiments.nets import experiment_models
    from cnnlineage.registry import list_models

    before = list_models()
    with experiment_models():
        assert "exp_convnet" in list_models()
    assert list_models() == before
