"""`cnnlineage pretrain`: resumable runs that resume bit-exactly, the checkpoint contract, refusals."""

from __future__ import annotations

import json

import pytest
import torch

from cnnlineage.cli import main
from cnnlineage.registry import create_model
from cnnlineage.ssl.pretrain import PretrainTrainer, method_defaults, pretrain_config
from cnnlineage.train import config_from_dict, load_checkpoint
from cnnlineage.train.checkpoint import backbone_state, is_pretraining_checkpoint
from cnnlineage.train.config import ConfigError

SMALL_HEADS = {"hidden_dim": 32, "proj_dim": 16, "out_dim": 32, "queue_size": 100, "local_crops": 2,
               "decoder_dim": 32, "decoder_depth": 1}  # fmt: skip


def _values(out_dir, method, *, model="lenet5_modern", kwargs=None, **top) -> dict:
    defaults = method_defaults(method, vit=model.startswith("vit"))
    values = {
        "model": {"name": model, "kwargs": kwargs if kwargs is not None else {"pad_input": True}},
        "data": {"name": "mnist5k", "train_subset": 128, "test_subset": 64, "batch_size": 64},
        "optim": defaults["optim"],
        "schedule": {"name": "cosine"},
        "ssl": {**defaults["ssl"], **SMALL_HEADS},
        "epochs": 1,
        "threads": 1,
        "run": {"out_dir": str(out_dir), "checkpoint_every_steps": 1, "progress": "none", "tensorboard": False,
                "plots": False},
    }  # fmt: skip
    values.update(top)
    return values


def _quiet(values, **kw) -> PretrainTrainer:
    return PretrainTrainer(config_from_dict(values), log=lambda *_: None, **kw)


class _Stop(Exception):
    pass


def _stop_after_step_one(trainer, stats):
    if trainer.global_step == 1:
        raise _Stop


@pytest.mark.parametrize(
    "method, model, kwargs",
    [
        ("simclr", "lenet5_modern", None),
        ("moco", "lenet5_modern", None),
        ("byol", "resnet20", {}),  # batch norm in the backbone and both networks
        ("dino", "lenet5_modern", None),
        ("mae", "vit_tiny_patch4_32", {"img_size": 16}),
    ],
)
def test_resume_after_step_one_is_bit_exact(tmp_path, method, model, kwargs):
    extra = {"data": {"name": "mnist5k", "train_subset": 128, "test_subset": 64, "batch_size": 64}}
    if model != "lenet5_modern":  # fewer images (at 16x16) keep a ResNet and a ViT to seconds
        extra["data"].update(train_subset=64, test_subset=32, batch_size=32, image_size=16)
    ref = _quiet(_values(tmp_path / "ref", method, model=model, kwargs=kwargs, **extra))
    ref.fit()
    assert ref.global_step == 2

    cut = _quiet(_values(tmp_path / "cut", method, model=model, kwargs=kwargs, **extra),
                 hooks={"on_step_end": [_stop_after_step_one]})  # fmt: skip
    with pytest.raises(_Stop):
        cut.fit()
    ckpt = load_checkpoint(tmp_path / "cut" / "checkpoints" / "last.pt")
    assert ckpt["position"]["global_step"] == 1 and is_pretraining_checkpoint(ckpt)
    assert ckpt["ssl"]["method"] == method and ckpt["ssl"]["init_probe"]["top1"] == ref.init_probe["top1"]

    resumed = _quiet(_values(tmp_path / "cut", method, model=model, kwargs=kwargs, **extra), resume=True)
    resumed.fit()
    mine, theirs = resumed.model.state_dict(), ref.model.state_dict()
    assert list(mine) == list(theirs)
    for key, value in theirs.items():  # queues, centres, momentum encoders included
        assert torch.equal(mine[key], value), key
    drop = ("epoch_seconds", "images_per_second")
    assert [{k: v for k, v in r.items() if k not in drop} for r in resumed.history] == [
        {k: v for k, v in r.items() if k not in drop} for r in ref.history
    ]

    # the contract: the registered network under "backbone.", loadable into the model by itself
    best = load_checkpoint(tmp_path / "cut" / "checkpoints" / "best.pt")
    assert is_pretraining_checkpoint(best)
    net = create_model(
        model, num_classes=10, in_chans=1, **(kwargs if kwargs is not None else {"pad_input": True})
    )
    net.load_state_dict(backbone_state(best))  # strict: every tensor of the network, nothing else
    if method == "moco":
        assert int(ckpt["model"]["queue.ptr"]) == 64  # one step's keys in the saved queue
    if method == "dino":  # the teacher (EMA) is the network handed on; the student trains
        assert any(k.startswith("student.") for k in ckpt["model"])


