"""Export a model to ONNX, TorchScript or a saved ``torch.export`` program, verified and self-describing.

ONNX goes through PyTorch's current exporter (``torch.onnx.export(..., dynamo=True)``:
``torch.export`` captures the graph, ``onnxscript`` translates it); ONNX Runtime runs the
file for verification. Every export is checked before it is written: the exported artefact
and the PyTorch model see the same batch, and the export fails when

    max |exported − PyTorch| > 1e-4 · max(1, max |PyTorch|)     (fp32)

The metadata that inference needs (class names, input size, normalisation mean/std,
model name, data set, source checkpoint) is embedded in the file: ONNX ``metadata_props``,
or a ``cnnlineage.json`` extra file in TorchScript and exported-program archives.
"""

from __future__ import annotations

import json
import re
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from ..common import atomic_path, strip_onnx_debug_info

__all__ = [
    "FORMATS",
    "TOLERANCE",
    "ExportResult",
    "export_model",
    "exporter_reason",
    "missing_package",
    "verify_tolerance",
]

FORMATS = ("onnx", "torchscript", "exported-program")
TOLERANCE = 1e-4  # fp32: max abs difference, scaled by the logits' magnitude when it exceeds 1
META_FILE = "cnnlineage.json"  # extra file in TorchScript / exported-program archives
SUFFIXES = {"onnx": ".onnx", "torchscript": ".pt", "exported-program": ".pt2"}


@dataclass
class ExportResult:
    """What :func:`export_model` wrote and how closely the export matches PyTorch."""

    path: str
    format: str
    max_abs_diff: float  # max |exported - PyTorch| on the verification batch
    tolerance: float  # the bound it had to meet
    seconds: float  # export and verification time
    metadata: dict[str, Any]


def missing_package(package: str, what: str) -> ValueError:
    """Return the one-line error for an optional package that is not installed."""
    return ValueError(
        f"{what} needs the Python package {package!r}, which is not installed; "
        f"install it with `pip install {package}` (or `pip install 'cnnlineage[deploy]'`)"
    )


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def exporter_reason(e: BaseException, limit: int = 300) -> str:
    """Return one line saying why an exporter failed: the root cause where the message names one.

    The ONNX exporter's message opens with advice for PyTorch developers ("Next steps: ...") in
    terminal colours and names the failing operation under "## Exception summary"; the first
    ``<class ...>`` line there is the root cause.
    """
    text = _ANSI.sub("", str(e)).strip()
    lines = [ln.strip() for ln in text.splitlines()]
    if "## Exception summary" in lines:
        for ln in lines[lines.index("## Exception summary") + 1 :]:
            m = re.match(r"<class '([\w.]+)'>: (.+)", ln)
            if m:
                return f"{m.group(1).rsplit('.', 1)[-1]}: {m.group(2)}"[:limit]
    first = lines[0] if lines else ""
    first = re.sub(r"\s*Next steps:\s*$", "", first)
    return f"{type(e).__name__}: {first}"[:limit]


def verify_tolerance(reference: torch.Tensor) -> float:
    """Return the largest max-abs difference accepted against ``reference`` logits (fp32)."""
    return TOLERANCE * max(1.0, float(reference.abs().max()))


def _example(meta: dict[str, Any], batch: int, seed: int = 0) -> torch.Tensor:
    # Standard-normal pixels are what normalised images look like to the first layer.
    g = torch.Generator().manual_seed(seed)
    return torch.randn((batch, *meta["input_size"]), generator=g)


