"""Quantization-aware training through torchao's PT2E (prepare_qat_pt2e, X86InductorQuantizer, convert_pt2e)."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn as nn

from cnnlineage.cli import main
from cnnlineage.compress._data import load_checkpoint_data
from cnnlineage.compress.qat import freeze_batchnorm_stats, quantize_qat
from cnnlineage.compress.quantize import export_model, quantize_checkpoint


@pytest.fixture(scope="module")
def data(tiny_ckpt):
    return load_checkpoint_data(tiny_ckpt)


@pytest.fixture(scope="module")
def qat(tiny_ckpt, data, tmp_path_factory):
    """One QAT epoch of the tiny LeNet-5 through the library entry point, saved to a directory."""
    before = {k: v.clone() for k, v in data.model.state_dict().items()}
    out = tmp_path_factory.mktemp("qat") / "q"
    rec = quantize_checkpoint(tiny_ckpt, out, calib_batches=2, qat_epochs=1, progress="none", data=data)
    return rec, out, before


def _ops(gm: torch.fx.GraphModule) -> list[str]:
    return [str(n.target) for n in gm.graph.nodes if n.op == "call_function"]


def test_qat_int8_program_holds_qdq_ops_and_agrees_with_fp32(qat, data):
    rec, out, before = qat
    import torchao.quantization.pt2e.quantize_pt2e  # noqa: F401  registers the quantized_decomposed ops

    gm = torch.export.load(str(out / rec["file"])).module()
    ops = _ops(gm)
    assert sum("quantize_per_tensor" in o and "dequantize" not in o for o in ops) >= 5  # activations: uint8
    assert sum("dequantize_per_channel" in o for o in ops) == 5  # 3 conv + 2 linear weights: int8 per channel
    assert not any("fake_quantize" in o or "batch_norm" in o for o in ops)  # training-only ops are gone
    assert rec["float_layers"] == []
    int8 = [t for t in gm.state_dict().values() if t.dtype == torch.int8]
    assert len(int8) == 5
    x = torch.stack([data.test[i][0] for i in range(len(data.test))])
    with torch.no_grad():
        agree = (gm(x).argmax(1) == data.model(x).argmax(1)).float().mean()
    assert agree >= 0.9, agree  # int8 after QAT answers as fp32 on most held-out digits
    # the checkpoint's own model was not trained in place (QAT works on a copy)
    assert all(torch.equal(before[k], v) for k, v in data.model.state_dict().items())


def test_qat_record_reports_fp32_ptq_and_qat_top1_and_the_recipe(qat, data):
    rec, out, _ = qat
    q = rec["qat"]
    assert set(q["top1"]) == {"fp32", "ptq", "qat"}
    assert q["top1"]["fp32"] == pytest.approx(data.evaluate(data.model)["top1"])
    assert (
        abs(q["top1"]["qat"] - q["top1"]["fp32"]) <= 5.0 and abs(q["top1"]["ptq"] - q["top1"]["fp32"]) <= 5.0
    )
    # the run's recipe (tiny_config: adam lr 0.003, batch 64, 1,024 training images), lr x 0.01
    assert q["optimizer"] == "adam" and q["lr"] == pytest.approx(0.003 * 0.01)
    assert q["training_images"] == 1024 and q["batch_size"] == 64 and q["steps"] == 1024 // 64
    assert q["freeze_bn_step"] == round(0.3 * 16) and q["freeze_observers_step"] == round(0.4 * 16)
    assert q["batchnorm_frozen"] == 0  # LeNet-5 has no BatchNorm
    assert q["history"][0]["lr"] < q["lr"]  # the cosine has decayed
    assert json.loads((out / "quantized.json").read_text())["qat"]["top1"] == q["top1"]


def test_qat_is_reproducible(data):
    a, _ = quantize_qat(data, epochs=1, progress="none")
    b, _ = quantize_qat(data, epochs=1, progress="none")
    x = data.example(16)
    with torch.no_grad():
        assert torch.equal(a(x), b(x))


class _ConvBN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3)
        self.bn = nn.BatchNorm2d(4)
        self.fc = nn.Linear(4, 3)

    def forward(self, x):
        return self.fc(torch.relu(self.bn(self.conv(x))).mean((2, 3)))


def test_freezing_batchnorm_stops_its_running_statistics():
    """After freezing, a training-mode forward leaves running_mean/var alone and normalises with them."""
    from torchao.quantization import pt2e
    from torchao.quantization.pt2e.quantize_pt2e import prepare_qat_pt2e
    from torchao.quantization.pt2e.quantizer import x86_inductor_quantizer as xiq

    torch.manual_seed(0)
    gm = export_model(_ConvBN(), torch.randn(2, 1, 8, 8))
    q = xiq.X86InductorQuantizer().set_global(xiq.get_default_x86_inductor_quantization_config(is_qat=True))
    prepared = prepare_qat_pt2e(gm, q)
    pt2e.move_exported_model_to_train(prepared)
    stats = [b for n, b in prepared.named_buffers() if n.endswith("running_mean")]
    assert len(stats) == 1
    x = torch.randn(8, 1, 8, 8) * 3 + 2  # mean far from the initial running mean (0)
    prepared(x)
    moved = stats[0].clone()
    assert moved.abs().sum() > 0  # training mode: the batch updated the running mean
    assert freeze_batchnorm_stats(prepared) == 1
    prepared(x)
    assert torch.equal(stats[0], moved)
    assert freeze_batchnorm_stats(prepared) == 0  # nothing left to freeze


def test_qat_cli_prints_the_three_accuracies(tiny_ckpt, tmp_path, capsys):
    out = tmp_path / "q"
    assert main(["quantize", str(tiny_ckpt), "--out", str(out), "--qat-epochs", "1", "--calib-batches", "2",
                 "--no-eval"]) == 0  # fmt: skip
    text = capsys.readouterr().out
    assert "quantization-aware training: 1 epoch(s), 16 steps on 1,024 training images, adam lr 3e-05" in text
    line = next(s for s in text.splitlines() if s.startswith("held-out top-1"))
    assert "fp32" in line and "PTQ int8" in line and "QAT int8" in line
    assert (out / "model.int8.pt2").is_file()


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["--qat-epochs", "1", "--method", "onnxruntime"], "use --method pt2e"),
        (["--qat-epochs", "-1"], "--qat-epochs must be 0"),
        (["--qat-epochs", "1", "--qat-lr-mult", "2"], "multiplier must be in (0, 1]"),
    ],
)
def test_qat_bad_inputs_are_one_line_exit_2(tiny_ckpt, tmp_path, capsys, argv, needle):
    out = tmp_path / "q"
    assert main(["quantize", str(tiny_ckpt), "--out", str(out), "--no-eval", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and len(err.splitlines()) == 1, err
    assert not (out / "quantized.json").exists()


@pytest.mark.slow
def test_qat_of_a_batchnorm_network_freezes_and_folds_batchnorm(tmp_path):
    """ResNet-20: all 19 BatchNorms are frozen during QAT and folded away by convert_pt2e."""
    from _tiny import tiny_config

    from cnnlineage.train import train

    cfg = tiny_config(tmp_path / "r20", epochs=1, model={"name": "resnet20", "kwargs": {}})
    cfg["data"].update(train_subset=256, image_size=28)
    train(cfg, log=lambda *_: None)
    data = load_checkpoint_data(tmp_path / "r20" / "checkpoints" / "best.pt")
    gm, info = quantize_qat(data, epochs=1, progress="none")
    assert info["qat"]["batchnorm_frozen"] == 19
    ops = _ops(gm)
    assert not any("batch_norm" in o for o in ops)
    assert sum("dequantize_per_channel" in o for o in ops) == 20  # 19 convolutions and the classifier
    assert info["float_layers"] == []
