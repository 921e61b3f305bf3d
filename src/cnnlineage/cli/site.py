"""`cnnlineage site`: build the static lineage explorer, or serve a built one on 127.0.0.1."""

from __future__ import annotations

import argparse
import sys


def _cmd_site(args: argparse.Namespace) -> int:
    if args.serve:
        return _serve(args)
    if not args.out:
        raise ValueError("give --out DIR to build the site, or --serve DIR to serve one already built")
    from tqdm import tqdm

    from ..registry import list_models
    from ..site import build_site
    from . import build_parser

    names = None
    if args.models:
        names = []
        for n in args.models:
            matched = list_models(n) if any(c in n for c in "*?[") else [n]
            if not matched:
                raise ValueError(f"--models pattern {n!r} matches no registered model; see `cnnlineage list`")
            names += [m for m in matched if m not in names]
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    total = len(names) if names is not None else len(list_models())
    bar = tqdm(total=total, desc="profiling", unit="model", disable=args.quiet or not sys.stderr.isatty())
    report = build_site(
        out=args.out, models=names, runs=args.runs, experiments=args.experiments, quick=args.quick,
        commands=set(sub.choices), progress=lambda n: (bar.set_postfix_str(n), bar.update(1)),
    )  # fmt: skip
    bar.close()
    for w in report.warnings:
        print(f"cnnlineage site: warning: {w}", file=sys.stderr)
    print(
        f"wrote {len(report.pages)} pages ({report.models} models, {report.runs} runs, {report.experiments} "
        f"experiments) to {report.out} in {report.seconds:.1f} s; open {report.out / 'index.html'} "
        f"or run `cnnlineage site --serve {report.out}`"
    )
    return 0


def _serve(args: argparse.Namespace) -> int:
    from ..site import make_server

    if args.out or args.runs or args.experiments:
        raise ValueError(
            "--serve DIR serves a site already built; build it first with --out (without --serve)"
        )
    server = make_server(args.serve, port=args.port)
    host, port = server.server_address[:2]
    print(f"serving {args.serve} at http://{host}:{port}/ (this machine only; Ctrl-C stops)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("stopped", file=sys.stderr)
    finally:
        server.server_close()
    return 0


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """Register site."""
    p = sub.add_parser(
        "site",
        help="build the lineage explorer, a static web site of the zoo, your runs and experiments",
        description="Build a self-contained static site (open DIR/index.html from disk; no network needed): the "
        "lineage graph, a page per model with its layer table, the comparison with interactive plots, your "
        "training runs and experiment reports, and search. Or serve a built site on 127.0.0.1.",
    )
    p.add_argument(
        "--out",
        metavar="DIR",
        default=None,
        help="directory to write the site into (new, empty, or an earlier site)",
    )
    p.add_argument("--runs", nargs="+", action="extend", default=[], metavar="RUNS_DIR",
                   help="run directories of `cnnlineage train`, or folders of them")  # fmt: skip
    p.add_argument("--experiments", nargs="+", action="extend", default=[], metavar="DIR",
                   help="output directories of `cnnlineage experiment run`, or folders of them")  # fmt: skip
    p.add_argument("--models", nargs="+", default=None, metavar="NAME",
                   help="only these models or patterns (default: the whole registry)")  # fmt: skip
    p.add_argument(
        "--quick", action="store_true", help="skip the analyzer: cards, lineage, runs and experiments only"
    )
    p.add_argument(
        "--serve", metavar="DIR", default=None, help="serve the site in DIR on http://127.0.0.1:PORT/"
    )
    p.add_argument(
        "--port", type=int, default=8000, help="port for --serve (default 8000; 0 picks a free one)"
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_site)
