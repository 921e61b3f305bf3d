"""GoogLeNet and Inception v3: the papers' tables, the auxiliary classifiers, torchvision's layout."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn

import cnnlineage
from cnnlineage.models.googlenet import tf_input_transform

# Table 1 of Szegedy et al. 2014: output size (H, W, C) of the stem layers and each Inception module.
GOOGLENET_TABLE1 = {
    "conv1": (112, 112, 64),
    "maxpool1": (56, 56, 64),
    "conv3": (56, 56, 192),
    "maxpool2": (28, 28, 192),
    "inception3a": (28, 28, 256),
    "inception3b": (28, 28, 480),
    "maxpool3": (14, 14, 480),
    "inception4a": (14, 14, 512),
    "inception4b": (14, 14, 512),
    "inception4c": (14, 14, 512),
    "inception4d": (14, 14, 528),
    "inception4e": (14, 14, 832),
    "maxpool4": (7, 7, 832),
    "inception5a": (7, 7, 832),
    "inception5b": (7, 7, 1024),
}
# Table 1's "#5x5 reduce" and "#5x5" columns, 3a to 5b
TABLE1_5X5 = [(16, 32), (32, 96), (16, 48), (24, 64), (24, 64), (32, 64), (32, 128), (32, 128), (48, 128)]

# Table 1 of Szegedy et al. 2015 (Inception v3): grid and width after each group of modules.
INCEPTION_V3_TABLE1 = {
    "Mixed_5d": (35, 35, 288),  # 3 x Inception (Fig. 5)
    "Mixed_6e": (17, 17, 768),  # 5 x Inception (Fig. 6)
    "Mixed_7a": (8, 8, 1280),  # grid reduction
    "Mixed_7c": (8, 8, 2048),  # 2 x Inception (Fig. 7)
}


def _shapes(model: nn.Module, names, x: torch.Tensor) -> dict[str, tuple[int, int, int]]:
    seen = {}
    hooks = [
        model.get_submodule(n).register_forward_hook(
            lambda m, i, o, n=n: seen.__setitem__(n, (o.shape[2], o.shape[3], o.shape[1]))
        )
        for n in names
    ]
    with torch.no_grad():
        model(x)
    for h in hooks:
        h.remove()
    return seen


@pytest.fixture(scope="module")
def googlenet10():
    return cnnlineage.create_model("googlenet", num_classes=10)


@pytest.fixture(scope="module")
def inception10():
    return cnnlineage.create_model("inception_v3", num_classes=10)


def test_googlenet_sizes_follow_table1(googlenet10):
    model = googlenet10.eval()
    assert _shapes(model, GOOGLENET_TABLE1, torch.randn(1, 3, 224, 224)) == GOOGLENET_TABLE1


def test_googlenet_train_returns_main_then_aux2_then_aux1(googlenet10):
    model = googlenet10
    assert model.aux_loss_weight == 0.3 and "0.3" in model.card.notes
    heads = {}
    hooks = [
        getattr(model, h).register_forward_hook(lambda m, i, o, h=h: heads.__setitem__(h, o))
        for h in ("aux1", "aux2")
    ]
    model.train()
    out = model(torch.randn(2, 3, 64, 64))
    for h in hooks:
        h.remove()
    assert isinstance(out, tuple) and len(out) == 3
    assert all(o.shape == (2, 10) for o in out)
    assert out[1] is heads["aux2"] and out[2] is heads["aux1"]
    # the heads read 4a (512 channels) and 4d (528), as §5 places them
    assert model.aux1.conv.conv.in_channels == 512 and model.aux2.conv.conv.in_channels == 528
    model.eval()
    with torch.no_grad():
        logits = model(torch.randn(2, 3, 64, 64))
    assert isinstance(logits, torch.Tensor) and logits.shape == (2, 10)


def test_googlenet_reset_classifier_resets_the_aux_heads_too():
    model = cnnlineage.create_model("googlenet", num_classes=10)
    model.reset_classifier(7)
    out = model.train()(torch.randn(2, 3, 32, 32))
    assert [o.shape for o in out] == [(2, 7)] * 3


def test_googlenet_without_aux_has_no_aux_keys_and_returns_logits():
    model = cnnlineage.create_model("googlenet", num_classes=10, aux_logits=False)
    assert not any(k.startswith("aux") for k in model.state_dict())
    out = model.train()(torch.randn(2, 3, 32, 32))
    assert isinstance(out, torch.Tensor) and out.shape == (2, 10)


def test_googlenet_paper_variant_has_5x5_kernels_and_no_batchnorm(googlenet10):
    paper = cnnlineage.create_model("googlenet", num_classes=10, paper_5x5=True, batch_norm=False)
    assert paper.inception3a.branch3[1].conv.weight.shape == (32, 16, 5, 5)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in paper.modules())
    # 5x5 instead of 3x3: 16 more weights per (reduce, out) pair; no BN (2 per channel) but a conv bias (1)
    bn_channels = sum(m.num_features for m in googlenet10.modules() if isinstance(m, nn.BatchNorm2d))
    base = sum(p.numel() for p in googlenet10.parameters())
    extra_5x5 = 16 * sum(r * c for r, c in TABLE1_5X5)
    assert extra_5x5 == 380_928
    assert sum(p.numel() for p in paper.parameters()) == base + extra_5x5 - bn_channels
    assert paper.eval()(torch.randn(1, 3, 64, 64)).shape == (1, 10)


def test_cards_and_min_sizes_agree_with_torchvision_metadata(googlenet10, inception10):
    import torchvision

    meta = torchvision.models.get_model_weights("googlenet").DEFAULT.meta

    def aux_head(in_chs: int, classes: int = 1000) -> int:  # 1x1 conv + BN, FC 2048→1024, FC 1024→classes
        return in_chs * 128 + 2 * 128 + (2048 * 1024 + 1024) + (1024 * classes + classes)

    assert (aux_head(512), aux_head(528)) == (3_188_968, 3_191_016)
    card = cnnlineage.model_info("googlenet")
    assert card.ref_params == meta["num_params"]  # the inference network
    assert card.ref_params_train == meta["num_params"] + aux_head(512) + aux_head(528)
    assert card.ref_top1 == meta["_metrics"]["ImageNet-1K"]["acc@1"]
    assert googlenet10.min_size == tuple(meta["min_size"])
    v3 = torchvision.models.get_model_weights("inception_v3").DEFAULT.meta
    card = cnnlineage.model_info("inception_v3")
    # torchvision's v3 weights keep the auxiliary head, so its num_params is the training count;
    # the head (1x1 conv 768→128 + BN, 5x5 conv 128→768 + BN, FC 768→1000) by hand:
    v3_aux = 768 * 128 + 2 * 128 + 128 * 768 * 25 + 2 * 768 + 768 * 1000 + 1000
    assert card.ref_params_train == v3["num_params"] and card.ref_params == v3["num_params"] - v3_aux
    assert card.ref_top1 == v3["_metrics"]["ImageNet-1K"]["acc@1"]
    assert inception10.min_size == tuple(v3["min_size"])


@pytest.mark.parametrize("name", ["googlenet", "inception_v3"])
def test_state_dict_keys_in_torchvision_order(name):
    import torchvision

    with torch.device("meta"):  # structure only: no memory, no initialisation cost
        ref = torchvision.models.get_model(name, weights=None, init_weights=False)
        ours = cnnlineage.create_model(name)
    assert list(ours.state_dict()) == list(ref.state_dict())
    assert [v.shape for v in ours.state_dict().values()] == [v.shape for v in ref.state_dict().values()]


def test_inception_v3_grids_follow_table1_and_train_returns_logits_then_aux(inception10):
    model = inception10.eval()
    assert _shapes(model, INCEPTION_V3_TABLE1, torch.randn(1, 3, 299, 299)) == INCEPTION_V3_TABLE1
    assert model.aux_loss_weight == 0.4
    model.train()
    out = model(torch.randn(1, 3, 299, 299))  # one image: the aux head's 1x1 BatchNorm must cope
    assert isinstance(out, tuple) and len(out) == 2 and all(o.shape == (1, 10) for o in out)
    model.eval()
    with torch.no_grad():
        small = model(torch.randn(1, 3, 75, 75))  # torchvision's documented min_size
    assert isinstance(small, torch.Tensor) and small.shape == (1, 10)


def test_inception_v3_training_input_too_small_for_the_aux_head(inception10):
    model = inception10.eval()
    # at 298x298 the grid the aux head reads is 16x16, and its 5x5/3 pool + 5x5 conv need 17x17
    assert _shapes(model, ["Mixed_6e"], torch.randn(1, 3, 298, 298))["Mixed_6e"][:2] == (16, 16)
    with torch.no_grad():
        assert model.AuxLogits(torch.randn(1, 768, 17, 17)).shape == (1, 10)
        with pytest.raises(RuntimeError):
            model.AuxLogits(torch.randn(1, 768, 16, 16))
    with pytest.raises(ValueError, match="inception_v3.*299x299.*298x298"):
        model.train()(torch.randn(1, 3, 298, 298))
    model.eval()


def test_tf_input_transform_maps_imagenet_normalised_input_to_minus_one_one():
    raw = torch.rand(2, 3, 5, 5)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    torch.testing.assert_close(tf_input_transform((raw - mean) / std), (raw - 0.5) / 0.5)
    with pytest.raises(ValueError, match="transform_input"):
        cnnlineage.create_model("googlenet", in_chans=1, transform_input=True)
