"""`cnnlineage bench` on a tiny model: the documented JSON fields, the files of --out, bad input."""

from __future__ import annotations

import csv
import json

import pytest
import torch

from cnnlineage.analysis import profile
from cnnlineage.cli import main
from cnnlineage.deploy.bench import check_clock, median_ci
from cnnlineage.deploy.peak import measure_peak

FIELDS = {
    "model", "backend", "mode", "batch", "input", "reps", "median_ms", "p90_ms", "images_per_s",
    "gflop_per_image", "gflop_per_s", "peak_fraction", "peak_rss_mb", "baseline", "baseline_median_ms", "ratio", "clock",
    "speedup_vs", "speedup", "ratio_low", "ratio_high", "paired_ratios",
}  # fmt: skip


def test_bench_json_has_the_documented_fields(tmp_path, capsys, monkeypatch):
    import functools

    import cnnlineage.deploy.peak as peak_mod

    monkeypatch.setattr(peak_mod, "measure_peak", functools.partial(measure_peak, sizes=(128,), reps=2))
    out = tmp_path / "b"
    argv = [
        "bench",
        "lenet5",
        "--batch",
        "1,2",
        "--backend",
        "eager,channels_last",
        "--reps",
        "3",
        "--warmup",
        "1",
    ]
    assert main([*argv, "--train", "--peak", "--format", "json", "--quiet", "--out", str(out)]) == 0
    doc = json.loads(capsys.readouterr().out)  # informational lines go to stderr
    rows, peak = doc["rows"], doc["peak"]
    assert peak["fp32"]["gflops"] > 0 and peak["fp32"]["threads"] >= 1
    assert len(rows) == 2 * 2 and {r["mode"] for r in rows} == {"train"}
    fwd = profile("lenet5").total_flops / 1e9  # the analyzer's count at 1x32x32
    for r in rows:
        assert set(r) == FIELDS and r["reps"] == 3 and r["input"] == "1x32x32"
        assert r["p90_ms"] >= r["median_ms"] > 0
        assert r["images_per_s"] == pytest.approx(r["batch"] / r["median_ms"] * 1e3)
        assert r["gflop_per_image"] == pytest.approx(3 * fwd)  # forward + backward
        assert r["gflop_per_s"] == pytest.approx(r["gflop_per_image"] * r["images_per_s"])
        assert r["peak_fraction"] == pytest.approx(r["gflop_per_s"] / peak["fp32"]["gflops"])
        assert r["peak_rss_mb"] > 10
    for r in rows:  # each batch's backends are timed together; the second is compared with the first
        first = r["backend"] == "eager"
        assert (r["speedup_vs"], r["speedup"] is None) == ((None, True) if first else ("eager", False))
    assert json.loads((out / "bench.json").read_text())["rows"] == rows
    with open(out / "bench.csv") as f:
        table = list(csv.DictReader(f))
    assert [r["backend"] for r in table] == [r["backend"] for r in rows]
    assert set(table[0]) == FIELDS - {"paired_ratios"}  # the list stays in the JSON
    assert (out / "bench_latency.png").read_bytes()[:4] == b"\x89PNG"


def test_backends_are_interleaved_and_paired(monkeypatch, capsys):
    # A fake clock that each step advances by its backend's cost: eager 3 s, channels_last 1 s, with a load
    # that doubles every cost on odd repetitions. Paired ratios stay exactly 3 while the medians move.
    import types

    import cnnlineage.deploy.bench as bench_mod

    clock = {"t": 0.0, "calls": []}
    cost = {"eager": 3.0, "channels_last": 1.0}

    def fake_step(model, backend, **kw):  # noqa: ANN001, ANN003
        def step() -> None:
            clock["calls"].append(backend)
            load = 2.0 if (len(clock["calls"]) - 1) // 2 % 2 else 1.0  # one repetition = both backends
            clock["t"] += cost[backend] * load

        return step

    monkeypatch.setattr(bench_mod, "_step_fn", fake_step)
    monkeypatch.setattr(bench_mod, "time", types.SimpleNamespace(perf_counter=lambda: clock["t"]))
    argv = ["bench", "lenet5", "--backend", "eager,channels_last", "--reps", "4", "--warmup", "0"]
    assert main([*argv, "--format", "json", "--quiet"]) == 0
    eager, cl = json.loads(capsys.readouterr().out)["rows"]
    # repetitions alternate the order: eager first, then channels_last first, ...
    assert clock["calls"] == ["eager", "channels_last", "channels_last", "eager"] * 2
    assert (eager["backend"], cl["backend"]) == ("eager", "channels_last")
    assert eager["median_ms"] == pytest.approx(4500.0) and cl["median_ms"] == pytest.approx(1500.0)
    assert cl["speedup_vs"] == "eager" and cl["speedup"] == pytest.approx(3.0)
    assert eager["speedup"] is None


@pytest.fixture
def keep_threads():
    n = torch.get_num_threads()
    yield
    torch.set_num_threads(n)


