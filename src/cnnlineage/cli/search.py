"""`cnnlineage search`: architecture search at laptop scale (DARTS, random, design spaces, compound scaling)."""

from __future__ import annotations

import argparse
import sys
import time


def _cmd_search(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from ..search import METHODS, run_search

    if args.method == "list":
        for name, what in METHODS.items():
            print(f"{name:13s} {what}")
        return 0
    if args.seed < 0:
        raise ValueError(f"--seed must be >= 0, got {args.seed}")
    for flag in ("epochs", "retrain_epochs", "samples", "candidates"):
        v = getattr(args, flag)
        if v is not None and v < 1:
            raise ValueError(f"--{flag.replace('_', '-')} must be >= 1, got {v}")
    out = args.out or time.strftime(f"runs/search-{args.method}-{args.data}-%Y%m%d-%H%M%S")
    bar = tqdm(desc=f"search {args.method}", unit="step", disable=args.quiet or not sys.stderr.isatty())

    def progress(info: dict) -> None:
        bar.update(1)
        bar.set_postfix({k: (f"{v:.3g}" if isinstance(v, float) else v) for k, v in info.items()})

    try:
        result = run_search(
            args.method, out_dir=out, data=args.data, budget_minutes=args.budget, seed=args.seed, quick=args.quick,
            order=args.order, cost=args.cost, cost_weight=args.cost_weight, epochs=args.epochs,
            retrain_epochs=args.retrain_epochs, samples=args.samples or 32, candidates=args.candidates or 8,
            log=(lambda s: None) if args.quiet else (lambda s: tqdm.write(s)), progress=progress,
        )  # fmt: skip
    finally:
        bar.close()
    print(f"{result['method']} on {args.data}: {result['verdict']}")
    print(f"search {result['search_seconds'] / 60:.1f} min; wrote {out}/results.json, report.md and figures")
    if "train_command" in result:
        print(f"train it again: {result['train_command']}")
    return 0


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """Register search."""
    p = sub.add_parser(
        "search",
        help="architecture search: darts, random, design-space, compound (resumable; `search list`)",
        description="Search architectures on a bundled data set within minutes of CPU. Rerun the same command "
        "with the same --out to continue a killed search. The held-out split is only used to evaluate the final "
        "network, which the trainer trains from scratch (darts, random).",
    )
    p.add_argument("method", help="darts, random, design-space, compound (or `list`)")
    p.add_argument("--data", default="mnist5k", help="mnist5k (default), digits, shapes10, ...")
    p.add_argument(
        "--budget", type=float, default=0.0, metavar="MINUTES", help="search time limit (0 = none)"
    )
    p.add_argument(
        "--out", default=None, help="output directory (default runs/search-<method>-<data>-<time>)"
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true", help="a tiny run in about a minute (for trying it out)")
    p.add_argument("--order", type=int, choices=[1, 2], default=1, help="darts: first or second order")
    p.add_argument("--cost", choices=["none", "macs", "latency"], default="none",
                   help="darts: hardware-aware term, MACs (analyzer) or latency measured here")  # fmt: skip
    p.add_argument("--cost-weight", type=float, default=0.0, help="darts: weight λ of the cost term")
    p.add_argument(
        "--epochs",
        type=int,
        default=None,
        help="darts: search epochs; others: epochs per candidate (design-space default 4: 312 steps at 16x16)",
    )
    p.add_argument(
        "--retrain-epochs", type=int, default=None, help="darts/random: epochs of the final training"
    )
    p.add_argument("--samples", type=int, default=None, help="design-space: models per space (default 32)")
    p.add_argument("--candidates", type=int, default=None, help="random: candidates (default 8)")
    p.add_argument("--quiet", action="store_true", help="no progress bar or log lines")
    p.set_defaults(func=_cmd_search)
