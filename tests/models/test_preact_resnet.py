"""Pre-activation ResNets (He et al. 2016) and Wide ResNets (Zagoruyko & Komodakis 2016):
the papers' parameter tables, hand counts, layer counts and the pre-activation wiring."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn

import cnnlineage
from cnnlineage.models.preact_resnet import (
    CONFIGS,
    PreActBasic,
    PreActBottleneck,
    PreActResNet,
    preact_cifar_config,
    wrn_config,
)
from cnnlineage.weights import load_timm

# WRN paper, Table 4: (depth, widen factor) -> parameters as printed.
WRN_TABLE4 = {
    (40, 1): "0.6",
    (40, 2): "2.2",
    (40, 4): "8.9",
    (40, 8): "35.7",
    (28, 10): "36.5",
    (28, 12): "52.5",
    (22, 8): "17.2",
    (22, 10): "26.8",
    (16, 8): "11.0",
    (16, 10): "17.1",
}


def _n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _weights_only(model: nn.Module) -> int:
    return sum(
        p.numel() for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear)) for p in m.parameters()
    )


def _meta(cfg, **kwargs) -> PreActResNet:
    with torch.device("meta"):  # parameter shapes without allocating or initialising memory
        return PreActResNet(cfg, **kwargs)


def _rounds_to(count: int, printed: str) -> bool:
    return f"{count / 1e6:.{len(printed.split('.')[1])}f}" == printed


# ----------------------------------------------------------------------------- parameter counts
def test_wrn_28_10_hand_count():
    # N = (28-4)/6 = 4 units per stage, widths 160, 320, 640; each unit BN-conv3x3-BN-conv3x3,
    # the first unit of each stage with a bias-free 1x1 projection of the activated input.
    stem = 3 * 3 * 3 * 16
    s1 = (2 * 16 + 9 * 16 * 160 + 2 * 160 + 9 * 160 * 160 + 16 * 160) + 3 * (
        2 * 160 + 9 * 160 * 160 + 2 * 160 + 9 * 160 * 160
    )
    s2 = (2 * 160 + 9 * 160 * 320 + 2 * 320 + 9 * 320 * 320 + 160 * 320) + 3 * (2 * 320 + 9 * 320 * 320) * 2
    s3 = (2 * 320 + 9 * 320 * 640 + 2 * 640 + 9 * 640 * 640 + 320 * 640) + 3 * (2 * 640 + 9 * 640 * 640) * 2
    head = 2 * 640 + 640 * 10 + 10  # final BN + fc
    hand = stem + s1 + s2 + s3 + head
    assert hand == 36_479_194
    assert _n_params(_meta(wrn_config(28, 10))) == hand == cnnlineage.model_info("wrn_28_10").ref_params
    assert _rounds_to(hand, "36.5")  # the figure the paper prints


@pytest.mark.parametrize("depth_widen", sorted(WRN_TABLE4))
def test_wrn_table4(depth_widen):
    count = _n_params(_meta(wrn_config(*depth_widen)))
    assert _rounds_to(count, WRN_TABLE4[depth_widen]), (
        f"WRN-{depth_widen}: {count:,} vs {WRN_TABLE4[depth_widen]}M"
    )


def test_registered_wrns_match_table4():
    assert cnnlineage.model_info("wrn_16_8").ref_params == _n_params(_meta(wrn_config(16, 8)))
    assert _rounds_to(cnnlineage.model_info("wrn_16_8").ref_params, WRN_TABLE4[(16, 8)])
    assert _rounds_to(cnnlineage.model_info("wrn_28_10").ref_params, WRN_TABLE4[(28, 10)])


def _preact_cifar_hand_count(depth: int) -> int:
    # 9n+2 bottleneck network: stages of n units, widths (m, 4m) = (16, 64), (32, 128), (64, 256)
    n = (depth - 2) // 9
    total, prev = 3 * 3 * 3 * 16, 16
    for m in (16, 32, 64):
        first = 2 * prev + prev * m + 2 * m + 9 * m * m + 2 * m + m * 4 * m + prev * 4 * m  # with projection
        other = 2 * 4 * m + 4 * m * m + 2 * m + 9 * m * m + 2 * m + m * 4 * m  # = 17m² + 12m
        total += first + (n - 1) * other
        prev = 4 * m
    return total + 2 * 256 + 256 * 10 + 10


def test_preact_cifar_counts_and_table5():
    # He 2016, Table 5: ResNet-164 1.7M, ResNet-1001 10.2M
    c164 = _n_params(_meta(preact_cifar_config(164)))
    assert (
        c164
        == _preact_cifar_hand_count(164)
        == cnnlineage.model_info("preact_resnet164").ref_params
        == 1_703_258
    )
    assert _rounds_to(c164, "1.7")
    m1001 = _meta(preact_cifar_config(1001))
    c1001 = _n_params(m1001)
    assert c1001 == _preact_cifar_hand_count(1001) == cnnlineage.model_info("preact_resnet1001").ref_params
    # The paper's 10.2M is the convolution and fc weights; the BN scales and shifts make 10.3M.
    assert _rounds_to(_weights_only(m1001), "10.2") and _rounds_to(c1001, "10.3")
    assert _rounds_to(_weights_only(_meta(preact_cifar_config(164))), "1.7")


@pytest.mark.parametrize(
    "name, tv_name, projection_bn, narrower_first_unit_bn",
    [
        # torchvision's post-activation ResNet has BN after each conv; the pre-activation one has BN
        # before: the first unit of stages 2-4 normalises its input (C/2 channels), not its output.
        ("preact_resnet18", "resnet18", 2 * (128 + 256 + 512), 2 * (64 + 128 + 256)),
        ("preact_resnet34", "resnet34", 2 * (128 + 256 + 512), 2 * (64 + 128 + 256)),
        # bottleneck: every stage starts with a projection; norm1 sees the input, not the 4m output
        (
            "preact_resnet50",
            "resnet50",
            2 * (256 + 512 + 1024 + 2048),
            2 * ((256 - 64) + (512 - 256) + (1024 - 512) + (2048 - 1024)),
        ),
    ],
)
def test_imagenet_counts_from_torchvision_metadata(name, tv_name, projection_bn, narrower_first_unit_bn):
    import torchvision

    tv = torchvision.models.get_model_weights(tv_name).DEFAULT.meta["num_params"]
    cfg = CONFIGS[name]
    # pre-activation projections are bare 1x1 convolutions (no BN); no BN in the stem; one after the last unit
    stem_bn, final_bn = 2 * 64, 2 * cfg.widths[-1]
    expected = tv - projection_bn - narrower_first_unit_bn - stem_bn + final_bn
    assert cnnlineage.model_info(name).ref_params == expected == _n_params(_meta(cfg))


# ----------------------------------------------------------------------------- depth
@pytest.mark.parametrize("depth", [164, 1001])
def test_preact_cifar_has_9n_plus_2_layers(depth):
    model = _meta(preact_cifar_config(depth))
    layers = [
        n for n, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear)) and "downsample" not in n
    ]
    assert len(layers) == depth


@pytest.mark.parametrize("depth, widen", [(16, 8), (28, 10)])
def test_wrn_depth_counts_every_convolution(depth, widen):
    # WRN-d-k: d = 6N + 4 convolutions: stem, 2 per unit and the three 1x1 projections
    model = _meta(wrn_config(depth, widen))
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == depth
    assert sum(1 for m in model.modules() if isinstance(m, PreActBasic)) == 3 * (depth - 4) // 6


# ----------------------------------------------------------------------------- pre-activation wiring
def _silence(block: nn.Module) -> nn.Module:
    last = block.conv3 if isinstance(block, PreActBottleneck) else block.conv2
    nn.init.zeros_(last.weight)  # residual branch now outputs exactly 0
    return block.eval()


@pytest.mark.parametrize("block_fn", [PreActBasic, PreActBottleneck])
def test_unit_output_is_identity_plus_branch(block_fn):
    x = torch.randn(2, 16, 6, 6)
    bn_eps = nn.BatchNorm2d(16).eps
    with torch.no_grad():
        identity = _silence(block_fn(16, 16))(x)
        shared = _silence(block_fn(16, 16, shared_preact=True))(x)
    assert torch.equal(identity, x)  # nothing after the addition: a clean identity path (Fig. 1b)
    assert torch.allclose(shared, torch.relu(x / (1 + bn_eps) ** 0.5))  # shortcut takes BN-ReLU(x)


def test_projection_takes_the_activated_input():
    block = _silence(PreActBasic(8, 16, 2))
    x = torch.randn(2, 8, 6, 6)
    with torch.no_grad():
        pre = block.act1(block.norm1(x))
        assert torch.equal(block(x), block.downsample(pre))


def test_first_unit_shares_its_preactivation_others_do_not():
    model = _meta(CONFIGS["preact_resnet18"])
    units = [u for stage in model.stages for u in stage]
    assert units[0].shared_preact and units[0].downsample is None  # Appendix: activate before splitting
    assert [u.shared_preact for u in units[1:]] == [u.downsample is not None for u in units[1:]]


def test_stride_placement():
    cifar = _meta(preact_cifar_config(164))
    assert cifar.stages[1][0].conv1.stride == (2, 2) and cifar.stages[1][0].conv2.stride == (1, 1)
    imagenet = _meta(CONFIGS["preact_resnet50"])
    assert imagenet.stages[1][0].conv1.stride == (1, 1) and imagenet.stages[1][0].conv2.stride == (2, 2)


def test_preact_resnet18_is_timm_resnetv2_18_up_to_the_first_shortcut():
    timm = pytest.importorskip("timm")
    ref = timm.create_model("resnetv2_18", pretrained=False).eval()
    ours = cnnlineage.create_model("preact_resnet18")
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        # make the first unit's BN-ReLU an identity on non-negative input: then sharing it or not is the same
        ref.stem.conv.weight.abs_()
        bn = ref.stages[0].blocks[0].norm1
        bn.running_var.fill_(1.0 - bn.eps)
        load_timm(ours, ref.state_dict())  # every key and shape fits
        ours.eval()
        a, b = ours(x), ref(x)
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-4 * b.abs().max().item())
        # with a BN that shifts, timm's raw shortcut and the paper's activated shortcut part ways
        bn.running_mean.fill_(0.5)
        load_timm(ours, ref.state_dict())
        assert not torch.allclose(ours(x), ref(x), rtol=1e-3, atol=1e-3 * b.abs().max().item())


# ----------------------------------------------------------------------------- options
def test_wrn_dropout_between_convolutions():
    cfg = wrn_config(10, 1)
    model = PreActResNet(cfg, drop_rate=0.3)
    drops = [m for m in model.modules() if isinstance(m, nn.Dropout)]
    assert len(drops) == sum(cfg.depths) and all(d.p == 0.3 for d in drops)
    assert isinstance(model.stages[0][0].drop, nn.Dropout)
    plain = PreActResNet(cfg)
    plain.load_state_dict(model.state_dict())  # dropout adds no parameters
    x = torch.randn(2, 3, 32, 32)
    model.eval()
    plain.eval()
    with torch.no_grad():
        assert torch.equal(model(x), plain(x))
        model.train()
        assert not torch.equal(model(x), model(x))
    assert cnnlineage.create_model("wrn_16_8", drop_rate=0.3).stages[0][0].drop.p == 0.3


def test_bad_configs_are_refused():
    with pytest.raises(ValueError, match="6n\\+4"):
        wrn_config(27, 10)
    with pytest.raises(ValueError, match="widen"):
        wrn_config(28, 0)
    with pytest.raises(ValueError, match="9n\\+2"):
        preact_cifar_config(165)
