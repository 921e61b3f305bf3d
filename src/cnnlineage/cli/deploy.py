"""`cnnlineage export` and `bench`, and the fast path of `eval`/`predict` (``.onnx`` files, ``--backend``)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..common import format_table

BACKEND_CHOICES = ["eager", "channels_last", "compile", "onnxruntime", "auto"]


def _cmd_export(args: argparse.Namespace) -> int:
    from ..deploy import export_model, load_source

    model, meta = load_source(args.source, expect_model=args.model)
    if meta.get("int8"):
        i = meta["int8"]
        raise ValueError(
            f"{args.source} is already a deployable int8 program ({i['method']}: {args.source}/{i['file']}); "
            "export the fp32 checkpoint it was quantized from instead"
        )
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
    """Return True when eval/predict run through cnnlineage.deploy (an .onnx file, an int8 directory or --backend)."""
    from ..deploy.int8 import is_int8_dir

    return str(args.checkpoint).endswith(".onnx") or is_int8_dir(args.checkpoint) or args.backend is not None


def _cpu_only(args: argparse.Namespace) -> None:
    if args.device not in ("auto", "cpu"):
        raise ValueError(
            f"--device {args.device} does not apply to {args.checkpoint}"
            f"{' on --backend ' + args.backend if args.backend else ''}: this path runs on the CPU; "
            "drop --device (or --backend to run a checkpoint on the device)"
        )


def run_eval(args: argparse.Namespace) -> dict:
    """Return the evaluation of an .onnx file, an int8 directory or a checkpoint on ``--backend``."""
    from ..deploy import evaluate_file

    _cpu_only(args)
    return evaluate_file(
        args.checkpoint,
        backend=args.backend,
        data=args.data,
        root=args.data_dir,
        split=args.split,
        batch_size=args.batch_size,
        allow_mismatch=args.allow_mismatch,
    )


def run_predict(args: argparse.Namespace) -> list:
    """Return the predictions of an .onnx file, an int8 directory or a checkpoint on ``--backend``."""
    from ..deploy import predict_files

    _cpu_only(args)
    return predict_files(
        args.checkpoint, args.images, topk=args.topk, backend=args.backend, invert=args.invert,
        show_input=args.show_input,
    )  # fmt: skip


# ----------------------------------------------------------------------------- bench
def _int_list(text: str, flag: str) -> list[int]:
    try:
        return [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ValueError(f"{flag} must be comma-separated integers, e.g. 1,32; got {text!r}") from None


def _fmt_rows(rows: list, fmt: str, peak: dict | None) -> str:
    if fmt == "json":
        return json.dumps({"peak": peak, "rows": [r.to_dict() for r in rows]}, indent=2)
    from ..deploy.bench import rows_to_csv

    if fmt == "csv":
        return rows_to_csv(rows).rstrip("\n")
    vs = any(r.ratio is not None for r in rows)
    headers = ["model", "mode", "backend", "batch", "input", "median ms", "p90 ms", "img/s", "GFLOP/s"]
    sp = any(r.speedup is not None for r in rows)
    headers += ["% peak", "peak RSS MB"] + (["speed-up"] if sp else [])
    headers += ["tv ms", "tv/ours", "95% CI"] if vs else []
    cells = []
    for r in rows:
        c = [r.model, r.mode, r.backend, r.batch, r.input, f"{r.median_ms:.2f}", f"{r.p90_ms:.2f}",
             f"{r.images_per_s:,.1f}", f"{r.gflop_per_s:.1f}",
             "-" if r.peak_fraction is None else f"{100 * r.peak_fraction:.1f}", f"{r.peak_rss_mb:,.0f}"]  # fmt: skip
        if sp:  # against the first backend of the same model, mode and batch, timed interleaved with it
            c += ["-" if r.speedup is None else f"{r.speedup:.2f}x vs {r.speedup_vs}"]
        if vs:
            c += ["-", "-"] if r.ratio is None else [f"{r.baseline_median_ms:.2f}", f"{r.ratio:.3f}"]
            c += ["-" if r.ratio_low is None else f"{r.ratio_low:.3f}-{r.ratio_high:.3f}"]
        cells.append(c)
    if fmt == "md":
        lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
        return "\n".join(lines + ["| " + " | ".join(map(str, c)) + " |" for c in cells])
    return format_table(cells, headers, "lllrl" + "r" * (len(headers) - 5))


def _cmd_bench(args: argparse.Namespace) -> int:
    import torch

    from ..common import atomic_write_text
    from ..deploy import load_source
    from ..deploy.bench import bench, check_clock, check_options, plot_latency, rows_to_csv
    from ..deploy.peak import bf16_supported, measure_peak

    if args.threads is not None:
        if args.threads < 1:
            raise ValueError(f"--threads must be a positive integer, got {args.threads}")
        torch.set_num_threads(args.threads)
    if not args.sources and not args.peak:
        raise ValueError("give at least one MODEL_OR_CHECKPOINT, or --peak to measure the GEMM peak only")
    check_clock(args.clock)  # before the peak: it is timed with the same clock
    batches = _int_list(args.batch, "--batch")
    backends = [b.strip() for b in args.backend.split(",") if b.strip()] if args.backend else None
    size = _parse_input(args.input) if args.input else None
    out = Path(args.out) if args.out else None
    if out is not None and out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} exists and is not a directory")
    # every refusal comes before the GEMM peak, which takes seconds to measure
    sources = [load_source(s) for s in args.sources]
    check_options(
        sources, batches=batches, backends=backends, reps=args.reps, warmup=args.warmup, vs=args.vs,
        train=args.train,
    )  # fmt: skip
    peak = None
    if args.peak:
        peak = {"fp32": measure_peak(dtype=torch.float32, clock=args.clock)}
        if bf16_supported():
            peak["bf16"] = measure_peak(dtype=torch.bfloat16, clock=args.clock)
        for k, v in peak.items():
            print(f"GEMM peak {k}: {v['gflops']:.1f} GFLOP/s ({v['size']}x{v['size']} matmul, "
                  f"{v['threads']} threads)", file=sys.stderr)  # fmt: skip
        if not args.sources:
            if args.format == "json":
                print(json.dumps({"peak": peak}, indent=2))
            return 0
    rows = bench(
        sources, batches=batches, backends=backends, input_size=size, train=args.train, reps=args.reps,
        warmup=args.warmup, vs=args.vs, peak_gflops=peak["fp32"]["gflops"] if peak else None,
        progress=not args.quiet, clock=args.clock,
    )  # fmt: skip
    print(_fmt_rows(rows, args.format, peak))
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_text(out / "bench.json", _fmt_rows(rows, "json", peak) + "\n")
        atomic_write_text(out / "bench.csv", rows_to_csv(rows))
        plot_latency(rows, out / "bench_latency.png")
        print(f"wrote {out}/bench.json, bench.csv, bench_latency.png", file=sys.stderr)
    return 0


def _add_bench(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "bench",
        help="time inference (or --train steps) per backend: latency, img/s, GFLOP/s, fraction of GEMM peak",
        description="Warm-up, then --reps timed repetitions per (model, backend, batch): median and p90 latency, "
        "images/s, GFLOP/s from the analyzer's FLOPs, its fraction of the fp32 GEMM peak measured in the same "
        "run (--peak), and peak resident memory. --vs torchvision times torchvision's twin interleaved.",
    )
    p.add_argument(
        "sources", nargs="*", metavar="MODEL_OR_CHECKPOINT",
        help="registered model names, checkpoints, or int8 directories from `cnnlineage quantize`",
    )  # fmt: skip
    p.add_argument("--batch", default="1", help="comma-separated batch sizes (default 1)")
    p.add_argument("--input", default=None, help="CxHxW (default: the model's / checkpoint's)")
    p.add_argument(
        "--backend", default=None,
        help="comma-separated: " + ", ".join(BACKEND_CHOICES) + " (default: eager; an int8 directory from "
        "`cnnlineage quantize`: its own runtime, compile for pt2e, onnxruntime for onnxruntime)",
    )  # fmt: skip
    p.add_argument(
        "--train", action="store_true", help="also time a training step (forward, loss, backward, SGD)"
    )
    p.add_argument("--threads", type=int, default=None, help="torch (and ONNX Runtime) threads")
    p.add_argument("--reps", type=int, default=20, help="timed repetitions (default 20)")
    p.add_argument("--warmup", type=int, default=3, help="untimed repetitions first (default 3)")
    p.add_argument("--peak", action="store_true", help="measure the GEMM peak first; rows get %% of peak")
    p.add_argument("--vs", choices=["torchvision"], default=None, help="time torchvision's twin interleaved")
    p.add_argument("--format", choices=["table", "csv", "json", "md"], default="table")
    p.add_argument(
        "--out", default=None, metavar="DIR", help="write bench.json, bench.csv, bench_latency.png"
    )
    p.add_argument(
        "--clock",
        choices=["wall", "cpu"],
        default="wall",
        help="wall: latency; cpu: CPU seconds of the process (steadier on a machine other jobs share; "
        "needs --threads 1)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_bench)


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """Register export and bench."""
    _add_export(sub)
    _add_bench(sub)


__all__ = ["add_backend_flag", "add_parsers", "format_table", "run_eval", "run_predict", "wants_deploy"]
