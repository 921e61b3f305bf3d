"""`cnnlineage quantize`, `prune` and `compress-report`: compress a trained checkpoint and measure what it cost."""

from __future__ import annotations

import argparse
import json

from ..common import format_table


def _cmd_quantize(args: argparse.Namespace) -> int:
    import torch

    from ..compress.quantize import quantize_checkpoint

    if args.threads:
        torch.set_num_threads(args.threads)
    text = args.format == "text"
    r = quantize_checkpoint(
        args.checkpoint, args.out, method=args.method, calib_batches=args.calib_batches,
        batch_size=args.batch_size, per_channel=args.per_channel, onnx_format=args.onnx_format,
        qat_epochs=args.qat_epochs,
        qat_lr_mult=args.qat_lr_mult, progress="auto" if text else "none",
        log=(lambda s: print(s, flush=True)) if text else (lambda s: None),
    )  # fmt: skip
    if args.format == "json":
        print(json.dumps({k: v for k, v in r.items() if k != "meta"}, indent=2))
        return 0
    if "qat" in r:
        q = r["qat"]
        print(f"{r['meta']['model_name']}: int8 by pt2e with quantization-aware training: {q['epochs']} epoch(s), "
              f"{q['steps']} steps on {q['training_images']:,} training images, {q['optimizer']} lr {q['lr']:.3g} "
              f"(recipe x{q['lr_mult']:g}, {q['schedule']}), "
              + (f"BatchNorm statistics frozen after step {q['freeze_bn_step']}, " if q["batchnorm_frozen"] else "")
              + f"observers frozen after step {q['freeze_observers_step']}, seed {q['seed']}, "
              f"{q['seconds']:.1f}s -> {args.out}/{r['file']}")  # fmt: skip
        t = q["top1"]
        print(f"held-out top-1 ({q['held_out_images']:,} images, graphs run without inductor): fp32 {t['fp32']:.2f}%  "
              f"PTQ int8 {t['ptq']:.2f}% ({t['ptq'] - t['fp32']:+.2f})  "
              f"QAT int8 {t['qat']:.2f}% ({t['qat'] - t['fp32']:+.2f})")  # fmt: skip
    else:
        print(f"{r['meta']['model_name']}: int8 by {r['method']}, calibrated on {r['calibration_images']:,} "
              f"training images -> {args.out}/{r['file']}")  # fmt: skip
    if r["float_layers"]:
        rows = [(f["layer"], f["op"], f["why"]) for f in r["float_layers"]]
        print("layers left in float:\n" + format_table(rows, ["layer", "op", "why"]))
    else:
        print("every convolution and linear layer runs in int8")
    if r.get("float_ops"):
        print("other ops computing in fp32: " + ", ".join(f"{k} x{v}" for k, v in r["float_ops"].items()))
    if not args.no_eval:
        from ..compress.quantize import evaluate_quantized

        q = evaluate_quantized(args.out, compile=args.method == "pt2e" and not args.no_compile)
        print(f"held-out top-1 of the saved program ({'compiled by inductor' if args.method == 'pt2e' and not args.no_compile else 'as saved'}): "
              f"int8 {q['top1']:.2f}% (`cnnlineage compress-report` compares it with fp32)")  # fmt: skip
    return 0


def _add_quantize(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "quantize",
        help="int8: post-training static (torchao PT2E + inductor, or ONNX Runtime), or --qat-epochs N",
        description="Quantize a checkpoint from `cnnlineage train` to int8, calibrated on batches of its own "
        "training data. Writes DIR/quantized.json and DIR/model.int8.pt2 (or .onnx); "
        "`cnnlineage eval DIR` evaluates it.",
    )
    p.add_argument("checkpoint", help="a checkpoint written by `cnnlineage train` (best.pt or last.pt)")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--method", choices=["pt2e", "onnxruntime"], default="pt2e")
    p.add_argument(
        "--onnx-format", choices=["qoperator", "qdq"], default=None,
        help="onnxruntime: ONNX Runtime's integer operators (qoperator, default: the smallest file) or "
        "quantize/dequantize pairs around float operators (qdq: portable to other runtimes)",
    )  # fmt: skip
    p.add_argument(
        "--calib-batches", type=int, default=10, help="training batches for calibration (default 10)"
    )
    p.add_argument("--batch-size", type=int, default=32, help="calibration batch size (default 32)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--per-channel", dest="per_channel", action="store_true", default=True,
                   help="per-output-channel weight scales (default; PT2E's x86 recipe is always per-channel)")  # fmt: skip
    g.add_argument(
        "--per-tensor", dest="per_channel", action="store_false", help="onnxruntime: one scale per tensor"
    )
    p.add_argument(
        "--qat-epochs", type=int, default=0, metavar="N",
        help="pt2e: also fine-tune N epochs with int8 rounding in the forward pass (quantization-aware "
        "training) on the run's training data with its recipe at lr x0.01; reports fp32, PTQ and QAT top-1 "
        "and saves the QAT model",
    )  # fmt: skip
    p.add_argument("--qat-lr-mult", type=float, default=None, metavar="M",
                   help="QAT learning rate = the recipe's lr x M (default 0.01)")  # fmt: skip
    p.add_argument("--no-eval", action="store_true", help="skip the held-out evaluation of the saved program")
    p.add_argument("--no-compile", action="store_true", help="evaluate the PT2E program without inductor")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = default)")
    p.add_argument("--format", choices=["text", "json"], default="text")
    p.set_defaults(func=_cmd_quantize)


