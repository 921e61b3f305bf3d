import pytest
import torch

import cnnlineage
from cnnlineage.registry import ModelCard, register_model


def test_list_models_pattern_and_order():
    names = cnnlineage.list_models()
    assert "lenet5" in names
    assert cnnlineage.list_models("lenet*") == ["lenet1", "lenet4", "lenet5", "lenet5_modern"]
    assert cnnlineage.list_models("no_such_*") == []
    years = [cnnlineage.model_info(n).year for n in names]
    assert years == sorted(years), "list_models is in lineage (year) order"


def test_model_info_card():
    card = cnnlineage.model_info("lenet5")
    assert isinstance(card, ModelCard)
    assert (card.year, card.first_author, card.input_size) == (1998, "LeCun", (1, 32, 32))
    assert card.to_dict()["input_size"] == [1, 32, 32]


def test_unknown_name_suggests_close_names():
    with pytest.raises(ValueError, match="lenet5"):
        cnnlineage.create_model("lenet")
    with pytest.raises(ValueError, match="unknown model"):
        cnnlineage.model_info("totally_unknown")


def test_registering_twice_raises():
    with pytest.raises(ValueError, match="already registered"):

        @register_model(
            name="lenet5",
            family="x",
            year=1,
            paper="",
            authors=("",),
            venue="",
            venue_year=1,
            key_idea="",
            input_size=(1, 1, 1),
            ref_params=0,
            ref_params_source="",
        )
        def _dup():  # pragma: no cover - never built
            raise AssertionError


def test_create_model_rejects_unknown_variant_argument():
    with pytest.raises(ValueError, match="accepts"):
        cnnlineage.create_model("lenet5", widht_mult=2)


def test_create_model_num_classes_and_in_chans():
    m = cnnlineage.create_model("lenet5_modern", num_classes=3, in_chans=3)
    assert m(torch.randn(2, 3, 32, 32)).shape == (2, 3)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"num_classes": True}, "num_classes must be an integer >= 0, got bool True"),
        ({"num_classes": -1}, "num_classes must be an integer >= 0"),
        ({"num_classes": 2.0}, "num_classes must be an integer >= 0, got float"),
        ({"in_chans": 0}, "in_chans must be an integer >= 1"),
    ],
)
def test_create_model_checks_its_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        cnnlineage.create_model("lenet5", **kwargs)


def test_numpy_integers_are_integers():
    import numpy as np

    assert cnnlineage.create_model("lenet5", num_classes=np.int64(3)).num_classes == 3


def test_create_model_needs_a_name():
    with pytest.raises(ValueError, match="model name must be a string such as 'resnet18', got NoneType None"):
        cnnlineage.create_model(None)


def test_pretrained_points_at_the_weight_loaders():
    with pytest.raises(ValueError) as info:
        cnnlineage.create_model("resnet50", pretrained=True)
    msg = str(info.value)
    assert "never downloads weights" in msg and "cnnlineage.weights.load_torchvision" in msg
    assert "torchvision's resnet50" in msg and "unexpected keyword" not in msg
    with pytest.raises(ValueError, match="no torchvision or timm counterpart"):
        cnnlineage.create_model("lenet5", pretrained=True)


def test_unknown_argument_is_named_once():
    with pytest.raises(ValueError) as info:
        cnnlineage.create_model("lenet5", nonsense=1)
    assert (
        str(info.value)
        == "lenet5 does not take the argument 'nonsense'; its builder accepts: num_classes, in_chans, pad_input"
    )


def test_names_and_families_ignore_case():
    assert cnnlineage.create_model("LeNet5").model_name == "lenet5"
    assert cnnlineage.list_models("LENET*") == ["lenet1", "lenet4", "lenet5", "lenet5_modern"]
    assert cnnlineage.list_models(family="VGG")[0] == "vgg11"
    with pytest.raises(ValueError, match="no model family 'resnett'; did you mean resnet"):
        cnnlineage.list_models(family="resnett")
