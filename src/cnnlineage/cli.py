"""The ``cnnlineage`` command: one thin subcommand per capability (parse, call the library, print).

Each capability adds itself with a ``_add_<name>(subparsers)`` function that registers
its parser and sets ``func``; ``main`` dispatches.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

__all__ = ["main", "format_table"]


def format_table(rows: Sequence[Sequence[object]], headers: Sequence[str], align: str | None = None) -> str:
    """Return a plain-text table; ``align`` is one character per column, 'l' or 'r'."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    align = align or "l" * len(headers)

    def fmt(r: list[str]) -> str:
        return "  ".join(c.rjust(w) if a == "r" else c.ljust(w) for c, w, a in zip(r, widths, align)).rstrip()

    lines = [fmt(cells[0]), "  ".join("-" * w for w in widths)]
    lines += [fmt(r) for r in cells[1:]]
    return "\n".join(lines)


def human_count(n: float) -> str:
    """Return 61706 as '61.7K', 25557032 as '25.6M'."""
    for unit, scale in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.1f}{unit}"
    return str(int(n))


# ---------------------------------------------------------------------------- list / info
def _cmd_list(args: argparse.Namespace) -> int:
    from .registry import list_models, model_info

    names = list_models(args.pattern, family=args.family)
    if not names:
        print(f"no registered model matches {args.pattern!r}", file=sys.stderr)
        return 1
    cards = [model_info(n) for n in names]
    if args.format == "json":
        print(json.dumps([c.to_dict() for c in cards], indent=2))
        return 0
    if args.format == "md":
        print("| model | family | year | paper | params | input | ImageNet top-1 |")
        print("|---|---|---|---|---:|---|---:|")
        for c in cards:
            top1 = f"{c.ref_top1:.2f}" if c.ref_top1 is not None else "-"
            size = "x".join(map(str, c.input_size))
            print(
                f"| `{c.name}` | {c.family} | {c.year} | {c.first_author}: {c.paper} | {c.ref_params:,} | {size} | {top1} |"
            )
        return 0
    rows = [
        (
            c.name,
            c.family,
            c.year,
            human_count(c.ref_params),
            "x".join(map(str, c.input_size)),
            f"{c.ref_top1:.1f}" if c.ref_top1 is not None else "-",
        )
        for c in cards
    ]
    print(format_table(rows, ["name", "family", "year", "params", "input", "top-1"], "lllrll"))
    print(f"\n{len(names)} models")
    return 0


