"""`cnnlineage export`, and `eval`/`predict` of the exported ONNX file, against the PyTorch checkpoint."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
import torch

from cnnlineage.cli import main

TINY = ["--set", "data.train_subset=256", "--set", "threads=1",
        "--set", "run.tensorboard=false", "--set", "run.plots=false", "--quiet"]  # fmt: skip


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("deploy") / "run"
    assert (
        main(["train", "lenet5_modern", "--epochs", "1", "--batch-size", "32", "--out", str(out), *TINY]) == 0
    )
    onnx_path = out / "model.onnx"
    assert (
        main(["export", str(out / "checkpoints" / "best.pt"), "--out", str(onnx_path), "--dynamic-batch"])
        == 0
    )
    return out, onnx_path


def test_export_embeds_the_metadata_inference_needs(run, capsys):
    out, onnx_path = run
    meta = {p.key: p.value for p in onnx.load(str(onnx_path)).metadata_props}
    assert meta["model_name"] == "lenet5_modern" and meta["dataset"] == "mnist5k"
    assert json.loads(meta["class_names"]) == [str(d) for d in range(10)]
    ckpt = torch.load(out / "checkpoints" / "best.pt", weights_only=True)
    assert json.loads(meta["input_size"]) == ckpt["input_size"] == [1, 28, 28]
    assert json.loads(meta["mean"]) == [0.1307] and json.loads(meta["std"]) == [0.3081]
    assert meta["source"].endswith("best.pt") and json.loads(meta["dynamic_batch"]) is True


def test_eval_of_the_onnx_file_equals_the_checkpoint(run, capsys):
    out, onnx_path = run
    capsys.readouterr()
    assert main(["eval", str(out / "checkpoints" / "best.pt"), "--format", "json"]) == 0
    ref = json.loads(capsys.readouterr().out)
    assert main(["eval", str(onnx_path), "--format", "json"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert got["samples"] == ref["samples"] == 1000
    assert got["top1"] == ref["top1"] and got["top5"] == ref["top5"] and got["confusion"] == ref["confusion"]
    assert got["loss"] == pytest.approx(ref["loss"], abs=1e-5)


def test_predict_of_the_onnx_file_equals_the_checkpoint(run, tmp_path, capsys):
    from PIL import Image

    from cnnlineage.data import build_datasets

    out, onnx_path = run
    _, test, _ = build_datasets("mnist5k")
    files = []
    for i in (0, 7, 500):
        files.append(tmp_path / f"digit{i}.png")
        Image.fromarray(np.stack([test.images[i, 0].numpy()] * 3, axis=-1)).save(files[-1])
    capsys.readouterr()
    args = [*map(str, files), "--topk", "3", "--format", "json"]
    assert main(["predict", str(out / "checkpoints" / "best.pt"), *args]) == 0
    ref = json.loads(capsys.readouterr().out)
    assert main(["predict", str(onnx_path), *args]) == 0
    got = json.loads(capsys.readouterr().out)
    for r, g in zip(ref, got):
        assert [c for c, _ in r["top"]] == [c for c, _ in g["top"]]
        assert np.allclose([p for _, p in r["top"]], [p for _, p in g["top"]], atol=1e-5)


def test_checkpoint_on_channels_last_backend_equals_eager(run, capsys):
    out, _ = run
    capsys.readouterr()
    assert main(["eval", str(out / "checkpoints" / "best.pt"), "--format", "json"]) == 0
    ref = json.loads(capsys.readouterr().out)
    assert (
        main(["eval", str(out / "checkpoints" / "best.pt"), "--backend", "channels_last", "--format", "json"])
        == 0
    )
    got = json.loads(capsys.readouterr().out)
    assert got["confusion"] == ref["confusion"]


def test_torchscript_and_exported_program_round_trip(run, tmp_path, capsys):
    out, _ = run
    ckpt = str(out / "checkpoints" / "best.pt")
    x = torch.randn(2, 1, 28, 28)
    from cnnlineage.train.inference import load_model

    model, _ = load_model(ckpt)
    with torch.no_grad():
        ref = model(x)
    ts, ep = tmp_path / "m.pt", tmp_path / "m.pt2"
    assert main(["export", ckpt, "--format", "torchscript", "--out", str(ts)]) == 0
    assert main(["export", ckpt, "--format", "exported-program", "--out", str(ep), "--dynamic-batch"]) == 0
    extra = {"cnnlineage.json": ""}
    loaded = torch.jit.load(str(ts), _extra_files=extra)
    assert json.loads(extra["cnnlineage.json"])["model_name"] == "lenet5_modern"
    assert torch.allclose(loaded(x), ref, atol=1e-5)
    with open(ep, "rb") as f:
        program = torch.export.load(f)
    assert torch.allclose(program.module()(x), ref, atol=1e-5)


def _error(capsys, argv):
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0, err
    return err


def test_bad_input_is_one_line_and_writes_nothing(run, tmp_path, capsys):
    out, onnx_path = run
    ckpt = str(out / "checkpoints" / "best.pt")
    target = tmp_path / "x.onnx"
    assert "not resnet18" in _error(capsys, ["export", ckpt, "--model", "resnet18", "--out", str(target)])
    assert "does not exist" in _error(capsys, ["export", "nothere.pt", "--out", str(target)])
    assert "unknown model" in _error(capsys, ["export", "resnet999", "--out", str(target)])
    assert "--opset applies to ONNX only" in _error(
        capsys, ["export", ckpt, "--format", "torchscript", "--opset", "17", "--out", str(target)]
    )
    assert "directory" in _error(capsys, ["export", ckpt, "--out", str(tmp_path / "no" / "x.onnx")])
    # an ONNX file without cnnlineage metadata
    bare = onnx.load(str(onnx_path))
    del bare.metadata_props[:]
    onnx.save(bare, str(tmp_path / "bare.onnx"))
    err = _error(capsys, ["eval", str(tmp_path / "bare.onnx")])
    assert (
        "lacks the metadata model_name, class_names, input_size, mean, std" in err
        and "cnnlineage export" in err
    )
    assert "onnxruntime only" in _error(capsys, ["eval", str(onnx_path), "--backend", "compile"])
    assert list(tmp_path.glob("*.tmp")) == [] and not target.exists()


def test_an_exporter_failure_is_one_line_naming_the_model(tmp_path, capsys, monkeypatch):
    # An exporter failure (here: an operator the exporter rejects) is one line naming the model.
    import cnnlineage.deploy.export as ex

    def broken(*a, **k):
        raise RuntimeError("Unsupported operator aten::frobnicate\nlong trace")

    monkeypatch.setattr(ex, "_write_torchscript", broken)
    err = _error(capsys, ["export", "lenet5", "--format", "torchscript", "--out", str(tmp_path / "m.pt")])
    assert err.endswith("Try another --format (onnx, exported-program)")
    assert (
        "lenet5 cannot be exported to torchscript: RuntimeError: Unsupported operator aten::frobnicate" in err
    )
    assert list(tmp_path.iterdir()) == []


def test_exporter_reason_names_the_root_cause_without_terminal_colours():
    # The shape of the ONNX exporter's message (torch 2.14): advice in colours, then the cause.
    from cnnlineage.deploy.export import exporter_reason

    msg = (
        "Failed to convert the exported program to an ONNX model. \x1b[96mThis is step 3/3\x1b[0m of exporting "
        "the model to ONNX. Next steps:\n- If there is a missing ONNX function, implement it.\n\n"
        "## Exception summary\n\n<class 'AssertionError'>: only 4D query, key, and value are supported\n"
        "\u2b06\ufe0f\n<class 'torch.onnx._internal.exporter._errors.ConversionError'>: Error when translating node"
    )
    assert exporter_reason(RuntimeError(msg)) == "AssertionError: only 4D query, key, and value are supported"
    plain = RuntimeError("Failed at step 2/3 \x1b[96mhere\x1b[0m. Next steps:\n- a list")
    assert exporter_reason(plain) == "RuntimeError: Failed at step 2/3 here."
