"""Frozen-feature probes (linear and k-NN, few labels) and fine-tuning from a pre-training checkpoint (--init)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn as nn

from cnnlineage.cli import main
from cnnlineage.data import build_datasets
from cnnlineage.data.datasets import DATASET_INFO
from cnnlineage.registry import create_model
from cnnlineage.ssl.probe import ProbeSource, extract, knn_probe, linear_probe, run_probe
from cnnlineage.train import Trainer, config_from_dict, config_to_dict, load_checkpoint
from cnnlineage.train.checkpoint import FORMAT, save_checkpoint


def _meta(model_name="lenet5_modern", data="mnist5k"):
    cfg = config_from_dict({"model": {"name": model_name}, "data": {"name": data}})
    info = DATASET_INFO[data]
    return {
        "format": FORMAT,
        "config": config_to_dict(cfg),
        "model_name": model_name,
        "num_classes": info.num_classes,
        "in_chans": info.in_chans,
        "input_size": [info.in_chans, 32, 32],
        "classes": [str(i) for i in range(10)],
        "mean": list(info.mean),
        "std": list(info.std),
    }


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    """Return (path, network state) of a fake `cnnlineage pretrain` checkpoint of lenet5_modern on mnist5k."""
    torch.manual_seed(123)
    net = create_model("lenet5_modern", num_classes=10, in_chans=1)
    state = {"backbone." + k: v for k, v in net.state_dict().items()}
    state["projector.0.weight"] = torch.randn(16, 84)  # the method's own head: never loaded into the network
    path = tmp_path_factory.mktemp("pre") / "pretrain.pt"
    save_checkpoint({**_meta(), "model": state, "ssl": {"method": "simclr"}}, path)
    return path, net.state_dict()


# ---------------------------------------------------------------------------- the two classifiers
def test_linear_and_knn_probes_on_crafted_features():
    """XOR clusters: no linear classifier beats 50% (by symmetry), the k-NN is exact; blobs: both exact."""
    g = torch.Generator().manual_seed(0)
    centres = torch.tensor([[1.0, 1.0], [-1.0, -1.0], [1.0, -1.0], [-1.0, 1.0]])
    which = torch.arange(400) % 4
    x = centres[which] + 0.1 * torch.randn(400, 2, generator=g)
    y = (which >= 2).long()  # class 0: same signs, class 1: opposite signs
    train, test = slice(0, 300), slice(300, 400)
    knn = knn_probe(x[train], y[train], x[test], y[test], num_classes=2, k=5)
    lin = linear_probe(x[train], y[train], x[test], y[test])
    assert knn == {"top1": 100.0, "k": 5} and lin["converged"] and lin["top1"] <= 75.0
    blobs = torch.cat([x, (which[:, None] == torch.arange(4)).float() * 5], 1)  # one extra axis per cluster
    lin4 = linear_probe(blobs[train], which[train], blobs[test], which[test])
    assert lin4["top1"] == 100.0
    assert knn_probe(x[:3], y[:3], x[test], y[test], num_classes=2, k=20)["k"] == 3  # k at most the bank


def test_features_need_a_pooled_head():
    class NoHead(nn.Module):
        def forward(self, x):
            return x

    class Maps(nn.Module):
        def forward_features(self, x):
            return x

        def forward_head(self, x, pre_logits=False):
            return x  # (B, C, H, W): not pooled

    batches = [(torch.zeros(2, 1, 4, 4), torch.zeros(2, dtype=torch.long))]
    for model, text in ((NoHead(), "no pooled features"), (Maps(), r"returns \(1, 1, 4, 4\)")):
        src = ProbeSource(
            "train checkpoint", "x.pt", model, "custom", "digits", "data", None, None, None, None
        )
        with pytest.raises(ValueError, match=text):
            extract(src, batches)


def test_raw_pixel_linear_probe_matches_scikit_learn_directly():
    """The raw baseline on digits equals a scikit-learn pipeline fitted here on the uint8 pixels, every N subset balanced."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    r = run_probe(None, raw=True, data="digits", labels_per_class=[2, 5], progress=False)
    train, test, _ = build_datasets("digits")
    xtr, xte = train.images.flatten(1).double().numpy(), test.images.flatten(1).double().numpy()
    clf = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=1000, random_state=0))
    clf.fit(xtr, train.labels.numpy())
    expected = 100.0 * float(np.mean(clf.predict(xte) == test.labels.numpy()))
    assert r["feature_dim"] == 64 and r["kind"] == "raw pixels" and r["input_size"] == [1, 8, 8]
    assert [row["labels_per_class"] for row in r["rows"]] == [2, 5, "all"]
    assert [row["train_images"] for row in r["rows"]] == [20, 50, len(train)]
    assert abs(r["rows"][-1]["linear_top1"] - expected) <= 100.0 / len(test) + 1e-9  # one image at most
    again = run_probe(None, raw=True, data="digits", labels_per_class=[2], knn=None, progress=False)
    assert (
        again["rows"][0]["linear_top1"] == r["rows"][0]["linear_top1"] and "knn_top1" not in again["rows"][0]
    )


