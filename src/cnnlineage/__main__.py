"""`python -m cnnlineage` and the `cnnlineage` console script: start-up included in the Ctrl-C handling."""

import sys


def run() -> None:
    """Import the command line and run it; a Ctrl-C while importing ends with status 130, no traceback."""
    try:
        from .cli import main

        status = main()  # main handles a Ctrl-C during a command; this covers imports and parsing
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        status = 130
    raise SystemExit(status)


if __name__ == "__main__":
    run()
