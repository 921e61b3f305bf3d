"""Compress one trained checkpoint every way and report it: int8 (PT2E, ONNX Runtime, QAT), pruned 30/50/70% (+ fine-tuned).

    python benchmarks/compress_pipeline.py CKPT --out runs/compress-lenet [--finetune-epochs 3] [--qat-epochs 2]
        [--extra LABEL=PATH ...]

Runs the CLI commands a user would (``quantize``, ``prune``, ``compress-report``) and ends
with the report: held-out top-1, size and batch-1 latency, interleaved in one process,
ratios against the fp32 checkpoint. Existing outputs are reused, so an interrupted run
continues where it stopped. Extra items (e.g. distilled students) join the report.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from cnnlineage.cli import main as cli


def run(*argv: str) -> None:
    print("$ cnnlineage " + " ".join(argv), flush=True)
    status = cli(list(argv))
    if status:
        raise SystemExit(f"cnnlineage {argv[0]} failed with status {status}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkpoint")
    ap.add_argument("--out", required=True)
    ap.add_argument("--finetune-epochs", type=int, default=3)
    ap.add_argument("--ratios", type=float, nargs="+", default=[0.3, 0.5, 0.7])
    ap.add_argument(
        "--finetune-ratios", type=float, nargs="*", default=None, help="fine-tune only these (default: all)"
    )
    ap.add_argument("--importance", default="l1")
    ap.add_argument("--calib-batches", type=int, default=10)
    ap.add_argument("--qat-epochs", type=int, default=2, help="quantization-aware training epochs (0: skip)")
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument(
        "--scan", action="store_true", help="also the per-layer sensitivity scan (at the middle ratio)"
    )
    ap.add_argument("--extra", nargs="*", default=[], metavar="LABEL=PATH")
    args = ap.parse_args()
    out, ckpt = Path(args.out), args.checkpoint

    def tune(r: float) -> bool:
        return args.finetune_ratios is None or r in args.finetune_ratios

    items = [f"fp32={ckpt}"]
    for method in ("pt2e", "onnxruntime"):
        d = out / f"int8-{method}"
        if not (d / "quantized.json").exists():
            run("quantize", ckpt, "--out", str(d), "--method", method, "--calib-batches", str(args.calib_batches),
                "--no-eval")  # fmt: skip
        items.append(f"int8 {method}={d}")
    if args.qat_epochs:
        d = out / "int8-pt2e-qat"
        if not (d / "quantized.json").exists():
            run("quantize", ckpt, "--out", str(d), "--qat-epochs", str(args.qat_epochs),
                "--calib-batches", str(args.calib_batches), "--no-eval")  # fmt: skip
        items.append(f"int8 pt2e QAT={d}")
    for r in args.ratios:
        d = out / f"pruned-{round(100 * r)}"
        if not (d / "prune.json").exists():
            extra = ["--scan"] if args.scan and r == args.ratios[len(args.ratios) // 2] else []
            run("prune", ckpt, "--ratio", str(r), "--out", str(d), "--importance", args.importance,
                "--finetune-epochs", str(args.finetune_epochs if tune(r) else 0), "--overwrite", *extra)  # fmt: skip
        items.append(f"pruned {round(100 * r)}%={d / 'pruned.pt'}")
        if args.finetune_epochs and tune(r):
            items.append(f"pruned {round(100 * r)}% +ft={d / 'finetune' / 'checkpoints' / 'best.pt'}")
    d = out / "unstructured-50"
    if not (d / "prune.json").exists():
        run("prune", ckpt, "--ratio", "0.5", "--unstructured", "--out", str(d), "--overwrite")
    u = json.loads((d / "prune.json").read_text())
    print(f"unstructured 50%: sparsity {u['sparsity']:.3f}, dense bytes {u['dense_bytes_before']} -> "
          f"{u['dense_bytes_after']}, latency {u['latency_ms_before']:.3f} -> {u['latency_ms_after']:.3f} ms")  # fmt: skip
    run("compress-report", *items, *args.extra, "--out", str(out / "report"), "--rounds", str(args.rounds))


if __name__ == "__main__":
    main()
