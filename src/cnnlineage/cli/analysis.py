"""`cnnlineage summary` and `cnnlineage compare`: the analyzer's per-layer table and the lineage table."""

from __future__ import annotations

import argparse
import sys

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

    from ..analysis import profile

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

    from ..analysis.compare import compare, plot_lineage, rows_to_csv, rows_to_markdown, rows_to_table
    from ..registry import list_models

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


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """Register summary and compare."""
    _add_summary(sub)
    _add_compare(sub)
