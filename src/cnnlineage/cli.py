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
            print(f"| `{c.name}` | {c.family} | {c.year} | {c.first_author}: {c.paper} | {c.ref_params:,} | {size} | {top1} |")
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
        lines.append(("torchvision", f"{card.torchvision} (weights load with cnnlineage.weights.load_torchvision)"))
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
    bar = tqdm(total=len(names), desc="profiling", unit="model", disable=not sys.stderr.isatty() or args.quiet)
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
