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
        ({"data": {"image_size": 100_000_000}}, "data.image_size must be at most 4096 pixels a side"),
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


def test_yaml_bombs_duplicates_and_python_tags_are_refused(tmp_path):
    import time

    from cnnlineage.train.config import yaml_load

    bomb = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{c}: &{c} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n"
        for p, c in zip("abcdefgh", "bcdefghi")
    )
    recipe = tmp_path / "bomb.yaml"
    recipe.write_text("model:\n  kwargs:\n    " + bomb.replace("\n", "\n    ").rstrip() + "\n")
    assert len(recipe.read_bytes()) < 500
    t = time.perf_counter()
    with pytest.raises(ConfigError, match=r"bomb.yaml: YAML anchors and aliases .* are not allowed"):
        load_config(recipe)
    assert time.perf_counter() - t < 5  # refused while parsing, not after expanding 9**9 items
    with pytest.raises(ConfigError, match=r"duplicate key 'lr' \(line 3\)"):
        yaml_load("optim:\n  lr: 0.1\n  lr: 0.2\n", where="r.yaml")
    with pytest.raises(ConfigError, match="python/... tags are refused"):
        yaml_load("!!python/object/apply:os.system ['true']", where="r.yaml")
    with pytest.raises(ConfigError, match="more than 10,000 items or characters"):
        apply_overrides(TrainConfig(), ["model.kwargs.x=" + "a" * 20_000])
    with pytest.raises(ConfigError, match="nest deeper than 16 levels"):
        apply_overrides(TrainConfig(), ["model.kwargs.x=" + "[" * 20 + "]" * 20])


@pytest.mark.parametrize(
    "override,message",
    [
        ("augment.mixup_alpha=nan", "augment.mixup_alpha: expected a finite number, got 'nan'"),
        ("optim.lr=inf", "optim.lr: expected a finite number"),
        ("optim.eps=0", r"optim.eps must be > 0"),
        ("data.batch_size=1000000000", "data.batch_size and data.eval_batch_size must be at most 1,048,576"),
        ("threads=100000", "threads must be at most 1024"),
        (f"seed={2**70}", r"seed must be below 2\*\*63"),
        (
            "augment.hflip=yes",
            r"augment.hflip: expected a number \(e.g. 0.5\), got the boolean true \(from --set augment.hflip=yes\)",
        ),
    ],
)
def test_silently_accepted_values_are_refused_with_a_reason(override, message):
    with pytest.raises(ConfigError, match=message):
        apply_overrides(TrainConfig(), [override])


def test_booleans_accept_yes_no_on_off():
    cfg = apply_overrides(
        TrainConfig(), ["optim.nesterov=yes", "run.plots=off", "run.tensorboard=No", "data.download=on"]
    )
    assert (cfg.optim.nesterov, cfg.run.plots, cfg.run.tensorboard, cfg.data.download) == (
        True,
        False,
        False,
        True,
    )
    cfg = apply_overrides(TrainConfig(), ['run.plots="false"', "epochs=1e2"])  # quoted words and 1e2 too
    assert cfg.run.plots is False and cfg.epochs == 100


def test_recipes_are_chosen_per_model_and_data_set():
    from cnnlineage.train.run import choose_recipe, resolve_config

    assert choose_recipe("resnet20", None) == ("resnet20", "the shipped recipe for resnet20 on cifar10")
    assert choose_recipe("resnet20", "shapes10") == (
        "shapes10",
        "the shipped recipe for shapes10; resnet20's own recipe is for cifar10",
    )
    name, why = choose_recipe("lenet5", "digits")
    assert name == "lenet5" and "made for mnist5k" in why and "may not suit it" in why
    assert choose_recipe("alexnet", "digits") == (
        None,
        "the defaults: no shipped recipe for alexnet or digits",
    )
    cfg = resolve_config("resnet20", overrides=['data.name="shapes10"'])
    assert (cfg.model.name, cfg.data.name, cfg.augment.crop_padding, cfg.optim.lr) == (
        "resnet20",
        "shapes10",
        2,
        0.1,
    )
    assert cfg.run.recipe == "shapes10: the shipped recipe for shapes10; resnet20's own recipe is for cifar10"


def test_resume_refuses_a_python_tagged_config(tmp_path):
    from cnnlineage.train.run import resolve_config

    (tmp_path / "config.yaml").write_text("!!python/object/apply:os.system ['echo ran > x']\n")
    with pytest.raises(ConfigError, match=r"config.yaml: not valid YAML \(python/... tags are refused"):
        resolve_config(None, resume=str(tmp_path))
