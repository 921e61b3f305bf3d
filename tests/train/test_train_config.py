"""The config schema: recipes load, overrides apply, and bad keys, types or values are rejected early."""

from __future__ import annotations

import pytest

from cnnlineage.train.config import (
    ConfigError,
    TrainConfig,
    apply_overrides,
    config_from_dict,
    config_to_dict,
    list_recipes,
    load_config,
    valid_keys,
)


def test_every_shipped_recipe_loads_and_names_a_registered_model():
    import cnnlineage

    names = list_recipes()
    assert "lenet5" in names
    for name in names:
        cfg = load_config(name)
        assert cfg.model.name in cnnlineage.list_models(), name


def test_overrides_parse_yaml_values():
    cfg = apply_overrides(TrainConfig(), ["optim.lr=1e-3", "schedule.milestones=[30, 60]", "optim.nesterov=true",
                                         "model.kwargs.pad_input=true", "epochs=3", "data.name=digits"])  # fmt: skip
    assert cfg.optim.lr == 0.001 and cfg.schedule.milestones == [30, 60] and cfg.optim.nesterov
    assert cfg.model.kwargs == {"pad_input": True} and cfg.epochs == 3 and cfg.data.name == "digits"
    assert TrainConfig().optim.lr == 0.1  # the base is not modified


def test_unknown_key_lists_the_valid_ones():
    with pytest.raises(ConfigError) as e:
        apply_overrides(TrainConfig(), ["optim.learning_rate=0.1"])
    assert "unknown key 'optim.learning_rate'; did you mean optim.lr?" in str(e.value)
    with pytest.raises(
        ConfigError,
        match=r"unknown key 'optim.momentom'; did you mean optim.momentum\? valid keys in optim: name, lr, momentum",
    ):
        config_from_dict({"optim": {"momentom": 0.9}})
    with pytest.raises(
        ConfigError, match="unknown key 'epoch'; did you mean epochs\\? valid keys: model, data"
    ):
        config_from_dict({"epoch": 3})


@pytest.mark.parametrize(
    "values,message",
    [
        ({"epochs": "ten"}, "epochs: expected an integer, got 'ten'"),
        ({"optim": {"lr": "fast"}}, "optim.lr: expected a number"),
        (
            {"optim": {"nesterov": 1}},
            r"optim.nesterov: expected a boolean \(true/false, yes/no, on/off\), got 1",
        ),
        ({"epochs": 0}, "epochs must be >= 1"),
        ({"optim": {"lr": -0.1}}, "optim.lr must be > 0"),
        ({"augment": {"hflip": 1.5}}, "augment.hflip must be a probability"),
        ({"data": {"name": "imagenet"}}, "data.name must be one of mnist5k"),
        ({"schedule": {"name": "linear"}}, "schedule.name must be one of none, step"),
        ({"schedule": {"milestones": [60, 30]}}, "milestones must be increasing"),
        ({"optim": {"nesterov": True, "name": "adam"}}, "nesterov needs optim.name=sgd"),
        ({"amp": "fp8"}, "amp must be one of none, bf16, fp16"),
        ({"data": {"batch_size": 0}}, "data.batch_size must be >= 1"),
        ({"schedule": {"warmup_epochs": 12}, "epochs": 10}, "warmup_epochs .* must be shorter than epochs"),
        ({"device": "tpu"}, "device must be auto, cpu"),
    ],
)
def test_impossible_values_are_rejected(values, message):
    with pytest.raises(ConfigError, match=message):
        config_from_dict(values)


def test_yaml_file_roundtrip_and_bad_file(tmp_path):
    import yaml

    cfg = apply_overrides(TrainConfig(), ["optim.lr=0.05", "augment.crop_padding=4"])
    p = tmp_path / "r.yaml"
    p.write_text(yaml.safe_dump(config_to_dict(cfg)))
    assert load_config(p) == cfg
    p.write_text("optim:\n  lr: [0.1\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(p)
    with pytest.raises(ConfigError, match="no shipped recipe of that name; shipped: .*lenet5"):
        load_config("no_such_recipe")


def test_valid_keys_cover_every_field():
    keys = valid_keys()
    assert "optim.lr" in keys and "run.checkpoint_every_steps" in keys and "seed" in keys
    assert len(keys) == len(set(keys)) > 60