def test_probe_every_carries_the_last_probe_and_cli_refuses_classification(tmp_path, capsys):
    values = _values(tmp_path / "run", "simclr", epochs=3)
    values["data"].update(train_subset=64, test_subset=32, batch_size=64)
    values["ssl"]["probe_every"] = 2
    t = _quiet(values)
    summary = t.fit()
    assert [r["probe_epoch"] for r in t.history] == [0, 2, 3]  # epoch 1 carries the untrained network's probe
    assert t.history[0]["test_top1"] == t.init_probe["top1"] == summary["init_probe_top1"]
    rows = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["probe_epoch"] for r in rows] == [0, 2, 3] and summary["method"] == "simclr"

    best = str(tmp_path / "run" / "checkpoints" / "best.pt")
    assert main(["eval", best]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "pre-training checkpoint (simclr)" in err
    assert f"cnnlineage probe {best}" in err and f"cnnlineage train lenet5_modern --init {best}" in err
    assert main(["predict", best, "x.png"]) == 2 and "pre-training checkpoint" in capsys.readouterr().err
    assert main(["summary", best]) == 0 and "c1" in capsys.readouterr().out  # profiling the network works

    run = str(tmp_path / "run")  # resuming reads the run's config; `train --resume` points to pretrain
    assert pretrain_config(None, resume=run).ssl.method == "simclr"
    with pytest.raises(ConfigError, match="is a lenet5_modern run"):
        pretrain_config("resnet20", resume=run)
    assert main(["train", "--resume", run]) == 2
    assert (
        f"a pre-training run; resume it with `cnnlineage pretrain --resume {run}`" in capsys.readouterr().err
    )


def test_mae_on_a_cnn_is_refused_naming_the_vits(tmp_path, capsys):
    with pytest.raises(ValueError, match=r"vit_b_16, .*vit_tiny_patch4_32"):
        _quiet(_values(tmp_path / "run", "mae", model="resnet20", kwargs={}))
    assert not (tmp_path / "run").exists()  # refused before anything is written
    assert main(["pretrain", "lenet5_modern", "--method", "mae", "--out", str(tmp_path / "cli")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("cnnlineage pretrain: error: MAE pre-trains Vision Transformers only: vit_b_16")
    from cnnlineage.ssl.mae import MAE

    with pytest.raises(ValueError, match="resnet20 is not one"):
        MAE(create_model("resnet20"), size=(32, 32), mask_ratio=0.75, decoder_dim=32, decoder_depth=1)


def test_config_defaults_quick_and_refusals(tmp_path):
    cfg = pretrain_config("lenet5_modern", method="moco", quick=True, overrides=["ssl.queue_size=256"])
    assert (cfg.ssl.method, cfg.ssl.queue_size, cfg.ssl.temperature) == ("moco", 256, 0.2)
    assert (cfg.epochs, cfg.data.train_subset, cfg.data.batch_size) == (1, 512, 128)
    assert cfg.model.kwargs == {"pad_input": True}  # built as its own recipe builds it for mnist5k
    assert (
        pretrain_config("lenet5_modern", method="simclr", overrides=["data.name=shapes10"]).model.kwargs == {}
    )
    vit = pretrain_config("vit_tiny_patch4_32", method="dino")
    assert vit.optim.name == "adamw"
    with pytest.raises(ConfigError, match="augment.hflip"):
        _quiet(_values(tmp_path / "a", "simclr", augment={"hflip": 0.5}))
    with pytest.raises(ConfigError, match="ssl.method is none"):
        _quiet({**_values(tmp_path / "b", "simclr"), "ssl": {"method": "none"}})
    with pytest.raises(ConfigError, match="ssl.mask_ratio"):
        pretrain_config("vit_tiny_patch4_32", method="mae", overrides=["ssl.mask_ratio=1"])
    with pytest.raises(ConfigError, match="name a method"):
        pretrain_config("lenet5_modern")
