"""`cnnlineage list` and `cnnlineage info`: the registry and its model cards."""

from __future__ import annotations

import argparse
import json
import sys

from ..common import format_table, human_count


def _cmd_list(args: argparse.Namespace) -> int:
    from ..registry import closest_models, list_models, model_info

    pattern = args.pattern
    if pattern and not any(c in pattern for c in "*?["):
        pattern = f"*{pattern}*"  # a plain word matches anywhere in the name: `list resnet`
    names = list_models(pattern, family=args.family)
    if not names:
        what = " and ".join(
            x
            for x in (
                f"{args.pattern!r}" if args.pattern else "",
                f"family {args.family!r}" if args.family else "",
            )
            if x
        )
        close = closest_models(args.pattern.strip("*?[]")) if args.pattern else []
        hint = f"; closest names: {', '.join(close)}" if close else ""
        print(f"no registered model matches {what}{hint}. Run `cnnlineage list` to see all.", file=sys.stderr)
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
    p.add_argument(
        "pattern",
        nargs="?",
        default=None,
        help="part of a name (case-insensitive), or a shell-style pattern such as 'resnet*'",
    )
    p.add_argument("--family", default=None, help="only this family, e.g. vgg")
    p.add_argument("--format", choices=["table", "md", "json"], default="table")
    p.set_defaults(func=_cmd_list)


def _cmd_info(args: argparse.Namespace) -> int:
    from ..registry import model_info

    card = model_info(args.name)
    if args.format == "json":
        print(json.dumps(card.to_dict(), indent=2))
        return 0
    lines = [
        ("name", card.name),
        ("family", card.family),
        ("year", f"{card.year} (first public appearance)"),
        ("paper", f"{card.paper} ({card.citation})"),
        ("authors", ", ".join(card.authors)),
        ("key idea", card.key_idea),
        ("default input", "x".join(map(str, card.input_size))),
        ("classes", card.num_classes),
        ("parameters", f"{card.ref_params:,} ({card.ref_params_source})"),
    ]
    if card.ref_params_train is not None:
        lines.append(
            ("training params", f"{card.ref_params_train:,} (with the training-only auxiliary heads)")
        )
    if card.ref_top1 is not None:
        lines.append(
            ("ImageNet top-1", f"{card.ref_top1:.2f}% ({card.ref_top1_kind}: {card.ref_top1_source})")
        )
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


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """Register list and info."""
    _add_list(sub)
    _add_info(sub)
