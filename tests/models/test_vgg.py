"""VGG: the configuration table is the paper's Table 1, and the parameter counts its Table 2."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn

import cnnlineage

# Simonyan & Zisserman, Table 1, written column by column as in the paper
# ("conv<receptive field size>-<number of channels>").
_A = ["conv3-64", "maxpool", "conv3-128", "maxpool", "conv3-256", "conv3-256", "maxpool",
      "conv3-512", "conv3-512", "maxpool", "conv3-512", "conv3-512", "maxpool"]  # fmt: skip
_B = ["conv3-64", "conv3-64", "maxpool", "conv3-128", "conv3-128", "maxpool", "conv3-256", "conv3-256",
      "maxpool", "conv3-512", "conv3-512", "maxpool", "conv3-512", "conv3-512", "maxpool"]  # fmt: skip
_D = ["conv3-64", "conv3-64", "maxpool", "conv3-128", "conv3-128", "maxpool",
      "conv3-256", "conv3-256", "conv3-256", "maxpool", "conv3-512", "conv3-512", "conv3-512", "maxpool",
      "conv3-512", "conv3-512", "conv3-512", "maxpool"]  # fmt: skip
_E = ["conv3-64", "conv3-64", "maxpool", "conv3-128", "conv3-128", "maxpool",
      "conv3-256", "conv3-256", "conv3-256", "conv3-256", "maxpool",
      "conv3-512", "conv3-512", "conv3-512", "conv3-512", "maxpool",
      "conv3-512", "conv3-512", "conv3-512", "conv3-512", "maxpool"]  # fmt: skip
_A_LRN = ["conv3-64", "LRN", *_A[1:]]
_C = ["conv3-64", "conv3-64", "maxpool", "conv3-128", "conv3-128", "maxpool",
      "conv3-256", "conv3-256", "conv1-256", "maxpool", "conv3-512", "conv3-512", "conv1-512", "maxpool",
      "conv3-512", "conv3-512", "conv1-512", "maxpool"]  # fmt: skip
_HEAD = ["FC-4096", "FC-4096", "FC-1000"]
TABLE_1 = {"vgg11": (11, _A), "vgg13": (13, _B), "vgg16": (16, _D), "vgg19": (19, _E)}
PAPER_ONLY = {"vgg11_lrn": (11, _A_LRN), "vgg16_c": (16, _C)}
# Table 2: number of parameters (in millions)
TABLE_2 = {"vgg11": 133, "vgg11_lrn": 133, "vgg13": 133, "vgg16_c": 134, "vgg16": 138, "vgg19": 144}


def _meta_model(name):
    # parameters on the meta device: the structure and counts without allocating 130M floats
    with torch.device("meta"):
        return cnnlineage.create_model(name)


def _describe(model):
    rows = []
    for m in model.features:
        if isinstance(m, nn.Conv2d):
            k = m.kernel_size[0]
            assert m.stride == (1, 1) and m.padding == (k // 2, k // 2)  # §2.1: stride 1, resolution kept
            rows.append(f"conv{k}-{m.out_channels}")
        elif isinstance(m, nn.LocalResponseNorm):
            assert (m.size, m.alpha / m.size, m.beta, m.k) == (5, 1e-4, 0.75, 2.0)  # Krizhevsky 2012 §3.3
            rows.append("LRN")
        elif isinstance(m, nn.MaxPool2d):
            assert (m.kernel_size, m.stride) == (2, 2)  # §2.1: 2x2 window, stride 2
            rows.append("maxpool")
    return rows + [f"FC-{m.out_features}" for m in model.classifier if isinstance(m, nn.Linear)]


@pytest.mark.parametrize("bn", [False, True], ids=["plain", "bn"])
@pytest.mark.parametrize("name", list(TABLE_1))
def test_configuration_is_table_1(name, bn):
    depth, column = TABLE_1[name]
    model = _meta_model(name + ("_bn" if bn else ""))
    assert _describe(model) == column + _HEAD
    assert sum(r.startswith(("conv", "FC")) for r in column + _HEAD) == depth  # the "weight layers" header
    n_bn = sum(isinstance(m, nn.BatchNorm2d) for m in model.features)
    assert n_bn == (depth - 3 if bn else 0)  # BatchNorm after every convolution in the _bn variants


@pytest.mark.parametrize("name", list(PAPER_ONLY))
def test_paper_only_configurations_are_table_1(name):
    depth, column = PAPER_ONLY[name]
    assert _describe(_meta_model(name)) == column + _HEAD
    assert sum(r.startswith(("conv", "FC")) for r in column + _HEAD) == depth


def _hand_count(column) -> int:
    # from the table's text alone: conv<k>-<c> has k·k·c_in·c + c weights, FC 7·7·512 → 4096 → 4096 → 1000
    total, c_in = 0, 3
    for row in column:
        if row.startswith("conv"):
            k, c = (int(v) for v in row[4:].split("-"))
            total, c_in = total + k * k * c_in * c + c, c
    return total + (25088 * 4096 + 4096) + (4096 * 4096 + 4096) + (4096 * 1000 + 1000)


@pytest.mark.parametrize("name", list(PAPER_ONLY))
def test_paper_only_cards_are_hand_counts(name):
    assert cnnlineage.model_info(name).ref_params == _hand_count(PAPER_ONLY[name][1])


@pytest.mark.parametrize("name", list(TABLE_2))
def test_parameter_counts_are_table_2(name):
    n = sum(p.numel() for p in _meta_model(name).parameters())
    assert round(n / 1e6) == TABLE_2[name]
    assert n == cnnlineage.model_info(name).ref_params


@pytest.mark.parametrize("name", [f"vgg{d}{s}" for d in (11, 13, 16, 19) for s in ("", "_bn")])
def test_cards_match_torchvision_metadata(name):
    from torchvision.models import get_model_weights

    meta = get_model_weights(name).DEFAULT.meta
    card = cnnlineage.model_info(name)
    assert (card.ref_params, card.torchvision) == (meta["num_params"], name)
    assert card.ref_top1 == meta["_metrics"]["ImageNet-1K"]["acc@1"]


def test_min_size_is_32_and_true():
    model = _meta_model("vgg11")  # meta tensors check shapes as real ones do
    assert model.min_size == (32, 32)
    with torch.device("meta"):
        assert model(torch.randn(1, 3, 32, 32)).shape == (1, 1000)
        with pytest.raises(RuntimeError):  # five 2x2 pools take 31 pixels to 0
            model.forward_features(torch.randn(1, 3, 31, 31))
