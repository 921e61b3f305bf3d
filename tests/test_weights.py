"""Weight compatibility: every model that torchvision or timm has loads their state_dict and computes the same."""

from __future__ import annotations

import pytest
import torch

import cnnlineage
from cnnlineage.weights import StateDictMismatchError, load_state_dict_checked, load_timm, load_torchvision

TV = [n for n in cnnlineage.list_models() if cnnlineage.model_info(n).torchvision]
TIMM = [n for n in cnnlineage.list_models() if cnnlineage.model_info(n).timm]


def _main(out):
    return out[0] if isinstance(out, (tuple, list)) else out


def _compare(ours, ref, card):
    n_ours = sum(p.numel() for p in ours.parameters())
    n_ref = sum(p.numel() for p in ref.parameters())
    assert n_ours == n_ref, f"{card.name}: {n_ours:,} parameters, reference {n_ref:,}"
    ours.eval()
    ref.eval()
    c, h, w = card.input_size
    if not getattr(ours, "fixed_size", False):
        # outputs are compared on a 224x224 input at most: as conclusive as EfficientNet-B7's 600x600, 7x cheaper;
        # networks over 40M parameters at 112x112 where the reference takes it (torchvision's ViT takes only 224)
        side = 112 if n_ours > 40_000_000 else 224
        h, w = min(h, side), min(w, side)
    x = torch.randn(2, c, h, w)
    with torch.no_grad():
        try:
            b = _main(ref(x))
        except AssertionError:
            x = torch.randn(2, *card.input_size)
            b = _main(ref(x))
        a = _main(ours(x))
    assert a.shape == b.shape
    diff = (a - b).abs().max().item()
    assert diff <= 1e-4, f"{card.name}: max abs difference {diff:.3g} after loading the reference weights"


@pytest.mark.parametrize("name", TV)
def test_torchvision_parity(name):
    import torchvision

    card = cnnlineage.model_info(name)
    ref = torchvision.models.get_model(card.torchvision, weights=None)
    ours = cnnlineage.create_model(name)
    load_torchvision(ours, ref.state_dict())
    _compare(ours, ref, card)


@pytest.mark.parametrize("name", TIMM)
def test_timm_parity(name):
    timm = pytest.importorskip("timm")
    card = cnnlineage.model_info(name)
    ref = timm.create_model(card.timm, pretrained=False)
    ours = cnnlineage.create_model(name)
    load_timm(ours, ref.state_dict())
    _compare(ours, ref, card)


def test_mismatched_state_dict_lists_keys_and_loads_nothing():
    model = cnnlineage.create_model("lenet5_modern")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    sd = {k: torch.zeros_like(v) for k, v in model.state_dict().items()}
    sd.pop("c1.weight")
    sd["extra.weight"] = torch.zeros(3)
    sd["fc.weight"] = torch.zeros(5, 84)
    with pytest.raises(StateDictMismatchError) as info:
        load_state_dict_checked(model, sd)
    msg = str(info.value)
    assert "c1.weight" in msg and "extra.weight" in msg and "fc.weight" in msg
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items()), (
        "a failed load changed the model"
    )


def test_torchvision_state_dict_of_other_architecture_is_refused():
    import torchvision

    model = cnnlineage.create_model("lenet5")
    with pytest.raises(StateDictMismatchError, match="missing keys"):
        load_torchvision(model, torchvision.models.alexnet(weights=None).state_dict())


def test_a_local_weights_file_loads_with_weights_only(tmp_path):
    import torchvision

    ref = torchvision.models.resnet18(weights=None)
    path = tmp_path / "resnet18.pth"
    torch.save(ref.state_dict(), path)
    ours = load_torchvision(cnnlineage.create_model("resnet18"), path)
    assert all(torch.equal(a, b) for a, b in zip(ours.state_dict().values(), ref.state_dict().values()))
    timm_path = tmp_path / "wrapped.pth"
    torch.save({"state_dict": ref.state_dict()}, timm_path)  # a wrapped file, as training scripts write
    load_timm(cnnlineage.create_model("resnet18"), str(timm_path))
    pickled = tmp_path / "model.pth"
    torch.save(ref, pickled)  # a whole pickled model: would import and build classes when loaded
    with pytest.raises(
        ValueError, match="refusing to load .*torchvision.models.resnet.ResNet.*weights_only=True"
    ):
        load_torchvision(cnnlineage.create_model("resnet18"), pickled)
    with pytest.raises(ValueError, match="does not exist"):
        load_torchvision(cnnlineage.create_model("resnet18"), tmp_path / "missing.pth")


def test_a_model_object_is_refused_with_what_to_pass():
    import torchvision

    with pytest.raises(ValueError, match=r"got a model object \(ResNet\); pass its .state_dict\(\)"):
        load_torchvision(cnnlineage.create_model("resnet18"), torchvision.models.resnet18(weights=None))
    with pytest.raises(ValueError, match="got list"):
        load_torchvision(cnnlineage.create_model("resnet18"), [1, 2])


def test_another_class_count_hints_at_reset_classifier():
    import torchvision

    sd = torchvision.models.resnet18(weights=None).state_dict()
    with pytest.raises(StateDictMismatchError) as info:
        load_torchvision(cnnlineage.create_model("resnet18", num_classes=10), sd)
    msg = str(info.value)
    assert "only the classifier differs: the state_dict has 1000 classes, the model 10" in msg
    assert "num_classes=1000" in msg and "reset_classifier(10)" in msg
    model = load_torchvision(cnnlineage.create_model("resnet18", num_classes=1000), sd)  # the hint works
    model.reset_classifier(10)
    assert model(torch.randn(1, 3, 64, 64)).shape == (1, 10)