def export_model(
    model: nn.Module,
    *,
    meta: dict[str, Any],
    out: str | Path,
    format: str = "onnx",
    dynamic_batch: bool = False,
    opset: int | None = None,
    optimize: bool = True,
) -> ExportResult:
    """Return the :class:`ExportResult` after writing ``model`` to ``out`` (atomically) and verifying it.

    ``meta`` is the metadata from :func:`~cnnlineage.deploy.source.load_source`; its
    ``input_size`` fixes the traced input. ``dynamic_batch`` makes the batch dimension
    symbolic (verified at batch 3 after tracing at batch 2). Raises ValueError naming the
    model and the reason when it cannot be exported or the export does not match.
    """
    if format not in FORMATS:
        raise ValueError(f"--format must be one of {', '.join(FORMATS)}, got {format!r}")
    if opset is not None and format != "onnx":
        raise ValueError(f"--opset applies to ONNX only, not {format}")
    if opset is not None and not 7 <= opset <= 30:
        raise ValueError(
            f"--opset must be an ONNX opset between 7 and 30 (default: the exporter's), got {opset}"
        )
    out = Path(out)
    if not out.parent.is_dir():
        raise ValueError(f"cannot write {out}: directory {out.parent} does not exist")
    model = model.eval()
    name = meta["model_name"]
    t0 = time.perf_counter()
    x = _example(meta, 2 if dynamic_batch else 1)
    check = _example(meta, 3, seed=1) if dynamic_batch else x
    with torch.no_grad():
        ref = model(check)
    meta = {
        **meta,
        "export_format": format,
        "dynamic_batch": dynamic_batch,
        "torch_version": torch.__version__,
    }
    writer = {"onnx": _write_onnx, "torchscript": _write_torchscript, "exported-program": _write_program}[
        format
    ]
    with atomic_path(out) as tmp:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                got, meta = writer(
                    model, x, check, tmp, meta, dynamic_batch=dynamic_batch, opset=opset, optimize=optimize
                )
        except ValueError:
            raise
        except Exception as e:  # noqa: BLE001 - any exporter failure becomes one line naming the model
            others = ", ".join(f for f in FORMATS if f != format)
            raise ValueError(
                f"{name} cannot be exported to {format}: {exporter_reason(e)}. Try another --format ({others})"
            ) from None
        diff = float((got.float() - ref.float()).abs().max())
        tol = verify_tolerance(ref)
        if not diff <= tol:  # also catches NaN
            raise ValueError(
                f"{name} exported to {format} does not match PyTorch: max abs difference {diff:.3g} > "
                f"tolerance {tol:.3g}; nothing was written"
            )
    return ExportResult(str(out), format, diff, tol, time.perf_counter() - t0, meta)


def _batch_dim(dynamic: bool) -> tuple | None:
    return ({0: torch.export.Dim("batch", min=1, max=4096)},) if dynamic else None


def _write_onnx(model, x, check, tmp: Path, meta, *, dynamic_batch, opset, optimize):  # noqa: ANN001
    try:
        import onnxruntime as ort
        import onnxscript  # noqa: F401 - the dynamo exporter's translator
    except ImportError as e:
        raise missing_package(e.name or "onnxruntime", "ONNX export") from None
    prog = torch.onnx.export(
        model,
        (x,),
        dynamo=True,
        dynamic_shapes=_batch_dim(dynamic_batch),
        opset_version=opset,
        optimize=optimize,
        input_names=["input"],
        output_names=["logits"],
        verbose=False,
    )
    strip_onnx_debug_info(prog.model)
    meta = {**meta, "opset": int(prog.model.opset_imports.get("", 0))}
    for k, v in meta.items():
        prog.model.metadata_props[k] = v if isinstance(v, str) else json.dumps(v)
    prog.save(tmp, external_data=False)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = torch.get_num_threads()
    sess = ort.InferenceSession(str(tmp), opts, providers=["CPUExecutionProvider"])
    got = sess.run(None, {sess.get_inputs()[0].name: check.numpy()})[0]
    return torch.from_numpy(got), meta


def _write_torchscript(model, x, check, tmp: Path, meta, *, dynamic_batch, opset, optimize):  # noqa: ANN001
    with torch.no_grad():
        traced = torch.jit.trace(model, (x,), check_trace=False)
    torch.jit.save(traced, str(tmp), _extra_files={META_FILE: json.dumps(meta)})
    loaded = torch.jit.load(str(tmp), map_location="cpu")
    with torch.no_grad():
        return loaded(check), meta


def _write_program(model, x, check, tmp: Path, meta, *, dynamic_batch, opset, optimize):  # noqa: ANN001
    ep = torch.export.export(model, (x,), dynamic_shapes=_batch_dim(dynamic_batch))
    with open(tmp, "wb") as f:  # a file object: torch.export wants a .pt2 name otherwise
        torch.export.save(ep, f, extra_files={META_FILE: json.dumps(meta)})
    with open(tmp, "rb") as f:
        loaded = torch.export.load(f)
    with torch.no_grad():
        return loaded.module()(check), meta