def _cmd_prune(args: argparse.Namespace) -> int:
    from ..compress.prune import prune_checkpoint

    r = prune_checkpoint(
        args.checkpoint, args.out, ratio=args.ratio, structured=not args.unstructured,
        importance=args.importance, global_pruning=args.global_pruning,
        finetune_epochs=args.finetune_epochs, scan=args.scan, overwrite=args.overwrite,
    )  # fmt: skip
    if args.format == "json":
        print(json.dumps(r, indent=2))
        return 0
    print(f"held-out top-1 {r['top1_before']:.2f}% -> {r['top1_after']:.2f}% after pruning")
    if r["method"] == "structured":
        print(f"MACs {r['macs_before']:,} -> {r['macs_after']:,} (-{100 * (1 - r['macs_after'] / r['macs_before']):.1f}%), "
              f"parameters {r['params_before']:,} -> {r['params_after']:,} "
              f"(-{100 * (1 - r['params_after'] / r['params_before']):.1f}%)")  # fmt: skip
        if r["skipped"]:
            by_reason: dict[str, list[str]] = {}
            for layer, why in r["skipped"].items():
                by_reason.setdefault(why, []).append(layer)
            for why, layers in by_reason.items():
                print(f"left unpruned: {', '.join(layers)}: {why}")
    else:
        print(f"{100 * r['sparsity']:.1f}% of conv/linear weights are zero; dense file {r['dense_bytes_before']:,} -> "
              f"{r['dense_bytes_after']:,} bytes (sparse COO: {r['sparse_coo_bytes_after']:,}); batch-1 latency "
              f"{r['latency_ms_before']:.3f} -> {r['latency_ms_after']:.3f} ms: masks alone buy neither")  # fmt: skip
    if "finetune" in r:
        f = r["finetune"]
        print(f"fine-tuned {f['epochs']} epochs: held-out top-1 {f['final_top1']:.2f}% (best {f['best_top1']:.2f}%) "
              f"-> {f['run_dir']}")  # fmt: skip
    if "sensitivity" in r:
        print(f"wrote {r['sensitivity']}")
    print(f"wrote {args.out}/pruned.pt (eval, predict, summary and train --finetune accept it)")
    return 0


def _add_prune(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "prune",
        help="structured channel pruning (Torch-Pruning) or unstructured magnitude masks, + fine-tuning",
        description="Prune a checkpoint from `cnnlineage train`. Structured: remove whole channels until "
        "--ratio of the MACs are gone (the tensors shrink). Unstructured: zero --ratio of the weights.",
    )
    p.add_argument("checkpoint", help="a checkpoint written by `cnnlineage train`")
    p.add_argument(
        "--ratio",
        type=float,
        required=True,
        help="fraction to remove, in (0, 1): MACs (structured) or weights",
    )
    p.add_argument("--out", required=True, help="output directory (pruned.pt, prune.json, finetune/)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--structured", action="store_true", default=True, help="channel pruning (default)")
    g.add_argument("--unstructured", action="store_true", help="magnitude masks (torch.nn.utils.prune)")
    p.add_argument("--importance", choices=["l1", "l2", "taylor"], default="l1")
    p.add_argument("--global", dest="global_pruning", action="store_true", help="rank channels across layers")
    p.add_argument("--finetune-epochs", type=int, default=0, help="fine-tune with the run's recipe (lr x0.1)")
    p.add_argument("--scan", action="store_true", help="also write the per-layer sensitivity plot")
    p.add_argument("--overwrite", action="store_true", help="replace an earlier pruned.pt in --out")
    p.add_argument("--format", choices=["text", "json"], default="text")
    p.set_defaults(func=_cmd_prune)


def _cmd_report(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ..common import atomic_write_text
    from ..compress.report import build_report, plot_report, rows_to_table

    items = []
    for item in args.items:
        label, _, path = item.rpartition("=")
        if not label:  # a checkpoint is named by its run directory, a quantized model by its own
            p = Path(path)
            label = p.parent.parent.name if p.suffix == ".pt" else p.name
        items.append((label, path))
    rows = build_report(items, rounds=args.rounds, compile_fp32=not args.no_compile, threads=args.threads,
                        log=lambda s: print(s, flush=True))  # fmt: skip
    table = rows_to_table(rows)
    print(table)
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_text(out / "compress_report.txt", table + "\n")
        atomic_write_text(
            out / "compress_report.json", json.dumps([r.to_dict() for r in rows], indent=2) + "\n"
        )
        print(f"wrote {plot_report(rows, out / 'compress_report.png')}, {out / 'compress_report.txt'}, .json")
    return 0


def _add_report(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "compress-report",
        help="one table and one plot: held-out top-1, file size and batch-1 latency of compressed models",
        description="Score each item (a checkpoint or a quantized directory, optionally LABEL=PATH) on the first "
        "item's held-out split and time them at batch 1, interleaved in one process; ratios against the first.",
    )
    p.add_argument("items", nargs="+", metavar="[LABEL=]PATH", help="fp32 checkpoint first, then the others")
    p.add_argument("--out", default=None, help="directory for compress_report.{txt,json,png}")
    p.add_argument("--rounds", type=int, default=30, help="interleaved timing rounds (median reported)")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads for all models (default 1)")
    p.add_argument("--no-compile", action="store_true", help="skip the inductor-compiled fp32 baseline")
    p.set_defaults(func=_cmd_report)


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """Register quantize, prune and compress-report."""
    _add_quantize(sub)
    _add_prune(sub)
    _add_report(sub)