# ---------------------------------------------------------------------------- the command
def test_probe_cli_on_a_pretrain_checkpoint(pretrained, tmp_path, capsys):
    path, _ = pretrained
    out = tmp_path / "probe"
    code = main(
        ["probe", str(path), "--data", "digits", "--labels-per-class", "1,5", "--out", str(out), "--quiet"]
    )
    assert code == 0
    text = capsys.readouterr().out
    assert (
        f"pretrain checkpoint {path} (lenet5_modern), pre-trained with simclr on digits" in text
        and "84-d features" in text
    )
    r = json.loads((out / "probe.json").read_text())
    assert (out / "probe.png").stat().st_size > 1000
    assert r["input_size"] == [1, 32, 32] and r["dataset"] == "digits" and r["pretraining"] == "simclr"
    assert [(row["labels_per_class"], row["train_images"]) for row in r["rows"]] == [
        (1, 10),
        (5, 50),
        ("all", 1438),
    ]
    for row in r["rows"]:
        assert f"{row['linear_top1']:.2f}" in text and f"{row['knn_top1']:.2f}" in text
    assert r["rows"][-1]["knn_top1"] > 50  # random LeNet features of 8x8 digits still beat chance (10%)
    # a registered name is the same network randomly initialised for the seed: other features, other scores
    assert (
        main(["probe", "lenet5_modern", "--data", "digits", "--knn", "5", "--format", "json", "--quiet"]) == 0
    )
    rand = json.loads(capsys.readouterr().out)
    assert rand["kind"] == "random init" and rand["linear"] is None and rand["rows"][0]["knn_k"] == 5