def _add_list(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("list", help="list registered models in lineage order")
    p.add_argument("pattern", nargs="?", default=None, help="shell-style filter, e.g. 'resnet*'")
    p.add_argument("--family", default=None, help="only this family, e.g. vgg")
    p.add_argument("--format", choices=["table", "md", "json"], default="table")
    p.set_defaults(func=_cmd_list)


def _cmd_info(args: argparse.Namespace) -> int:
    from .registry import model_info

    card = model_info(args.name)
    if args.format == "json":
        print(json.dumps(card.to_dict(), indent=2))
        return 0
    lines = [
        ("name", card.name),
        ("family", card.family),
        ("year", card.year),
        ("paper", f"{card.paper} ({card.first_author} et al., {card.venue})"),
        ("key idea", card.key_idea),
        ("default input", "x".join(map(str, card.input_size))),
        ("classes", card.num_classes),
        ("parameters", f"{card.ref_params:,} ({card.ref_params_source})"),
    ]
    if card.ref_top1 is not None:
        lines.append(("ImageNet top-1", f"{card.ref_top1:.2f}% ({card.ref_top1_source})"))
    if card.torchvision:
        lines.append(
            ("torchvision", f"{card.torchvision} (weights load with cnnlineage.weights.load_torchvision)")
        )
    if card.timm:
        lines.append(("timm", f"{card.timm} (weights load with cnnlineage.weights.load_timm)"))
    if card.notes:
        lines.append(("notes", card.notes))
    width = max(len(k) for k, _ in lines)
    for k, v in lines:
        print(f"{k.ljust(width)}  {v}")
    return 0


def _add_info(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("info", help="show a model's card: paper, year, key idea, reference figures")
    p.add_argument("name")
    p.add_argument("--format", choices=["text", "json"], default="text")
    p.set_defaults(func=_cmd_info)


# ---------------------------------------------------------------------------- summary / compare
_COUNT_RULES = """definitions:
  MACs   multiply-accumulates of convolutions, linear layers and matrix products,
         attention included (q·kᵀ and attention·v, scaled_dot_product_attention).
  FLOPs  2 x MACs plus element-wise work: bias, activations and element-wise arithmetic
         1 per output element; BatchNorm (inference) 2; LayerNorm/GroupNorm 5;
         softmax 3 (+1 for attention scaling); max/avg pooling k*k per output;
         adaptive/global pooling and means 1 per input element; concatenation,
         padding and copies 0.
  activation bytes  size of each layer's output in the profiled dtype; peak assumes
         inference with each tensor freed after its last use.
  receptive field   input pixels one unit sees; where branches merge, the largest
         over the paths; 'global' where global pooling, attention or an SE gate lets
         a unit see the whole input."""


def _parse_input(text: str | None) -> tuple[int, int, int] | None:
    if text is None:
        return None
    parts = text.lower().replace(",", "x").split("x")
    try:
        dims = tuple(int(p) for p in parts)
    except ValueError:
        dims = ()
    if len(dims) != 3 or min(dims) < 1:
        raise ValueError(f"--input must be CxHxW, e.g. 3x224x224; got {text!r}")
    return dims  # type: ignore[return-value]


def _cmd_summary(args: argparse.Namespace) -> int:
    import torch

    from .analysis import profile

    dtypes = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
    p = profile(args.name, _parse_input(args.input), batch_size=args.batch, dtype=dtypes[args.dtype])
    if args.format == "json":
        print(p.to_json())
    elif args.format == "csv":
        print(p.to_csv(args.depth), end="")
    elif args.format == "md":
        print(p.to_markdown(args.depth))
    else:
        print(p.to_table(args.depth))
    return 0


def _add_summary(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "summary",
        help="per-layer shapes, parameters, MACs, FLOPs, memory and receptive field",
        description="Profile a model: one row per leaf operation (functional ops included).",
        epilog=_COUNT_RULES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("name", help="registered model name (see `cnnlineage list`)")
    p.add_argument("--input", default=None, help="input size CxHxW (default: the model's own)")
    p.add_argument("--batch", type=int, default=1, help="batch size (default 1)")
    p.add_argument("--dtype", choices=["float32", "float16", "bfloat16"], default="float32")
    p.add_argument("--depth", type=int, default=None, help="group rows by module path to this depth")
    p.add_argument("--format", choices=["table", "md", "csv", "json"], default="table")
    p.set_defaults(func=_cmd_summary)


def _cmd_compare(args: argparse.Namespace) -> int:
    from pathlib import Path

    from tqdm import tqdm

    from .analysis.compare import compare, plot_lineage, rows_to_csv, rows_to_markdown, rows_to_table
    from .registry import list_models

    names = list_models() if args.all or not args.names else []
    for n in args.names:
        names += list_models(n) if any(c in n for c in "*?[") else [n]
    bar = tqdm(
        total=len(names), desc="profiling", unit="model", disable=not sys.stderr.isatty() or args.quiet
    )
    rows = compare(names, progress=lambda n: (bar.set_postfix_str(n), bar.update(1)))
    bar.close()
    print(rows_to_table(rows))
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "lineage.csv").write_text(rows_to_csv(rows))
        (out / "lineage.md").write_text(rows_to_markdown(rows) + "\n")
        for path in plot_lineage(rows, out):
            print(f"wrote {path}")
        print(f"wrote {out / 'lineage.csv'}, {out / 'lineage.md'}")
    return 0


def _add_compare(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "compare",
        help="the lineage table (year, params, GMACs, memory, receptive field, top-1) and its plots",
        epilog=_COUNT_RULES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("names", nargs="*", help="model names or patterns (default: all)")
    p.add_argument("--all", action="store_true", help="every registered model")
    p.add_argument("--out", default=None, help="directory for lineage.csv, lineage.md and the PNG plots")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_compare)


# ---------------------------------------------------------------------------- train / eval / predict
# Convenience flags of `train` and the config keys they set (everything else: --set key=value).
_TRAIN_FLAGS = {
    "data": "data.name",
    "data_dir": "data.root",
    "epochs": "epochs",
    "batch_size": "data.batch_size",
    "lr": "optim.lr",
    "seed": "seed",
    "device": "device",
    "amp": "amp",
    "out": "run.out_dir",
    "workers": "data.num_workers",
    "checkpoint_every": "run.checkpoint_every_steps",
    "finetune": "finetune.checkpoint",
    "finetune_mode": "finetune.mode",
}


def _cmd_train(args: argparse.Namespace) -> int:
    import os

    import yaml

    from .train import NonFiniteLossError, config_to_dict, train
    from .train.run import launch_distributed, resolve_config

    overrides = [
        f"{key}={json.dumps(getattr(args, dest))}"
        for dest, key in _TRAIN_FLAGS.items()
        if getattr(args, dest) is not None
    ]
    for flag, key in (
        ("download", "data.download"),
        ("channels_last", "model.channels_last"),
        ("skip_bad_images", "data.skip_bad_images"),
    ):
        if getattr(args, flag):
            overrides.append(f"{key}=true")
    if args.quiet:
        overrides.append("run.progress=none")
    cfg = resolve_config(
        args.model, recipe=args.config, overrides=overrides + list(args.set), resume=args.resume
    )
    if args.print_config:
        print(yaml.safe_dump(config_to_dict(cfg), sort_keys=False), end="")
        return 0
    if args.nproc > 1 and "WORLD_SIZE" not in os.environ:
        return launch_distributed(cfg, args.nproc, resume=bool(args.resume), overwrite=args.overwrite)
    try:
        summary = train(cfg, resume=bool(args.resume), overwrite=args.overwrite)
    except NonFiniteLossError as e:
        print(f"cnnlineage train: stopped: {e}", file=sys.stderr)
        return 3
    if args.format == "json" and int(os.environ.get("RANK", "0")) == 0:
        print(json.dumps(summary, indent=2))
    return 0


def _add_train(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="train a model (default data: mnist5k, the 5,000 real MNIST digits bundled offline)",
        description="Train a registered model from a YAML recipe (shipped: cnnlineage/configs/*.yaml; a model "
        "with a shipped recipe uses it), with flags and --set key=value overrides. Writes a run directory: "
        "config.yaml, metrics.jsonl, summary.json, checkpoints/, tb/, plots.",
    )
    p.add_argument("model", nargs="?", default=None, help="registered model name, e.g. lenet5")
    p.add_argument("--config", default=None, help="recipe: a YAML file or a shipped recipe name")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config key, e.g. optim.lr=0.05 (repeatable)",
    )
    p.add_argument(
        "--data",
        default=None,
        help="mnist5k, digits, shapes10, mnist, fashion_mnist, cifar10, cifar100, imagefolder",
    )
    p.add_argument(
        "--data-dir", default=None, help="root of on-disk datasets / your image folder (data.root)"
    )
    p.add_argument(
        "--download", action="store_true", help="allow torchvision to download mnist/fashion_mnist/cifar"
    )
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--batch-size", type=int, default=None, help="global batch size")
    p.add_argument("--lr", type=float, default=None, help="peak learning rate")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--device", default=None, help="auto (CUDA if present), cpu, cuda, cuda:N")
    p.add_argument("--amp", choices=["none", "bf16", "fp16"], default=None, help="mixed precision")
    p.add_argument("--channels-last", action="store_true", help="NHWC memory layout")
    p.add_argument("--workers", type=int, default=None, help="DataLoader worker processes")
    p.add_argument("--out", default=None, help="run directory (default runs/<model>-<data>-<date>-<time>)")
    p.add_argument(
        "--resume",
        default=None,
        metavar="RUN_DIR",
        help="continue the run in RUN_DIR from its last checkpoint",
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace the outputs of a finished or unfinished run in --out",
    )
    p.add_argument(
        "--checkpoint-every", type=int, default=None, metavar="N", help="also checkpoint every N steps"
    )
    p.add_argument(
        "--finetune",
        default=None,
        metavar="CHECKPOINT",
        help="start from a checkpoint's weights with a new head",
    )
    p.add_argument("--finetune-mode", choices=["head", "full", "gradual"], default=None)
    p.add_argument(
        "--skip-bad-images", action="store_true", help="skip unreadable image files with a warning"
    )
    p.add_argument(
        "--nproc", type=int, default=1, help="data-parallel processes on this machine (starts torchrun)"
    )
    p.add_argument("--print-config", action="store_true", help="print the resolved config as YAML and exit")
    p.add_argument("--quiet", action="store_true", help="no progress bar or step lines (epoch lines only)")
    p.add_argument("--format", choices=["text", "json"], default="text", help="json: also print summary.json")
    p.set_defaults(func=_cmd_train)


def _cmd_eval(args: argparse.Namespace) -> int:
    from .train.inference import evaluate_checkpoint

    r = evaluate_checkpoint(
        args.checkpoint,
        data=args.data,
        root=args.data_dir,
        split=args.split,
        batch_size=args.batch_size,
        device=args.device,
    )
    if args.format == "json":
        print(json.dumps({k: (v.tolist() if hasattr(v, "tolist") else v) for k, v in r.items()}, indent=2))
        return 0
    print(f"{r['model']} on {r['dataset']} ({r['split']}, {r['samples']:,} images): "
          f"top-1 {r['top1']:.2f}%  top-5 {r['top5']:.2f}%  loss {r['loss']:.4f}")  # fmt: skip
    if args.per_class:
        rows = [(c, "-" if a is None else f"{a:.2f}") for c, a in zip(r["classes"], r["per_class"])]
        print(format_table(rows, ["class", "top-1 %"], "lr"))
    return 0


def _add_eval(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="evaluate a checkpoint on its dataset's held-out split (or another)")
    p.add_argument("checkpoint", help="a checkpoint written by `cnnlineage train` (last.pt or best.pt)")
    p.add_argument("--data", default=None, help="dataset (default: the one it was trained on)")
    p.add_argument("--data-dir", default=None, help="root of on-disk datasets (default: the training run's)")
    p.add_argument("--split", choices=["test", "train"], default="test")
    p.add_argument("--batch-size", type=int, default=500)
    p.add_argument("--device", default="auto")
    p.add_argument("--per-class", action="store_true", help="also print per-class accuracy")
    p.add_argument("--format", choices=["text", "json"], default="text")
    p.set_defaults(func=_cmd_eval)


def _cmd_predict(args: argparse.Namespace) -> int:
    from .train.inference import predict

    results = predict(args.checkpoint, args.images, topk=args.topk, device=args.device)
    if args.format == "json":
        print(json.dumps(results, indent=2))
        return 0
    for r in results:
        print(r["image"])
        for name, p in r["top"]:
            print(f"  {p * 100:6.2f}%  {name}")
    return 0


def _add_predict(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "predict", help="classify image files with a checkpoint: top-k classes and probabilities"
    )
    p.add_argument("checkpoint", help="a checkpoint written by `cnnlineage train`")
    p.add_argument("images", nargs="+", help="JPEG/PNG files; resized to the model's input")
    p.add_argument("--topk", type=int, default=5)
    p.add_argument("--device", default="auto")
    p.add_argument("--format", choices=["text", "json"], default="text")
    p.set_defaults(func=_cmd_predict)


# ---------------------------------------------------------------------------- main
def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser with every subcommand registered."""
    from . import __version__

    parser = argparse.ArgumentParser(
        prog="cnnlineage",
        description="The history of convolutional networks, runnable: list, inspect, train and compare "
        "the lineage from LeNet-5 to ConvNeXt and ViT.",
    )
    parser.add_argument("--version", action="version", version=f"cnnlineage {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for add in _SUBCOMMANDS:
        add(sub)
    return parser


_SUBCOMMANDS = [_add_list, _add_info, _add_summary, _add_compare]
_SUBCOMMANDS += [_add_train, _add_eval, _add_predict]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except ValueError as e:  # bad input from the user: one clear line, no traceback
        print(f"cnnlineage {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
