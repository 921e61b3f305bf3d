"""`cnnlineage export` and `bench`, and the fast path of `eval`/`predict` (``.onnx`` files, ``--backend``)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..common import format_table

BACKEND_CHOICES = ["eager", "channels_last", "compile", "onnxruntime", "auto"]


def _cmd_export(args: argparse.Namespace) -> int:
    from ..deploy import export_model, load_source

    model, meta = load_source(args.source, expect_model=args.model)
    if args.input:
        meta["input_size"] = _parse_input(args.input)
    r = export_model(
        model,
        meta=meta,
        out=args.out,
        format=args.format,
        dynamic_batch=args.dynamic_batch,
        opset=args.opset,
    )
    if args.json:
        print(json.dumps({k: v for k, v in r.__dict__.items()}, indent=2))
        return 0
    size = "x".join(map(str, meta["input_size"]))
    print(
        f"wrote {r.path} ({args.format}, {meta['model_name']}, input {'N' if args.dynamic_batch else 1}x{size}, "
        f"{Path(r.path).stat().st_size / 1e6:.1f} MB): verified against PyTorch, max abs difference "
        f"{r.max_abs_diff:.2e} <= {r.tolerance:.0e}, {r.seconds:.1f}s"
    )
    return 0


def _parse_input(text: str) -> list[int]:
    try:
        dims = [int(v) for v in text.lower().split("x")]
    except ValueError:
        dims = []
    if len(dims) != 3 or min(dims) < 1:
        raise ValueError(f"--input must be CxHxW of positive integers, e.g. 3x224x224; got {text!r}")
    return dims


def _add_export(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export",
        help="export a model or checkpoint to ONNX / TorchScript / exported program, verified against PyTorch",
        description="Export, then run the exported file on a batch and compare with PyTorch (fails above "
        "max abs difference 1e-4 x max(1, max|logit|)). Class names, input size, mean/std, model name, data "
        "set and source checkpoint are embedded, so `cnnlineage predict/eval FILE.onnx` need nothing else.",
    )
    p.add_argument(
        "source", help="registered model name (fresh weights) or a checkpoint from `cnnlineage train`"
    )
    p.add_argument("--format", choices=["onnx", "torchscript", "exported-program"], default="onnx")
    p.add_argument("--out", required=True, help="file to write (written atomically)")
    p.add_argument("--dynamic-batch", action="store_true", help="symbolic batch dimension (default: batch 1)")
    p.add_argument("--opset", type=int, default=None, help="ONNX opset (default: the exporter's)")
    p.add_argument("--input", default=None, help="CxHxW to export at (default: the model's / checkpoint's)")
    p.add_argument("--model", default=None, help="refuse a checkpoint that is not of this model")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=_cmd_export)


# ----------------------------------------------------------------------------- eval / predict fast path
def add_backend_flag(p: argparse.ArgumentParser) -> None:
    """Add ``--backend`` to an eval/predict parser."""
    p.add_argument(
        "--backend",
        choices=BACKEND_CHOICES,
        default=None,
        help="inference backend (auto: the fastest measured here, cached); .onnx files run on onnxruntime",
    )


def wants_deploy(args: argparse.Namespace) -> bool:
    """Return True when eval/predict should run through cnnlineage.deploy (an .onnx file or --backend)."""
    return str(args.checkpoint).endswith(".onnx") or args.backend is not None


def run_eval(args: argparse.Namespace) -> dict:
    """Return the evaluation of an .onnx file or a checkpoint on ``--backend``."""
    from ..deploy import evaluate_file

    return evaluate_file(
        args.checkpoint,
        backend=args.backend or "onnxruntime",
        data=args.data,
        root=args.data_dir,
        split=args.split,
        batch_size=args.batch_size,
    )


def run_predict(args: argparse.Namespace) -> list:
    """Return the predictions of an .onnx file or a checkpoint on ``--backend``."""
    from ..deploy import predict_files

    return predict_files(args.checkpoint, args.images, topk=args.topk, backend=args.backend or "onnxruntime")


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """Register export and bench."""
    _add_export(sub)


__all__ = ["add_backend_flag", "add_parsers", "format_table", "run_eval", "run_predict", "wants_deploy"]
