"""eval, predict and bench take every kind of model alike: a checkpoint, its .onnx export, its int8 directory.

The checkpoint path (``cnnlineage.train.inference``) is the reference: the ONNX and int8 paths
must invert dark-on-light digits, save ``--show-input`` PNGs, warn and refuse a mismatched data
set exactly as it does.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from cnnlineage.cli import main

TINY = ["--set", "data.train_subset=256", "--set", "threads=1",
        "--set", "run.tensorboard=false", "--set", "run.plots=false", "--quiet"]  # fmt: skip


@pytest.fixture(scope="module")
def kinds(tmp_path_factory):
    """Return {"ckpt", "onnx", "int8"} paths of one tiny lenet5_modern run, and its directory."""
    root = tmp_path_factory.mktemp("kinds")
    run = root / "run"
    assert (
        main(["train", "lenet5_modern", "--epochs", "1", "--batch-size", "32", "--out", str(run), *TINY]) == 0
    )
    ckpt = run / "checkpoints" / "best.pt"
    assert main(["export", str(ckpt), "--out", str(root / "m.onnx"), "--dynamic-batch"]) == 0
    assert (
        main(["quantize", str(ckpt), "--out", str(root / "int8"), "--calib-batches", "2", "--no-eval"]) == 0
    )
    return {"ckpt": str(ckpt), "onnx": str(root / "m.onnx"), "int8": str(root / "int8")}, root


@pytest.fixture(scope="module")
def digits(kinds):
    """Three mnist5k test digits as files: as stored (light on dark), inverted (dark on light), inverted again."""
    from cnnlineage.data import build_datasets

    _, root = kinds
    _, test, _ = build_datasets("mnist5k")
    files = []
    for i, dark_on_light in ((0, False), (7, True), (500, True)):
        grey = test.images[i, 0].numpy()
        grey = 255 - grey if dark_on_light else grey
        files.append(root / f"digit{i}.png")
        Image.fromarray(np.stack([grey] * 3, axis=-1)).save(files[-1])
    return [str(f) for f in files]


def _json(capsys, argv, code=0):
    capsys.readouterr()
    assert main(argv) == code
    out = capsys.readouterr()
    return json.loads(out.out), out.err


def _error(capsys, argv):
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0, err
    return err


# --------------------------------------------------------------------------- predict --invert / --show-input
@pytest.mark.parametrize("invert", ["auto", "never", "always"])
def test_onnx_predict_inverts_and_shows_input_as_the_checkpoint_path(kinds, digits, tmp_path, capsys, invert):
    paths, _ = kinds
    got = {}
    for kind in ("ckpt", "onnx"):
        show = tmp_path / kind
        argv = ["predict", paths[kind], *digits, "--topk", "3", "--invert", invert, "--show-input", str(show)]
        got[kind], _ = _json(capsys, [*argv, "--format", "json"])
        assert sorted(p.name for p in show.iterdir()) == sorted(f"digit{i}.input.png" for i in (0, 7, 500))
    for r, g in zip(got["ckpt"], got["onnx"]):
        assert g["inverted"] == r["inverted"] and g["preprocessing"] == r["preprocessing"]
        assert g["warnings"] == r["warnings"]
        assert [c for c, _ in g["top"]] == [c for c, _ in r["top"]]
        assert np.allclose([p for _, p in g["top"]], [p for _, p in r["top"]], atol=1e-5)
        a, b = (np.asarray(Image.open(tmp_path / k / f"{r['image'].rsplit('/', 1)[1][:-4]}.input.png")) for k in ("ckpt", "onnx"))  # fmt: skip
        assert np.array_equal(a, b)
    # what the flag means, checked on the files: digit0 is light on dark, the others dark on light
    expected = {"auto": [False, True, True], "never": [False, False, False], "always": [True, True, True]}
    assert [g["inverted"] for g in got["onnx"]] == expected[invert]
    if invert == "never":
        assert all("the reverse of the training images" in " ".join(g["warnings"]) for g in got["onnx"][1:])


def test_onnx_predict_reports_an_unreadable_file_and_classifies_the_others(kinds, digits, tmp_path, capsys):
    paths, _ = kinds
    missing = str(tmp_path / "nothere.png")
    results, err = _json(capsys, ["predict", paths["onnx"], digits[0], missing, "--format", "json"], code=2)
    assert "top" in results[0] and results[1] == {"image": missing, "error": f"{missing} does not exist"}
    assert "1 of 2 file(s) could not be classified" in err


# --------------------------------------------------------------------------- eval --allow-mismatch
def test_onnx_eval_refuses_another_data_set_unless_allowed(kinds, capsys):
    paths, _ = kinds
    err = _error(capsys, ["eval", paths["onnx"], "--data", "shapes10"])
    assert (
        "trained on mnist5k, not shapes10" in err
        and "1-channel vs 3-channel" in err
        and "--allow-mismatch" in err
    )
    ref, ref_err = _json(
        capsys, ["eval", paths["ckpt"], "--data", "shapes10", "--allow-mismatch", "--format", "json"]
    )
    got, got_err = _json(
        capsys, ["eval", paths["onnx"], "--data", "shapes10", "--allow-mismatch", "--format", "json"]
    )
    assert got["samples"] == ref["samples"] == 2000 and got["confusion"] == ref["confusion"]
    assert got["mismatch"] == ref["mismatch"] and got_err == ref_err and "scored anyway" in got_err


# --------------------------------------------------------------------------- the int8 directory
def test_int8_directory_evaluates_as_its_program_does(kinds, capsys):
    """eval DIR equals the saved program run by hand on the held-out digits (top-1 and confusion)."""
    import torchao.quantization.pt2e.quantize_pt2e  # noqa: F401  registers the quantized_decomposed ops

    from cnnlineage.compress._data import load_checkpoint_data

    paths, _ = kinds
    got, _ = _json(capsys, ["eval", paths["int8"], "--backend", "eager", "--format", "json"])
    gm = torch.export.load(f"{paths['int8']}/model.int8.pt2").module()
    test = load_checkpoint_data(paths["ckpt"]).test
    x = torch.stack([test[i][0] for i in range(len(test))])
    y = torch.tensor([test[i][1] for i in range(len(test))])
    with torch.no_grad():
        pred = gm(x).argmax(1)
    assert got["samples"] == len(test) == 1000
    assert got["top1"] == pytest.approx(100.0 * float((pred == y).float().mean()))
    assert got["model"] == "lenet5_modern (int8, pt2e)" and got["dataset"] == "mnist5k"
    # --split and --data reach the int8 path as they reach the checkpoint path
    train, _ = _json(
        capsys, ["eval", paths["int8"], "--backend", "eager", "--split", "train", "--format", "json"]
    )
    assert train["split"] == "train" and train["samples"] == 4000
    assert "trained on mnist5k, not shapes10" in _error(capsys, ["eval", paths["int8"], "--data", "shapes10"])


def test_int8_directory_predicts_like_its_checkpoint(kinds, digits, tmp_path, capsys):
    paths, _ = kinds
    ref, _ = _json(capsys, ["predict", paths["ckpt"], *digits, "--format", "json"])
    show = tmp_path / "show"
    got, _ = _json(
        capsys,
        [
            "predict",
            paths["int8"],
            *digits,
            "--backend",
            "eager",
            "--show-input",
            str(show),
            "--format",
            "json",
        ],
    )
    for r, g in zip(ref, got):
        assert g["inverted"] == r["inverted"] and g["preprocessing"] == r["preprocessing"]
        assert g["top"][0][0] == r["top"][0][0]  # int8 picks the same class
        assert abs(g["top"][0][1] - r["top"][0][1]) < 0.1
    assert len(list(show.glob("*.input.png"))) == 3


def test_int8_directory_says_what_does_not_apply(kinds, capsys):
    paths, _ = kinds
    d = paths["int8"]
    err = _error(capsys, ["eval", d, "--backend", "channels_last"])
    assert "int8 model from `cnnlineage quantize`" in err and "--backend compile or --backend eager" in err
    assert "runs on the CPU" in _error(capsys, ["eval", d, "--device", "cuda"])
    assert "for inference only" in _error(capsys, ["bench", d, "--train"])
    assert "compress-report" in _error(capsys, ["bench", d, "--vs", "torchvision"])
    assert "already a deployable int8 program" in _error(capsys, ["export", d, "--out", f"{d}/x.onnx"])


def test_bench_times_the_int8_directory_beside_its_checkpoint(kinds, capsys):
    paths, _ = kinds
    argv = ["bench", paths["ckpt"], paths["int8"], "--backend", "eager", "--reps", "2", "--warmup", "1"]
    got, _ = _json(capsys, [*argv, "--quiet", "--threads", "1", "--format", "json"])
    fp32, int8 = got["rows"]
    assert int8["model"] == "lenet5_modern (int8, pt2e)" and int8["backend"] == "int8 pt2e:eager"
    assert int8["gflop_per_image"] == fp32["gflop_per_image"] > 0  # the same architecture's operations
    assert int8["peak_fraction"] is None and int8["median_ms"] > 0


@pytest.mark.slow
def test_int8_directory_runs_compiled_by_default(kinds, capsys):
    """The default runtime of a PT2E program is inductor; it scores as the uncompiled graph does."""
    paths, _ = kinds
    eager, _ = _json(capsys, ["eval", paths["int8"], "--backend", "eager", "--format", "json"])
    compiled, _ = _json(capsys, ["eval", paths["int8"], "--format", "json"])
    assert abs(compiled["top1"] - eager["top1"]) <= 0.3  # oneDNN's int8 kernels may round a few logits apart
    rows, _ = _json(
        capsys, ["bench", paths["int8"], "--reps", "2", "--warmup", "1", "--quiet", "--format", "json"]
    )
    assert rows["rows"][0]["backend"] == "int8 pt2e:compile"
