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


def positive_int(text: str) -> int:
    """Return ``text`` as an integer >= 1 (an argparse type); argparse.ArgumentTypeError otherwise."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer (1 or more), got {value}")
    return value


def _parse_kwargs(items: list[str]) -> dict[str, object]:
    import yaml

    kwargs = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(
                f"--set expects KEY=VALUE (a builder argument, e.g. pad_input=true); got {item!r}"
            )
        kwargs[key.strip()] = yaml.safe_load(value)
    return kwargs


def _cmd_summary(args: argparse.Namespace) -> int:
    import torch

    from ..analysis import profile
    from ..analysis.profiler import InputSizeError
    from ..registry import create_model, model_info

    dtypes = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
    size = _parse_input(args.input)
    kwargs = _parse_kwargs(args.set)
    if (
        args.name.endswith(".pt") or "/" in args.name
    ):  # a checkpoint: its own (possibly pruned) network and input
        from ..train.inference import load_model

        target, meta = load_model(args.name, backbone=True)  # a pre-training checkpoint: its network
        size = size or tuple(meta["input_size"])
        p = profile(target, size, batch_size=args.batch, dtype=dtypes[args.dtype])
    else:
        model_info(args.name)  # an unknown name fails here, with the closest names
        if kwargs:
            with torch.device("meta"):  # built without memory, as profile() does for a name
                target = create_model(args.name, **kwargs)
        else:
            target = args.name
        try:
            p = profile(target, size, batch_size=args.batch, dtype=dtypes[args.dtype])
        except InputSizeError as e:
            raise InputSizeError(f"{e}{_padding_hint(args.name, size, kwargs)}") from None
    if args.format == "json":
        print(p.to_json())
    elif args.format == "csv":
        print(p.to_csv(args.depth), end="")
    elif args.format == "md":
        print(p.to_markdown(args.depth))
    else:
        print(p.to_table(args.depth))
    return 0


def _padding_hint(name: str, size: tuple[int, int, int] | None, kwargs: dict[str, object]) -> str:
    # lenet5 takes 32x32; `train` feeds it 28x28 digits with pad_input=true (padded inside the model).
    import inspect

    from ..registry import create_model, get_builder

    if (
        size is None
        or "pad_input" in kwargs
        or "pad_input" not in inspect.signature(get_builder(name)).parameters
    ):
        return ""
    import torch

    with torch.device("meta"):
        padded = create_model(name, pad_input=True)
    if tuple(padded.input_size[1:]) != tuple(size[1:]):
        return ""
    c, h, w = size
    return (
        f". `cnnlineage train` feeds {name} {h}x{w} images with model.kwargs pad_input=true, which pads them "
        f"inside the model; profile that variant with `cnnlineage summary {name} --set pad_input=true "
        f"--input {c}x{h}x{w}`"
    )


def _add_summary(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "summary",
        help="per-layer shapes, parameters, MACs, FLOPs, memory and receptive field",
        description="Profile a model: one row per leaf operation (functional ops included).",
        epilog=_COUNT_RULES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("name", help="registered model name (see `cnnlineage list`) or a checkpoint path")
    p.add_argument("--input", default=None, help="input size CxHxW (default: the model's own)")
    p.add_argument("--batch", type=positive_int, default=1, help="batch size (default 1)")
    p.add_argument("--dtype", choices=["float32", "float16", "bfloat16"], default="float32")
    p.add_argument(
        "--depth", type=positive_int, default=None, help="group rows by module path to this depth (1 or more)"
    )
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="builder argument, as train's model.kwargs, e.g. pad_input=true (repeatable)",
    )
    p.add_argument("--format", choices=["table", "md", "csv", "json"], default="table")
    p.set_defaults(func=_cmd_summary)


def _compare_names(args: argparse.Namespace) -> list[str]:
    """Return the models to compare: --all, names and patterns, each once, in the order given."""
    from ..registry import list_models, model_info

    names = list_models() if args.all or not args.names else []
    for n in args.names:
        if any(c in n for c in "*?["):
            matched = list_models(n)
            if not matched:
                raise ValueError(
                    f"no registered model matches the pattern {n!r}; run `cnnlineage list` to see the names"
                )
            names += matched
        else:
            names.append(model_info(n).name)  # an unknown name fails here, with the closest names
    unique = list(dict.fromkeys(names))
    if len(unique) < len(names) and args.names:
        dropped = len(names) - len(unique)
        print(f"note: {dropped} repeated name(s) compared once", file=sys.stderr)
    return unique


def _cmd_compare(args: argparse.Namespace) -> int:
    from pathlib import Path

    from tqdm import tqdm

    from ..analysis.compare import compare, plot_lineage, rows_to_csv, rows_to_markdown, rows_to_table
    from ..common import atomic_write_text

    out = Path(args.out) if args.out else None
    if out is not None and out.exists() and not out.is_dir():
        raise ValueError(
            f"--out {out} is an existing file; pass a directory (lineage.csv, lineage.md and the plots go in it)"
        )
    names = _compare_names(args)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)  # before the profiling, so an unwritable path fails at once
    bar = tqdm(
        total=len(names), desc="profiling", unit="model", disable=not sys.stderr.isatty() or args.quiet
    )
    rows = compare(
        names, progress=lambda n: (bar.set_postfix_str(n), bar.update(1)), top1_kind=args.top1_kind
    )
    bar.close()
    print(rows_to_table(rows))
    if out is not None:
        atomic_write_text(out / "lineage.csv", rows_to_csv(rows))
        atomic_write_text(out / "lineage.md", rows_to_markdown(rows) + "\n")
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
    p.add_argument(
        "--top1-kind",
        choices=["paper", "recipe"],
        default=None,
        help="show only top-1 figures from the papers' tables, or only those of released weights' recipes",
    )
    p.set_defaults(func=_cmd_compare)


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """Register summary and compare."""
    _add_summary(sub)
    _add_compare(sub)
