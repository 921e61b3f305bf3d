import pytest
import torch

import cnnlineage
from cnnlineage.registry import ModelCard, register_model


def test_list_models_pattern_and_order():
    names = cnnlineage.list_models()
    assert "lenet5" in names
    assert cnnlineage.list_models("lenet*") == ["lenet5", "lenet5_modern"]
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
            first_author="",
            venue="",
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
