"""`cnnlineage experiment list|run|report`: the lineage's claims as experiments anyone can rerun."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..common import atomic_write_text, format_table


def _cmd_list(args: argparse.Namespace) -> int:
    from ..experiments import get_experiment, list_experiments

    rows = []
    for name in list_experiments():
        e = get_experiment(name)
        rows.append((name, e.title, e.source.split(";")[0].split(",")[0]))
    print(format_table(rows, ["name", "claim", "source"]))
    print(f"\n{len(rows)} experiments; run one with `cnnlineage experiment run NAME [--quick]`")
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    from ..experiments import get_experiment, run_experiment

    exp = get_experiment(args.name)
    if args.seeds is not None and args.seeds < 1:
        raise ValueError(f"--seeds must be a positive integer (how many seeds to run), got {args.seeds}")
    out = Path(args.out or f"runs/experiments/{exp.name}{'-quick' if args.quick else ''}")
    print(f"cnnlineage experiment: {exp.name} ({'quick' if args.quick else 'full'} budget) -> {out}")
    res = run_experiment(exp, out=out, seeds=args.seeds, quick=args.quick, progress=not args.no_progress)
    v = res["verdict"]
    print(exp.table(res))
    print(f"\nverdict: {v['outcome']}. {v['reason']}")
    print(f"time: {res['seconds']:.1f} s; results in {out}/results.json, report in {out}/report.md")
    for f in res["figures"]:
        print(f"figure: {out / f}")
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from ..experiments import assemble_report

    rel = Path(args.output).parent if args.output else None
    text = assemble_report(args.dirs, relative_to=rel)
    if args.output:
        atomic_write_text(args.output, text)
        print(f"wrote {args.output}", file=sys.stderr)
    else:
        print(text)
    return 0


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """Register `experiment` with its list, run and report subcommands."""
    p = sub.add_parser("experiment", help="rerun the lineage's claims as experiments (list, run, report)")
    p.set_defaults(func=lambda a: (p.print_help(), 2)[1])
    esub = p.add_subparsers(dest="experiment_command", metavar="ACTION")
    lp = esub.add_parser("list", help="list the experiments")
    lp.set_defaults(func=_cmd_list)
    rp = esub.add_parser("run", help="run an experiment (finished seeds are reused when rerun)")
    rp.add_argument("name", help="experiment name (see `cnnlineage experiment list`)")
    rp.add_argument(
        "--quick", action="store_true", help="tiny budget (<= 60 s): checks the plumbing, not the claim"
    )
    rp.add_argument(
        "--seeds", type=int, default=None, help="number of seeds, 0..N-1 (default: the experiment's)"
    )
    rp.add_argument("--out", default=None, help="output directory (default runs/experiments/NAME[-quick])")
    rp.add_argument("--no-progress", action="store_true", help="no progress bar")
    rp.set_defaults(func=_cmd_run)
    pp = esub.add_parser("report", help="assemble the Markdown report of finished experiment directories")
    pp.add_argument("dirs", nargs="+", help="--out directories of finished runs")
    pp.add_argument("-o", "--output", default=None, help="write the Markdown here (default: print it)")
    pp.set_defaults(func=_cmd_report)
