"""Run an exported ``.onnx`` file with ONNX Runtime, reading what it needs from the file's own metadata.

:class:`OnnxModel` wraps an ``onnxruntime.InferenceSession`` in an ``nn.Module`` shell
(tensors in, tensors out) so the same evaluation loop serves PyTorch and ONNX Runtime;
no cnnlineage model code is involved. ONNX Runtime does the heavy lifting.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from .export import missing_package

__all__ = ["REQUIRED_METADATA", "OnnxModel", "read_onnx_metadata"]

# What inference needs from the file: which model, which classes, what input, how to normalise.
REQUIRED_METADATA = ("model_name", "class_names", "input_size", "mean", "std")


def _ort():
    try:
        import onnxruntime
    except ImportError:
        raise missing_package("onnxruntime", "running an ONNX model") from None
    return onnxruntime


def _decode(v: str) -> Any:
    try:
        return json.loads(v)
    except json.JSONDecodeError:
        return v


def read_onnx_metadata(session: Any, path: str | Path) -> dict[str, Any]:
    """Return the cnnlineage metadata of an ONNX session; ValueError naming what is missing."""
    raw = session.get_modelmeta().custom_metadata_map
    meta = {k: _decode(v) for k, v in raw.items()}
    missing = [k for k in REQUIRED_METADATA if k not in meta]
    if missing:
        raise ValueError(
            f"{path} lacks the metadata {', '.join(missing)} that inference needs; "
            "export it with `cnnlineage export MODEL_OR_CHECKPOINT --format onnx --out FILE`"
        )
    meta.setdefault("num_classes", len(meta["class_names"]))
    meta.setdefault("dataset", "")
    return meta


class OnnxModel(nn.Module):
    """An ONNX Runtime session behind ``forward(x) -> logits``; ``meta`` holds the file's metadata."""

    def __init__(
        self, path: str | Path | bytes, *, threads: int | None = None, require_metadata: bool = True
    ) -> None:
        super().__init__()
        ort = _ort()
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads or torch.get_num_threads()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # Idle pool threads sleep instead of spinning: spinning ones take the cores from PyTorch
        # work in the same process (bench interleaves the backends; eager ran 2.8x slower beside it).
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        src = path if isinstance(path, bytes) else str(path)
        if not isinstance(path, bytes) and not Path(path).is_file():
            raise ValueError(f"ONNX file {path} does not exist")
        try:
            self.session = ort.InferenceSession(src, opts, providers=["CPUExecutionProvider"])
        except Exception as e:  # noqa: BLE001 - onnxruntime's own exception types
            first = (str(e).strip().splitlines() or [""])[0][:200]
            raise ValueError(
                f"{path if not isinstance(path, bytes) else 'model'} is not a valid ONNX file: {first}"
            ) from None
        inp = self.session.get_inputs()[0]
        self.input_name = inp.name
        self.static_batch = inp.shape[0] if isinstance(inp.shape[0], int) else None
        label = "model" if isinstance(path, bytes) else path
        self.meta = read_onnx_metadata(self.session, label) if require_metadata else {}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.detach().float().cpu().contiguous()
        step = self.static_batch or len(x)  # a fixed-batch export runs in chunks of its batch
        outs = [
            torch.from_numpy(self.session.run(None, {self.input_name: x[i : i + step].numpy()})[0])
            for i in range(0, len(x), step)
        ]
        return torch.cat(outs) if len(outs) > 1 else outs[0]