def test_probe_cli_errors(pretrained, tmp_path, capsys):
    path, _ = pretrained
    assert main(["probe", str(path), "--data", "digits", "--labels-per-class", "500", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "use at most 139" in err and err.count("\n") == 1  # digits: the smallest training class holds 139
    int8 = tmp_path / "int8"
    int8.mkdir()
    (int8 / "quantized.json").write_text(json.dumps({"checkpoint": "/runs/x/best.pt"}))
    assert main(["probe", str(int8)]) == 2
    assert "int8 model" in capsys.readouterr().err
    assert main(["probe"]) == 2 and "--raw" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # argparse's own refusal (status 2)
        main(["probe", "lenet5_modern", "--labels-per-class", "0"])
    assert "positive integers" in capsys.readouterr().err


def _digits_knn_by_hand(net: nn.Module, name: str, side: int) -> float:
    """Return the k-NN (k=3) top-1 of ``net``'s features on scikit-learn's digits, resized to side x side by hand."""
    src = ProbeSource("random init", name, net, name, "digits", "data", (side, side), 1, None, None)
    train, test, info = build_datasets("digits", root="data")
    resize = torch.nn.Upsample(size=(side, side), mode="bilinear", align_corners=False)

    def batches(ds):
        xs = torch.stack([torch.as_tensor(np.asarray(ds[i][0]), dtype=torch.float32) for i in range(len(ds))])
        xs = xs.reshape(len(ds), 1, 8, 8) / 255.0
        ys = torch.tensor([int(ds[i][1]) for i in range(len(ds))])
        return [((resize(xs) - info.mean[0]) / info.std[0], ys)]

    (ftr, ytr), (fte, yte) = extract(src, batches(train)), extract(src, batches(test))
    return knn_probe(ftr, ytr, fte, yte, num_classes=10, k=3)["top1"]


def test_image_size_feeds_a_random_network_what_its_pretraining_saw(pretrained, capsys):
    # resnet20 takes any side; at 16x16 its features are those of 16x16 digits, as `pretrain
    # --set data.image_size=16` would feed it (features computed here by hand for the same seed)
    args = ["probe", "resnet20", "--data", "digits", "--knn", "3", "--format", "json", "--quiet"]
    assert main([*args, "--image-size", "16"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["input_size"] == [1, 16, 16]
    torch.manual_seed(0)
    net = create_model("resnet20", num_classes=10, in_chans=1).eval()
    assert r["feature_dim"] == 64 and r["rows"][0]["knn_k"] == 3
    by_hand = _digits_knn_by_hand(net, "resnet20", 16)
    assert r["rows"][0]["knn_top1"] == pytest.approx(by_hand, abs=0.3)  # resampling kernels may differ
    # a checkpoint keeps the side it was trained at
    path, _ = pretrained
    assert main(["probe", str(path), "--data", "digits", "--image-size", "16", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "trained on 32x32 inputs" in err and err.count("\n") == 1
    # a fixed-size network names the sizes it takes
    assert main(["probe", "lenet5_modern", "--data", "digits", "--image-size", "16", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "lenet5_modern takes (N, 1, 32, 32); --image-size 16 does not fit" in err and err.count("\n") == 1
    assert main(["probe", "resnet20", "--image-size", "100000000", "--quiet"]) == 2  # not an allocation error
    err = capsys.readouterr().err
    assert "--image-size must be a side of 1 to 4096 pixels" in err and err.count("\n") == 1


def test_model_arg_builds_the_random_network_its_pretraining_used(pretrained, capsys):
    # `pretrain lenet4 --set model.kwargs.pad_input=true` trains a LeNet-4 that reads 28x28 and pads
    # it to 32x32; its baseline is the same network at the same seed (features by hand here)
    args = ["probe", "lenet4", "--data", "digits", "--knn", "3", "--format", "json", "--quiet", "--seed", "1"]
    assert main([*args, "--model-arg", "pad_input=true"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["input_size"] == [1, 28, 28] and r["model_kwargs"] == {"pad_input": True}
    torch.manual_seed(1)
    net = create_model("lenet4", num_classes=10, in_chans=1, pad_input=True).eval()
    by_hand = _digits_knn_by_hand(net, "lenet4", 28)
    assert r["rows"][0]["knn_top1"] == pytest.approx(by_hand, abs=0.5)  # resampling kernels may differ
    assert main(args) == 0  # without it: the 32x32 network
    assert json.loads(capsys.readouterr().out)["input_size"] == [1, 32, 32]
    # an argument the builder does not take, a checkpoint (built as it was trained), malformed text
    assert main([*args, "--model-arg", "wide=2"]) == 2
    err = capsys.readouterr().err
    assert "lenet4 does not take the argument 'wide'; its builder accepts:" in err and err.count("\n") == 1
    path, _ = pretrained
    assert main(["probe", str(path), "--model-arg", "pad_input=true", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "is for a model name" in err and err.count("\n") == 1
    assert main(["probe", str(path.parent / "missing.pt"), "--model-arg", "pad_input=true", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "missing.pt does not exist" in err and err.count("\n") == 1
    with pytest.raises(SystemExit):  # argparse's own refusal (status 2)
        main([*args, "--model-arg", "pad_input"])
    assert "expected KEY=VALUE" in capsys.readouterr().err


# ---------------------------------------------------------------------------- train --init
def test_init_loads_the_pretrained_backbone_and_a_fresh_head(pretrained, tmp_path, capsys):
    path, net = pretrained
    values = {
        "model": {"name": "lenet5_modern"},
        "data": {"name": "mnist5k", "train_subset": 64, "test_subset": 20, "batch_size": 32},
        "finetune": {"checkpoint": str(path)},
        "seed": 7,
        "threads": 1,
        "run": {"out_dir": str(tmp_path / "ft"), "progress": "none", "tensorboard": False, "plots": False},
    }
    t = Trainer(config_from_dict(values), log=lambda *_: None)
    own = t.model.state_dict()
    torch.manual_seed(7)
    fresh = create_model("lenet5_modern", num_classes=10, in_chans=1).state_dict()
    head = {"fc.weight", "fc.bias"}
    assert set(t.finetune_report["new_head_keys"]) == head and t.finetune_report["pretraining"] == "simclr"
    for k, v in own.items():
        assert torch.equal(v, fresh[k] if k in head else net[k]), k
    assert not torch.equal(own["fc.weight"], net["fc.weight"])  # the untrained pre-training head is not kept
    t.fit()
    assert (
        load_checkpoint(tmp_path / "ft" / "checkpoints" / "last.pt")["model"]["c1.weight"].shape
        == net["c1.weight"].shape
    )
    argv = ["train", "lenet5_modern", "--init", str(path), "--finetune-mode", "head", "--print-config"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert f"checkpoint: {path}" in printed and "mode: head" in printed
