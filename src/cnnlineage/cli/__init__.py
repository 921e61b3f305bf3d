"""The ``cnnlineage`` command: one thin subcommand per capability (parse, call the library, print).

Each module of this package registers its subcommands with ``add_parsers(subparsers)``
and sets ``func`` on each; ``main`` dispatches and turns the errors a user can cause into
one line on stderr with exit status 2.
"""

from __future__ import annotations

import argparse
import errno
import os
import sys
from collections.abc import Sequence

from ..common import format_table, human_count
from . import analysis, compress, deploy, experiment, models, pretrain, probe, search, site, train, visualize

__all__ = ["build_parser", "format_table", "human_count", "main"]

# One module per capability, in the order `cnnlineage --help` lists them.
_COMMAND_MODULES = [
    models,
    analysis,
    train,
    pretrain,
    probe,
    deploy,
    compress,
    visualize,
    experiment,
    search,
    site,
]


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
        code = int(args.func(args) or 0)
        sys.stdout.flush()  # a closed pipe shows here, not in the interpreter's exit
        return code
    except BrokenPipeError:  # `cnnlineage list | head`: the reader has gone, stop quietly
        _silence_stdout()
        return 128 + 13  # what a shell reports for a process ended by SIGPIPE
    except ValueError as e:  # bad input from the user: one clear line, no traceback
        _error_line(f"cnnlineage {args.command}: error: {e}")
        return 2
    except OSError as e:  # unwritable or missing path, full disk, ...: name the path and the cause
        _error_line(f"cnnlineage {args.command}: error: {describe_os_error(e)}")
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def _error_line(text: str) -> None:
    """Write one line to stderr in a single write, so that the lines of ranks sharing a pipe never interleave."""
    sys.stderr.write(text + "\n")
    sys.stderr.flush()


_OS_HINTS = {
    errno.EACCES: "choose a location you can write to or fix its permissions",
    errno.EPERM: "choose a location you can write to or fix its permissions",
    errno.EROFS: "the file system is read-only; choose another location",
    errno.ENOSPC: "the disk is full; free some space or choose another location",
    errno.EDQUOT: "the disk quota is exceeded; free some space or choose another location",
    errno.ENOENT: "check the path",
    errno.ENOTDIR: "a file is in the way where a directory is needed; choose another path",
    errno.EEXIST: "a file is in the way where a directory is needed; choose another path",
    errno.EISDIR: "a directory is in the way where a file is needed; choose another path",
}


def describe_os_error(e: OSError) -> str:
    """Return one line for an OSError: the path(s), the system's reason and what to do."""
    paths = " -> ".join(str(p) for p in (e.filename, e.filename2) if p is not None)
    reason = e.strerror or str(e) or type(e).__name__
    hint = _OS_HINTS.get(e.errno or -1)
    return f"{paths + ': ' if paths else ''}{reason}" + (f" ({hint})" if hint else "")


def _silence_stdout() -> None:
    # Point stdout at /dev/null so the interpreter's final flush does not raise again.
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass
