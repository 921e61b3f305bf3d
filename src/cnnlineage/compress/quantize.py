"""Post-training static int8 quantization of a trained checkpoint, two ways.

``pt2e`` — the current PyTorch path: ``torch.export`` captures the network as an ATen graph,
torchao's PT2E (``prepare_pt2e`` → calibrate → ``convert_pt2e``) inserts quantize/dequantize
pairs where ``X86InductorQuantizer`` has an int8 pattern (conv, linear, their fused ReLU,
pooling and additions between quantized tensors; weights symmetric per output channel,
activations asymmetric per tensor, uint8), and inductor with ``freezing`` fuses each
dequantize → op → quantize into one int8 kernel (oneDNN) when the program is compiled.
``torch.ao.quantization`` (eager/FX) is deprecated and not used.

``onnxruntime`` — the model exported to ONNX (``torch.onnx.export``) and quantized by ONNX
Runtime's ``quantize_static`` (per-channel weights with ``per_channel``), calibrated with
min/max on the same batches. ``onnx_format="qoperator"`` (the default) writes ONNX Runtime's
integer operators (``QLinearConv``, ``QGemm``): the smallest file, for ONNX Runtime itself.
``"qdq"`` writes float operators between QuantizeLinear/DequantizeLinear pairs, the portable
form other runtimes (TensorRT, OpenVINO) read. Both run equally fast in ONNX Runtime here; on
a 61,706-parameter LeNet the QDQ file is 8% larger (72.9 vs 67.6 KB) for its extra nodes.

Both calibrate on N batches of the run's own training split (test-time transform) and are
scored on the held-out split. The artifact is a directory: ``quantized.json`` (the source
checkpoint's metadata, the method, the files) with ``model.int8.pt2`` (a serialized
``torch.export`` program) or ``model.int8.onnx``; ``cnnlineage eval DIR`` evaluates it.
"""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from ..common import atomic_path, atomic_write_bytes, atomic_write_text, strip_onnx_debug_info
from ._data import CheckpointData, load_checkpoint_data
from .pt2e import (  # noqa: F401  re-exported: part of this module's interface
    _batch_dim,
    _calibrate,
    export_model,
    float_layers_pt2e,
    quantize_pt2e,
)

__all__ = [
    "FORMAT",
    "METHODS",
    "QuantizedModel",
    "evaluate_quantized",
    "float_layers_pt2e",
    "load_quantized",
    "quantize_onnxruntime",
    "quantize_pt2e",
]

FORMAT = "cnnlineage-quantized-v1"
METHODS = ("pt2e", "onnxruntime")
ONNX_FORMATS = ("qoperator", "qdq")


def save_pt2(gm: torch.fx.GraphModule | nn.Module, example: torch.Tensor, path: str | Path) -> Path:
    """Write ``gm`` as a torch.export program (dynamic batch) to ``path`` atomically; return the path.

    Per-node debugging metadata (source stack traces, provenance) is dropped: it is a fifth
    of the file and inference does not read it.
    """
    ep = torch.export.export(gm, (example,), dynamic_shapes=(_batch_dim(),))
    for node in ep.graph.nodes:
        for key in ("stack_trace", "source_fn_stack", "torch_fn", "from_node", "seq_nr"):
            node.meta.pop(key, None)
    buf = io.BytesIO()
    torch.export.save(ep, buf)
    return atomic_write_bytes(path, buf.getvalue())


def export_onnx(model: nn.Module, example: torch.Tensor, path: str | Path) -> Path:
    """Write ``model`` as one self-contained ONNX file (input "input", dynamic batch) atomically; return the path."""
    model.eval()
    with atomic_path(path) as tmp, contextlib.redirect_stdout(io.StringIO()):
        prog = torch.onnx.export(
            model, (example,), input_names=["input"], output_names=["logits"],
            dynamic_shapes=({0: torch.export.Dim("batch")},), dynamo=True, optimize=True,
        )  # fmt: skip
        strip_onnx_debug_info(prog.model)
        prog.save(str(tmp), external_data=False)
    return Path(path)


def quantize_onnxruntime(
    fp32_onnx: str | Path,
    out: str | Path,
    *,
    batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
    per_channel: bool = True,
    onnx_format: str = "qoperator",
) -> dict[str, Any]:
    """Write ONNX Runtime's static int8 model of ``fp32_onnx`` to ``out``; return {"calibration_images", "float_layers", ...}.

    ``onnx_format``: "qoperator" (integer operators) or "qdq" (quantize/dequantize pairs); see the module docstring.
    """
    import onnx
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    if onnx_format not in ONNX_FORMATS:
        raise ValueError(f"--onnx-format must be one of {', '.join(ONNX_FORMATS)}; got {onnx_format!r}")
    feeds = [{"input": x.numpy()} for x, _ in batches]
    if not feeds:
        raise ValueError("the calibration set is empty: the checkpoint's training split has no images")

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.it = iter(feeds)

        def get_next(self) -> dict | None:
            return next(self.it, None)

    fmt = QuantFormat.QOperator if onnx_format == "qoperator" else QuantFormat.QDQ
    with atomic_path(out) as tmp:
        quantize_static(
            str(fp32_onnx), str(tmp), Reader(), quant_format=fmt, per_channel=per_channel,
            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
        )  # fmt: skip
        proto = onnx.load(str(tmp))
        proto.graph.ClearField(
            "value_info"
        )  # shape annotations from calibration; ONNX Runtime infers them again
        onnx.save(proto, str(tmp))
    graph = proto.graph
    made_by = {o: n for n in graph.node for o in n.output}
    floats = []
    for n in graph.node:
        if n.op_type in ("Conv", "Gemm", "MatMul", "ConvTranspose"):
            src = [made_by.get(i) for i in n.input[:2]]
            # QOperator: a float Conv/Gemm left in the graph is unquantized; QDQ: its inputs must come from dequantize nodes
            if onnx_format == "qoperator" or not all(
                s is not None and s.op_type == "DequantizeLinear" for s in src
            ):
                floats.append({"layer": n.name, "op": n.op_type, "why": "ONNX Runtime left it unquantized"})
    from onnx import numpy_helper

    def weight_bytes(g) -> int:
        return sum(numpy_helper.to_array(t).nbytes for t in g.initializer)

    return {
        "onnx_format": onnx_format,
        "calibration_images": sum(len(f["input"]) for f in feeds),
        "weight_bytes": weight_bytes(graph),
        "fp32_weight_bytes": weight_bytes(onnx.load(str(fp32_onnx)).graph),
        "float_layers": floats,
    }


class QuantizedModel:
    """A quantized artifact loaded for inference: call it on a (B, C, H, W) batch; ``meta`` as a checkpoint's."""

    def __init__(self, directory: str | Path, *, compile: bool = True, threads: int = 0) -> None:
        self.dir = Path(directory)
        info_path = self.dir / "quantized.json"
        if not info_path.is_file():
            raise ValueError(
                f"{self.dir} is not a quantized model directory (no quantized.json); make one with `cnnlineage quantize`"
            )
        self.info = json.loads(info_path.read_text())
        if self.info.get("format") != FORMAT:
            raise ValueError(f"{info_path} has format {self.info.get('format')!r}; expected {FORMAT!r}")
        self.meta = self.info["meta"]
        self.method = self.info["method"]
        path = self.dir / self.info["file"]
        if self.method == "pt2e":
            import torchao.quantization.pt2e.quantize_pt2e  # noqa: F401  registers quantized_decomposed ops

            gm = torch.export.load(str(path)).module()
            self.fn = _compile(gm) if compile else gm
        else:
            import onnxruntime as ort

            so = ort.SessionOptions()
            if threads:
                so.intra_op_num_threads = threads
            sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
            self.fn = lambda x: torch.from_numpy(sess.run(None, {"input": x.numpy()})[0])

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return self.fn(x)


def _compile(gm: nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
    """Return ``gm`` compiled by inductor with freezing (constant weights folded into int8 oneDNN kernels)."""
    import torch._inductor.config as inductor_config

    compiled = torch.compile(gm)

    def run(x: torch.Tensor) -> torch.Tensor:
        with inductor_config.patch(freezing=True), torch.no_grad():
            return compiled(x)

    return run


def load_quantized(directory: str | Path, *, compile: bool = True, threads: int = 0) -> QuantizedModel:
    """Return the quantized model saved in ``directory`` by :func:`quantize_checkpoint` (``threads``: ONNX Runtime's)."""
    return QuantizedModel(directory, compile=compile, threads=threads)


def evaluate_quantized(directory: str | Path, *, compile: bool = True) -> dict[str, Any]:
    """Return held-out loss, top-1, top-5, per-class accuracy of the quantized model in ``directory``."""
    q = load_quantized(directory, compile=compile)
    data = load_checkpoint_data(q.info["checkpoint"])
    out = data.evaluate(q)
    out.update(model=f"{q.meta['model_name']} (int8, {q.method})", dataset=data.meta["config"]["data"]["name"],
               split="test", classes=list(data.meta.get("classes") or []))  # fmt: skip
    return out


def quantize_checkpoint(
    checkpoint: str | Path,
    out: str | Path,
    *,
    method: str = "pt2e",
    calib_batches: int = 10,
    batch_size: int = 32,
    per_channel: bool = True,
    onnx_format: str | None = None,
    qat_epochs: int = 0,
    qat_lr_mult: float | None = None,
    progress: str = "auto",
    log: Callable[[str], None] = lambda s: None,
    data: CheckpointData | None = None,
) -> dict[str, Any]:
    """Return the quantization record after writing ``out``/quantized.json and the int8 model file.

    ``qat_epochs`` > 0 (PT2E only): quantization-aware training (:mod:`.qat`) after PTQ; the
    record's ``qat.top1`` holds the held-out top-1 of fp32, PTQ int8 and QAT int8 measured in
    this run, and the saved model is the QAT one.
    """
    if method not in METHODS:
        raise ValueError(f"--method must be one of {', '.join(METHODS)}; got {method!r}")
    if calib_batches < 1:
        raise ValueError(f"--calib-batches must be at least 1; got {calib_batches}")
    if qat_epochs < 0:
        raise ValueError(f"--qat-epochs must be 0 (off) or a positive number of epochs; got {qat_epochs}")
    if qat_lr_mult is not None and not 0 < qat_lr_mult <= 1:
        raise ValueError(
            f"--qat-lr-mult: the QAT learning-rate multiplier must be in (0, 1]; got {qat_lr_mult}"
        )
    if onnx_format is not None and method != "onnxruntime":
        raise ValueError(f"--onnx-format applies to --method onnxruntime; got --method {method}")
    onnx_format = onnx_format or "qoperator"
    if onnx_format not in ONNX_FORMATS:
        raise ValueError(f"--onnx-format must be one of {', '.join(ONNX_FORMATS)}; got {onnx_format!r}")
    if qat_epochs and method != "pt2e":
        raise ValueError(
            f"--qat-epochs runs through torchao's PT2E; use --method pt2e (got --method {method})"
        )
    data = data or load_checkpoint_data(checkpoint)
    out = Path(out)
    example = data.example(2)
    if len(data.train) == 0:
        raise ValueError(f"the calibration set is empty: {checkpoint}'s training split has no images")
    batches = list(data.batches(calib_batches, batch_size=batch_size))
    if method == "pt2e":
        gm, info = quantize_pt2e(data.model, example=example, batches=batches)
        if qat_epochs:
            from .qat import LR_MULT, evaluate_graph, quantize_qat

            log(f"{data.meta['model_name']}: held-out top-1 of fp32 and PTQ int8 ...")
            top1 = {"fp32": data.evaluate(data.model)["top1"], "ptq": evaluate_graph(data, gm)["top1"]}
            gm, qinfo = quantize_qat(
                data, epochs=qat_epochs, lr_mult=qat_lr_mult or LR_MULT, progress=progress, log=log
            )
            top1["qat"] = evaluate_graph(data, gm)["top1"]
            qinfo["qat"]["top1"] = top1
            qinfo["qat"]["held_out_images"] = len(data.test)
            info.update(qinfo)  # the saved program is the QAT one; calibration_images stays PTQ's
        file = "model.int8.pt2"
        out.mkdir(parents=True, exist_ok=True)
        save_pt2(gm, example, out / file)
    else:
        file = "model.int8.onnx"
        out.mkdir(parents=True, exist_ok=True)
        fp32 = export_onnx(data.model, example, out / "model.fp32.onnx")
        info = quantize_onnxruntime(
            fp32, out / file, batches=batches, per_channel=per_channel, onnx_format=onnx_format
        )
    record = {
        "format": FORMAT,
        "method": method,
        "checkpoint": str(Path(checkpoint).resolve()),
        "file": file,
        "per_channel": True if method == "pt2e" else per_channel,
        "calib_batches": calib_batches,
        **info,
        "meta": data.base_checkpoint(),
    }
    atomic_write_text(out / "quantized.json", json.dumps(record, indent=2) + "\n")
    return record
