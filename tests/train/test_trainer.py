"""The trainer on tiny runs (lenet5_modern, a few hundred mnist5k digits): outputs, exact resume, NaN stop,
gradient accumulation, fine-tuning and the optional features."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F

from cnnlineage.train import ConfigError, NonFiniteLossError, Trainer, config_from_dict, load_checkpoint
from cnnlineage.train.finetune import parameter_blocks, set_trainable
from cnnlineage.train.trainer import classification_loss

TIMING = {"epoch_seconds", "images_per_second"}


def small(tmp_path, name="run", **sections):
    """Return a tiny config: 256 train / 100 test digits, batch 32, 2 epochs, one thread."""
    values = {
        "model": {"name": "lenet5_modern"},
        "data": {"name": "mnist5k", "train_subset": 256, "test_subset": 100, "batch_size": 32},
        "optim": {"lr": 0.05},
        "epochs": 2,
        "threads": 1,
        "run": {"out_dir": str(tmp_path / name), "progress": "none", "tensorboard": False, "plots": False},
    }
    for key, value in sections.items():
        if isinstance(value, dict):
            values.setdefault(key, {}).update(value)
        else:
            values[key] = value
    return config_from_dict(values)


def _metrics(run_dir):
    lines = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if k not in TIMING} for r in lines]


def test_run_directory_holds_every_output(tmp_path):
    cfg = small(tmp_path, run={"tensorboard": True, "plots": True})
    summary = Trainer(cfg, log=lambda *_: None).fit()
    run = tmp_path / "run"
    for name in (
        "config.yaml",
        "metrics.jsonl",
        "summary.json",
        "learning_curves.png",
        "confusion_matrix.png",
    ):
        assert (run / name).is_file(), name
    assert list((run / "tb").glob("events.out.tfevents.*")) and not (run / ".lock").exists()
    lines = _metrics(run)
    assert [r["epoch"] for r in lines] == [1, 2] and lines[-1]["step"] == 16
    assert summary["final_top1"] == lines[-1]["test_top1"] and summary["best_top1"] == max(
        r["test_top1"] for r in lines
    )
    on_disk = json.loads((run / "summary.json").read_text())
    for key in ("final_top1", "best_top1", "epochs", "wall_seconds", "images_per_second"):
        assert on_disk[key] == summary[key]
    assert (
        summary["epochs"] == 2 and summary["images_per_second"] > 0 and summary["input_size"] == [1, 32, 32]
    )
    # per-class accuracy and top-1 agree: 100 test digits, accuracy counted per class
    per_class = lines[-1]["test_per_class"]
    assert len(per_class) == 10 and all(p is None or 0 <= p <= 100 for p in per_class)
    ckpt = load_checkpoint(run / "checkpoints" / "last.pt")
    assert ckpt["position"] == {"epoch": 2, "batch_in_epoch": 0, "global_step": 16, "global_batch": 16}
    assert ckpt["history"] == json.loads(
        "[" + ",".join((run / "metrics.jsonl").read_text().splitlines()) + "]"
    )
    assert {"model", "optimizer", "schedule", "scaler", "ema", "rng", "config", "classes"} <= set(ckpt)


class _Stop(Exception):
    pass


def test_mid_epoch_resume_is_bit_exact(tmp_path):
    ref = Trainer(small(tmp_path, "ref", run={"checkpoint_every_steps": 3}), log=lambda *_: None)
    ref.fit()

    def crash(trainer, stats):
        if trainer.global_step == 11:  # mid-epoch 2; the last checkpoint is from step 9
            raise _Stop

    cfg = small(tmp_path, "cut", run={"checkpoint_every_steps": 3})
    with pytest.raises(_Stop):
        Trainer(cfg, hooks={"on_step_end": [crash]}, log=lambda *_: None).fit()
    assert load_checkpoint(tmp_path / "cut" / "checkpoints" / "last.pt")["position"]["global_step"] == 9
    resumed = Trainer(cfg, resume=True, log=lambda *_: None)
    assert (resumed.epoch, resumed.batch_in_epoch) == (1, 1)
    resumed.fit()
    a, b = ref.model.state_dict(), resumed.model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert _metrics(tmp_path / "ref") == _metrics(tmp_path / "cut")
    sa, sb = ref.optimizer.state_dict()["state"], resumed.optimizer.state_dict()["state"]
    assert all(torch.equal(sa[i]["momentum_buffer"], sb[i]["momentum_buffer"]) for i in sa)


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path):
    def poison(trainer, stats):
        if trainer.global_step == 4:  # after the step-4 checkpoint: the next forward pass gives NaN
            with torch.no_grad():
                trainer.model.c1.weight.fill_(float("nan"))

    cfg = small(tmp_path, run={"checkpoint_every_steps": 2})
    with pytest.raises(
        NonFiniteLossError, match=r"loss is nan at epoch 1, batch 5 \(step 4\).*last good checkpoint"
    ):
        Trainer(cfg, hooks={"on_step_end": [poison]}, log=lambda *_: None).fit()
    ckpt = load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")
    assert ckpt["position"]["global_step"] == 4
    assert all(torch.isfinite(v).all() for v in ckpt["model"].values())
    assert not (tmp_path / "run" / "summary.json").exists() and not (tmp_path / "run" / ".lock").exists()


def test_gradient_accumulation_equals_the_big_batch(tmp_path):
    big = Trainer(
        small(tmp_path, "big", epochs=1, data={"train_subset": 128, "batch_size": 64}), log=lambda *_: None
    )
    big.fit()
    acc = Trainer(
        small(
            tmp_path,
            "acc",
            epochs=1,
            data={"train_subset": 128, "batch_size": 32},
            optim={"lr": 0.05, "accum_steps": 2},
        ),
        log=lambda *_: None,
    )
    acc.fit()
    assert big.global_step == acc.global_step == 2
    for k, v in big.model.state_dict().items():
        torch.testing.assert_close(acc.model.state_dict()[k], v, atol=2e-6, rtol=1e-5)


def test_aux_loss_adds_weighted_auxiliary_cross_entropy():
    logits, aux1, aux2 = torch.randn(3, 4, 5).unbind(0)
    y = torch.tensor([0, 4, 2, 1])
    expected = F.cross_entropy(logits, y) + 0.3 * (F.cross_entropy(aux1, y) + F.cross_entropy(aux2, y))
    torch.testing.assert_close(classification_loss((logits, aux1, aux2), y, aux_weight=0.3), expected)
    soft = F.one_hot(y, 5).float()
    torch.testing.assert_close(classification_loss(logits, soft), F.cross_entropy(logits, y))


def test_finetune_head_only_keeps_the_backbone(tmp_path):
    Trainer(small(tmp_path, "pre", epochs=1), log=lambda *_: None).fit()
    ckpt = tmp_path / "pre" / "checkpoints" / "best.pt"
    pre = load_checkpoint(ckpt)["model"]
    # shapes10 is RGB with other classes: the pretrained grey stem stays, the data is turned grey for it
    cfg = small(tmp_path, "ft", epochs=1, data={"name": "shapes10", "train_subset": 64, "test_subset": 20},
                finetune={"checkpoint": str(ckpt), "mode": "head"})  # fmt: skip
    t = Trainer(cfg, log=lambda *_: None)
    assert t.finetune_report["new_head_keys"] == [] and "Channels(1)" in __import__(
        "cnnlineage.data", fromlist=["x"]
    ).describe(t.train_tf)
    t.fit()
    after = t.model.state_dict()
    for k in ("c1.weight", "c3.weight", "c5.bias"):
        assert torch.equal(after[k], pre[k]), k
    assert not torch.equal(after["fc.weight"], pre["fc.weight"]) and not torch.equal(
        after["f6.weight"], pre["f6.weight"]
    )


def test_parameter_blocks_and_gradual_unfreezing():
    import cnnlineage

    model = cnnlineage.create_model("lenet5_modern")
    blocks = parameter_blocks(model)
    assert blocks[0] == [
        "f6.weight",
        "f6.bias",
        "fc.weight",
        "fc.bias",
    ]  # head: classifier + the layer after C5
    assert blocks[1:] == [["c5.weight", "c5.bias"], ["c3.weight", "c3.bias"], ["c1.weight", "c1.bias"]]
    trainable = [set_trainable(model, "gradual", epoch=e, unfreeze_every=2) for e in range(8)]
    assert trainable == [1, 1, 2, 2, 3, 3, 4, 4]
    set_trainable(model, "gradual", epoch=2, unfreeze_every=2)
    assert [n for n, p in model.named_parameters() if p.requires_grad] == blocks[0][:0] + [
        "c5.weight",
        "c5.bias",
    ] + blocks[0]


def test_optional_features_run_together(tmp_path):
    cfg = small(
        tmp_path, epochs=1, ema_decay=0.9, amp="bf16", label_smoothing=0.1,
        model={"name": "lenet5_modern", "channels_last": True, "init": "kaiming"},
        augment={"mixup_alpha": 0.2, "cutmix_alpha": 1.0, "crop_padding": 2, "random_erasing": 0.25},
        optim={"name": "adamw", "lr": 0.003, "weight_decay": 0.05, "clip_grad_norm": 1.0},
        schedule={"name": "onecycle"}, run={"grad_norms": True},
    )  # fmt: skip
    Trainer(cfg, log=lambda *_: None).fit()
    (record,) = _metrics(tmp_path / "run")
    assert "ema_top1" in record and set(record["grad_norms"]) == {"c1", "c3", "c5", "f6", "fc"}
    assert all(v > 0 for v in record["grad_norms"].values()) and record["train_loss"] == record["train_loss"]


def test_impossible_runs_are_refused_before_training(tmp_path):
    with pytest.raises(ConfigError, match="has no stochastic depth"):
        Trainer(small(tmp_path, "a", model={"name": "lenet5_modern", "drop_path_rate": 0.1}))
    with pytest.raises(ConfigError, match="amp=fp16 needs CUDA"):
        Trainer(small(tmp_path, "b", amp="fp16", device="cpu"))
    with pytest.raises(ConfigError, match=r"lenet5_modern takes only \(N, 1, 32, 32\)"):
        Trainer(small(tmp_path, "c", data={"image_size": 64}))
