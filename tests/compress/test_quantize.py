"""int8 quantization: PT2E with X86InductorQuantizer and ONNX Runtime's static quantization (QOperator and QDQ)."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn as nn

from cnnlineage.cli import main
from cnnlineage.compress._data import load_checkpoint_data
from cnnlineage.compress.quantize import (
    _calibrate,
    evaluate_quantized,
    export_model,
    quantize_checkpoint,
    quantize_pt2e,
)


@pytest.fixture(scope="module")
def data(tiny_ckpt):
    return load_checkpoint_data(tiny_ckpt)


@pytest.fixture(scope="module")
def int8(data):
    return quantize_pt2e(data.model, example=data.example(2), batches=list(data.batches(4)))


def test_pt2e_int8_agrees_with_fp32_on_held_out_predictions(data, int8):
    gm, info = int8
    assert info["calibration_images"] == 4 * 32
    assert info["float_layers"] == []  # every conv and linear of LeNet-5 has an int8 pattern
    x = torch.stack([data.test[i][0] for i in range(len(data.test))])
    with torch.no_grad():
        fp32, q = data.model(x).argmax(1), gm(x).argmax(1)
    assert (fp32 == q).float().mean() >= 0.97
    assert data.evaluate(data.model)["top1"] > 75.0  # the checkpoint learned something (chance: 10%)


def test_pt2e_weights_are_symmetric_per_channel_int8(data, int8):
    """The stored int8 weights of c1 are round(w / s) with s = max|w| / 127.5 per output channel (hand calc)."""
    gm, _ = int8
    w = data.model.c1.weight.detach()
    scale = w.abs().flatten(1).amax(1) / 127.5
    expected = torch.clamp(torch.round(w / scale.view(-1, 1, 1, 1)), -128, 127).to(torch.int8)
    stored = [
        t for t in list(gm.parameters()) + list(gm.buffers()) if t.dtype == torch.int8 and t.shape == w.shape
    ]
    assert len(stored) == 1
    assert (stored[0].int() - expected.int()).abs().max() <= 1  # observers round the scale in float32
    assert (stored[0] == expected).float().mean() > 0.98
    assert not any(
        t.dtype == torch.float32 and t.shape == w.shape for t in gm.parameters()
    )  # float copy dropped


def test_quantized_directory_round_trips_through_eval(tiny_ckpt, data, tmp_path, capsys):
    rec = quantize_checkpoint(tiny_ckpt, tmp_path / "q", calib_batches=3, data=data)
    assert (
        json.loads((tmp_path / "q" / "quantized.json").read_text())["file"] == rec["file"] == "model.int8.pt2"
    )
    r = evaluate_quantized(tmp_path / "q", compile=False)
    assert abs(r["top1"] - data.evaluate(data.model)["top1"]) <= 3.0
    assert (tmp_path / "q" / "model.int8.pt2").stat().st_size < tiny_ckpt.stat().st_size


def test_empty_calibration_set_is_refused():
    with pytest.raises(ValueError, match="calibration set is empty"):
        _calibrate(lambda x: x, [])


class _Branchy(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3)
        self.gate = _DataDependent()

    def forward(self, x):
        return self.gate(self.conv(x))


class _DataDependent(nn.Module):
    def forward(self, x):
        if x.sum() > 0:  # control flow on a value: torch.export cannot capture it
            return x
        return -x


def test_unexportable_model_names_the_module():
    with pytest.raises(ValueError, match=r"module 'gate'"):
        export_model(_Branchy(), torch.randn(2, 1, 8, 8))


def test_cli_bad_inputs_exit_2_and_write_nothing(tiny_ckpt, tmp_path, capsys):
    out = tmp_path / "q"
    assert main(["quantize", str(tiny_ckpt), "--out", str(out), "--calib-batches", "0"]) == 2
    assert "calib-batches" in capsys.readouterr().err and not out.exists()
    bogus = tmp_path / "bogus.pt"
    torch.save({"model_name": "no_such_net", "config": {}, "model": {}}, bogus)
    assert main(["quantize", str(bogus), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "no_such_net" in err and "not registered" in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


@pytest.mark.slow
@pytest.mark.parametrize("fmt, int8_op", [("qoperator", "QLinearConv"), ("qdq", "DequantizeLinear")])
def test_onnxruntime_int8_agrees_with_fp32_and_is_a_quarter_of_its_size(
    tiny_ckpt, data, tmp_path, fmt, int8_op
):
    onnx = pytest.importorskip("onnx")
    out = tmp_path / "ort"
    rec = quantize_checkpoint(
        tiny_ckpt, out, method="onnxruntime", calib_batches=3, data=data, onnx_format=fmt
    )
    assert rec["float_layers"] == [] and rec["onnx_format"] == fmt
    r = evaluate_quantized(out)
    assert abs(r["top1"] - data.evaluate(data.model)["top1"]) <= 3.0
    proto = onnx.load(str(out / rec["file"]))
    ops = {n.op_type for n in proto.graph.node}
    assert int8_op in ops and ("Conv" not in ops if fmt == "qoperator" else "Conv" in ops)
    # the exporter's per-node stack traces are stripped: they were a third of a small int8 file
    assert not any(n.metadata_props for n in proto.graph.node) and not proto.graph.value_info
    # LeNet-5: 60,850 fp32 parameters, 4 bytes each; int8 keeps 1 byte per weight plus int32 biases and scales
    fp32_bytes = (out / "model.fp32.onnx").stat().st_size
    assert fp32_bytes > 4 * 60_000
    ratio = fp32_bytes / (out / rec["file"]).stat().st_size
    assert ratio > (3.5 if fmt == "qoperator" else 3.2), ratio


def test_onnx_format_needs_the_onnxruntime_method(tiny_ckpt, tmp_path, capsys):
    out = tmp_path / "q"
    assert main(["quantize", str(tiny_ckpt), "--out", str(out), "--onnx-format", "qdq"]) == 2
    err = capsys.readouterr().err
    assert "--onnx-format applies to --method onnxruntime" in err and len(err.strip().splitlines()) == 1
    assert not out.exists()