def test_vs_torchvision_reports_an_interleaved_ratio(capsys, keep_threads):
    argv = [
        "bench",
        "--threads",
        "1",
        "alexnet",
        "--input",
        "3x63x63",
        "--reps",
        "2",
        "--warmup",
        "0",
        "--vs",
        "torchvision",
        "--clock",
        "cpu",
    ]
    assert main([*argv, "--format", "json", "--quiet"]) == 0
    (row,) = json.loads(capsys.readouterr().out)["rows"]
    assert row["baseline"] == "torchvision" and row["ratio"] > 0 and row["baseline_median_ms"] > 0
    assert len(row["paired_ratios"]) == 2 and row["ratio"] == pytest.approx(sum(row["paired_ratios"]) / 2)
    assert row["mode"] == "infer" and row["gflop_per_image"] > 0 and row["clock"] == "cpu"


@pytest.mark.parametrize("name", ["mobilenet_v2", "mnasnet0_5"])  # same module names; renamed keys
def test_the_torchvision_twin_computes_with_our_weights(name):
    from cnnlineage.deploy.bench import _torchvision_twin
    from cnnlineage.registry import create_model

    torch.manual_seed(0)
    ours = create_model(name, num_classes=10).eval()
    twin = _torchvision_twin(ours).eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(twin(x), ours(x), rtol=0, atol=0)
    # a one-channel model cannot lend its stem to torchvision's three-channel one: the twin keeps its own
    gray = create_model("mobilenet_v2", num_classes=10, in_chans=1)
    assert _torchvision_twin(gray).features[0][0].weight.shape[1] == 3


def test_median_confidence_interval_by_hand():
    # n = 10: P(Bin(10, 1/2) <= 1) = 11/1024 = 1.07 % <= 2.5 % < P(<= 2) = 56/1024 = 5.5 %,
    # so the 2nd and 9th smallest values bound the median (coverage 1 - 2 x 11/1024 = 97.9 %).
    xs = [1.04, 0.97, 1.01, 0.99, 1.10, 0.95, 1.00, 1.02, 0.98, 1.03]
    assert median_ci(xs) == (0.97, 1.04)
    # n = 6: P(<= 0) = 1/64 = 1.6 % <= 2.5 % < P(<= 1) = 7/64: the extremes.
    assert median_ci([3.0, 1.0, 2.0, 6.0, 5.0, 4.0]) == (1.0, 6.0)
    # n = 5: P(<= 0) = 1/32 = 3.1 % > 2.5 %: no interval reaches 95 %.
    assert median_ci([1.0, 2.0, 3.0, 4.0, 5.0]) is None
    # n = 20: P(<= 5) = 2.07 % <= 2.5 % < P(<= 6) = 5.8 %: the 6th and 15th.
    assert median_ci([float(v) for v in range(20, 0, -1)]) == (6.0, 15.0)


def test_gemm_peak_is_a_plausible_rate():
    p = measure_peak(sizes=(64, 128), reps=2)
    assert set(p["by_size"]) == {64, 128} and p["gflops"] == max(p["by_size"].values()) > 0.01


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["lenet5", "--batch", "0"], "--batch must be positive integers"),
        (["lenet5", "--batch", "1,x"], "--batch must be comma-separated integers"),
        (["lenet5", "--reps", "1000000000"], "--reps must be between 1 and 10,000"),
        (["lenet5", "--reps", "0"], "--reps must be between 1 and 10,000"),
        (["lenet5", "--backend", "tensorrt"], "--backend must be among"),
        (["lenet5", "--backend", "onnxruntime", "--train"], "onnxruntime runs inference only"),
        (["lenet5", "--vs", "torchvision"], "lenet5 has no torchvision twin"),
        (["lenet5", "--input", "3x32"], "--input must be CxHxW"),
        (["nothere.pt"], "does not exist"),
        ([], "give at least one MODEL_OR_CHECKPOINT"),
        # refused before the GEMM peak is measured (its lines would precede the error)
        (["lenet5", "--reps", "0", "--peak"], "--reps must be between 1 and 10,000"),
        (["nothere.pt", "--peak"], "does not exist"),
        (["lenet5", "--backend", "onnxruntime", "--train", "--peak"], "onnxruntime runs inference only"),
    ],
)
def test_bad_input_is_one_line_exit_2(argv, needle, capsys):
    assert main(["bench", *argv, "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and "\n" not in err


def test_cpu_clock_on_several_threads_is_refused(capsys, keep_threads, tmp_path):
    out = tmp_path / "out"
    assert main(["bench", "lenet5", "--clock", "cpu", "--threads", "2", "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert "--clock cpu needs --threads 1 (this run has 2)" in err and "\n" not in err
    assert not out.exists()
    with pytest.raises(ValueError, match="needs --threads 1"):
        check_clock("cpu")  # the library refuses it too (2 threads still set here)
    torch.set_num_threads(1)
    check_clock("cpu")


def test_missing_backend_package_names_it(monkeypatch, capsys):
    import builtins

    real = builtins.__import__

    def no_ort(name, *a, **k):
        if name == "onnxruntime":
            raise ImportError("No module named 'onnxruntime'", name="onnxruntime")
        return real(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", no_ort)
    assert main(["bench", "perceptron", "--backend", "onnxruntime", "--reps", "1", "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert "pip install onnxruntime" in err and "\n" not in err
