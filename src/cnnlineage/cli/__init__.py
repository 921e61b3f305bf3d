"""The ``cnnlineage`` command: one thin subcommand per capability (parse, call the library, print).

Each module of this package registers its subcommands with ``add_parsers(subparsers)``
and sets ``func`` on each; ``main`` dispatches and turns the errors a user can cause into
one line on stderr with exit status 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from ..common import format_table, human_count
from . import analysis, models, search, train

__all__ = ["build_parser", "format_table", "human_count", "main"]

# One module per capability, in the order `cnnlineage --help` lists them.
_COMMAND_MODULES = [models, analysis, train, search]


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser with every subcommand registered."""
    from .. import __version__

    parser = argparse.ArgumentParser(
        prog="cnnlineage",
        description="The history of convolutional networks, runnable: list, inspect, train and compare "
        "the lineage from LeNet-5 to ConvNeXt and ViT.",
    )
    parser.add_argument("--version", action="version", version=f"cnnlineage {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in _COMMAND_MODULES:
        module.add_parsers(sub)
    return parser


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
