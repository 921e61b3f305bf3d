"""One parametrised walk over every registered model: the contract every family keeps.

For each model: the parameter count equals its card's reference count; bad inputs
(wrong channels, wrong rank, too small) give a ValueError naming the model; the smallest
size it claims to take works; the default input size runs (on the meta device, shapes
only) and ``feature_info`` names modules whose outputs there have the stated channels and
reduction; and forward and backward run for real at the default size, capped at 64x64.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn as nn

import cnnlineage
from cnnlineage.models._base import LineageModel, count_params

ALL = cnnlineage.list_models()
# networks over 40M parameters cost 5-20 s each here (building and initialising them dominates): marked slow,
# so `-m "not slow"` gives a quick walk; a full run still checks them
ALL_MARKED = [
    pytest.param(n, marks=pytest.mark.slow) if cnnlineage.model_info(n).ref_params > 40_000_000 else n
    for n in ALL
]
# the real forward + backward runs at the default size up to this side (the meta pass checks the default size)
_REAL_SIDE = 64


def _first(out):
    return out[0] if isinstance(out, (tuple, list)) else out


def _loss(out):
    if isinstance(out, (tuple, list)):
        return sum(o.float().pow(2).mean() for o in out if o is not None)
    return out.float().pow(2).mean()


def test_registry_is_populated():
    assert len(ALL) >= 2
    assert len(set(ALL)) == len(ALL)


@pytest.mark.parametrize("name", ALL_MARKED)
def test_model_contract(name):
    card = cnnlineage.model_info(name)
    model = cnnlineage.create_model(name)
    assert isinstance(model, LineageModel), f"{name} does not derive from LineageModel"
    assert model.model_name == name and model.card is card

    # parameter counts equal the card's reference counts, exactly: the inference network, and with
    # training-only heads (auxiliary classifiers) where the model has them
    n_params = count_params(model)
    assert n_params == card.ref_params, f"{name}: {n_params:,} parameters, card says {card.ref_params:,}"
    n_train = sum(p.numel() for p in model.parameters())
    assert n_train == (card.ref_params_train or card.ref_params), f"{name}: {n_train:,} with training heads"
    assert model.num_classes == card.num_classes
    assert tuple(model.input_size) == tuple(card.input_size)

    c, h, w = card.input_size
    # bad input: wrong channels, wrong rank, too small -> ValueError naming the model
    with pytest.raises(ValueError, match=name):
        model(torch.randn(1, c + 1, h, w))
    with pytest.raises(ValueError, match=name):
        model(torch.randn(c, h, w))
    if model.fixed_size:
        with pytest.raises(ValueError, match=name):
            model(torch.randn(1, c, h + 1, w + 1))
    else:
        mh, mw = model.min_size
        if mh > 1:
            with pytest.raises(ValueError, match=name):
                model(torch.randn(1, c, mh - 1, mw))
        # the smallest size the model claims to take does work
        model.eval()
        with torch.no_grad():
            m = model.size_multiple
            sh, sw = math.ceil(mh / m) * m, math.ceil(mw / m) * m
            out = _first(model(torch.randn(1, c, sh, sw)))
        assert out.shape == (1, card.num_classes)

    # forward + backward for real at the default size up to _REAL_SIDE (larger inputs run the same code on
    # more pixels; EfficientNet-B7 at 600x600 would cost 40 s), then the default size on the meta device
    # (shapes only, no arithmetic), recording the feature_info outputs
    model.train()
    batch = 2 if h * w <= 64 * 64 else 1
    rh, rw = h, w
    if not model.fixed_size and h * w > _REAL_SIDE**2:
        m = model.size_multiple
        side = max(_REAL_SIDE, getattr(model, "aux_min_size", 0), *model.min_size)
        rh = rw = math.ceil(side / m) * m
    real_batch = (
        2 if rh * rw <= 128 * 128 else 1
    )  # two images: BatchNorm on 1x1 maps needs more than one value
    out = model(torch.randn(real_batch, c, rh, rw))
    assert _first(out).shape == (real_batch, card.num_classes)
    _loss(out).backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None for g in grads), f"{name}: some parameters received no gradient"
    assert torch.isfinite(sum(g.float().sum() for g in grads)), f"{name}: non-finite gradients"

    assert model.feature_info, f"{name} has no feature_info"
    model.to("meta")
    seen: dict[str, torch.Size] = {}
    hooks = [
        model.get_submodule(info["module"]).register_forward_hook(
            lambda mod, inp, out, key=info["module"]: seen.__setitem__(key, _first(out).shape)
        )
        for info in model.feature_info
    ]
    out = model(torch.empty(batch, c, h, w, device="meta"))
    for hk in hooks:
        hk.remove()
    assert _first(out).shape == (batch, card.num_classes)

    prev_red = 0
    for info in model.feature_info:
        shape = seen[info["module"]]
        red = info["reduction"]
        assert red >= prev_red, f"{name}: feature_info reductions must not decrease"
        prev_red = red
        if len(shape) == 4:
            # channels first, or channels last where feature_info says layout="NHWC" (Swin's stages)
            nhwc = info.get("layout") == "NHWC"
            chs, out_h = (shape[3], shape[1]) if nhwc else (shape[1], shape[2])
            assert chs == info["num_chs"], (
                f"{name}.{info['module']}: {chs} channels, info says {info['num_chs']}"
            )
        else:  # token sequence (B, N, D)
            assert shape[-1] == info["num_chs"], (
                f"{name}.{info['module']}: width {shape[-1]}, info says {info['num_chs']}"
            )
            continue
        # the stated reduction is the true scale: the output is no larger than H/r, and larger than H/(2r)
        assert out_h <= math.ceil(h / red), (
            f"{name}.{info['module']}: {out_h} rows at input {h}, reduction {red}"
        )
        assert out_h > h / (2 * red), f"{name}.{info['module']}: {out_h} rows at input {h}, reduction {red}"


@pytest.mark.parametrize("name", ALL)
def test_reset_classifier(name):
    card = cnnlineage.model_info(name)
    if card.input_size[1] * card.input_size[2] > 64 * 64:
        pytest.skip("covered for small-input models; same code path for the rest")
    model = cnnlineage.create_model(name).eval()
    model.reset_classifier(7)
    c, h, w = card.input_size
    with torch.no_grad():
        assert _first(model(torch.randn(2, c, h, w))).shape == (2, 7)
        feats = model.forward_head(model.forward_features(torch.randn(2, c, h, w)), pre_logits=True)
    assert feats.dim() == 2 and feats.shape[0] == 2
    assert isinstance(model.get_classifier(), nn.Module)
