"""The deployment figures: ours vs torchvision per backend, the auto backend, training against the GEMM peak.

    python benchmarks/bench_deploy_goals.py [--threads 2] [--reps 10] [--out bench-results/deploy]
    python benchmarks/bench_deploy_goals.py --verdicts bench-results/deploy   # the verdicts again

Runs, in one process each, the `cnnlineage bench` commands below and keeps their JSON,
CSV and charts under --out. Every ratio is measured interleaved (repetition by repetition)
in the same process; fractions are against the GEMM peak measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

MODELS = [
    "resnet18",
    "resnet50",
    "mobilenet_v2",
    "efficientnet_b0",
    "convnext_tiny",
    "densenet121",
    "vit_b_16",
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", default="1")
    ap.add_argument("--reps", default="10")
    ap.add_argument("--clock", default="cpu", help="cpu (default: steady on a shared machine) or wall")
    ap.add_argument("--train-reps", default="2")
    ap.add_argument("--out", default="bench-results/deploy")
    ap.add_argument(
        "--only", default=None, choices=["infer", "auto", "train", "train_backends"], help="run one part"
    )
    args = ap.parse_args()
    common = ["--threads", args.threads, "--peak", "--format", "md", "--quiet", "--clock", args.clock]
    parts = {
        "infer": ["bench", *MODELS, "--vs", "torchvision", "--reps", args.reps, "--out", f"{args.out}/infer"],
        "auto": ["bench", "resnet50", "mobilenet_v2", "--backend", "eager,onnxruntime,auto", "--reps", args.reps,
                 "--out", f"{args.out}/auto"],
        "train": ["bench", *MODELS, "--train", "--batch", "32", "--vs", "torchvision", "--reps", args.train_reps,
                  "--warmup", "1", "--out", f"{args.out}/train"],
        # the resnet-class training step against the GEMM peak on each training backend
        "train_backends": ["bench", "resnet18", "resnet50", "--train", "--batch", "32",
                           "--backend", "eager,channels_last,compile", "--reps", args.train_reps, "--warmup", "1",
                           "--out", f"{args.out}/train_backends"],
    }  # fmt: skip
    env = {**os.environ, "CNNLINEAGE_CACHE": f"{args.out}/cache"}
    start = time.perf_counter()
    seconds: dict[str, float] = {}
    for name, argv in parts.items():
        if args.only and name != args.only:
            continue
        cmd = [sys.executable, "-m", "cnnlineage", *argv, *common]
        print("$ cnnlineage " + " ".join(argv + common), flush=True)
        t = time.perf_counter()
        code = subprocess.run(cmd, env=env).returncode
        if code:  # bench has said why in one line; stop with its status
            print(f"bench_deploy_goals.py: the {name} part stopped with exit status {code}", file=sys.stderr)
            sys.exit(code)
        seconds[name] = time.perf_counter() - t
        print(f"({seconds[name]:.0f}s)\n", flush=True)
    table = sum(v for k, v in seconds.items() if k != "train_backends")
    print(f"the ours-vs-torchvision table and auto (infer, auto, train): {table:.0f}s", flush=True)
    print(f"all parts: {time.perf_counter() - start:.0f}s", flush=True)
    verdicts(args.out)


def _verdicts_only() -> None:
    ap = argparse.ArgumentParser(description="print the verdicts of a finished run")
    ap.add_argument("out")
    out = ap.parse_args().out
    if not any(os.path.exists(f"{out}/{part}/bench.json") for part in ("infer", "train")):
        print(f"bench_deploy_goals.py: error: no infer/bench.json or train/bench.json under {out}; "
              "give the --out directory of a finished run", file=sys.stderr)  # fmt: skip
        sys.exit(2)
    verdicts(out)


def verdict(low: float | None, high: float | None) -> str:
    """Return what an interval of tv/ours says: ours slower (all of it < 1), faster (all > 1), or neither."""
    if low is None:
        return "too few pairs"
    return "slower" if high < 1 else "faster" if low > 1 else "not distinguishable"


def verdicts(out: str, level: float = 0.95) -> None:
    """Print, per ours-vs-torchvision row, whether ours is slower, faster or neither.

    Two intervals per row: the row's own at ``level`` (95 %), and one for the whole part at
    Bonferroni's level 1 - (1 - level) / m for its m rows. Where nothing differs, seven rows
    at 95 % each call at least one row wrongly about one time in four; the part's intervals
    together are wrong at most 5 % of the time, so "slower" there is a claim about the table.
    """
    from cnnlineage.deploy.bench import median_ci

    for part in ("infer", "train"):
        path = f"{out}/{part}/bench.json"
        if not os.path.exists(path):
            continue
        rows = [r for r in json.load(open(path))["rows"] if r["ratio"] is not None]
        family = 1 - (1 - level) / max(len(rows), 1)
        counts: dict[str, dict[str, int]] = {"row": {}, "table": {}}
        for r in rows:
            own = verdict(r["ratio_low"], r["ratio_high"])
            ci = median_ci(r.get("paired_ratios") or [], level=family)
            whole = verdict(*(ci or (None, None)))
            for k, v in (("row", own), ("table", whole)):
                counts[k][v] = counts[k].get(v, 0) + 1
            show = [
                f"{100 * level:.0f}% [{r['ratio_low']:.3f}, {r['ratio_high']:.3f}] -> {own}"
                if r["ratio_low"]
                else own,
                f"{100 * family:.2f}% [{ci[0]:.3f}, {ci[1]:.3f}] -> {whole}"
                if ci
                else f"{100 * family:.2f}%: {whole}",
            ]
            print(f"{part} {r['model']}: tv/ours {r['ratio']:.3f}; " + "; ".join(show))
        for k, label in (
            ("row", f"each row at {100 * level:.0f}%"),
            ("table", f"the table at {100 * level:.0f}%"),
        ):
            print(f"{part}, {label}: " + ", ".join(f"{v} {n}" for n, v in counts[k].items()))
    peak_fractions(out)


def peak_fractions(out: str, aim: float = 50.0) -> None:
    """Print each training row's share of the fp32 GEMM peak of its run, against the aim."""
    for part in ("train", "train_backends"):
        path = f"{out}/{part}/bench.json"
        if not os.path.exists(path):
            continue
        for r in json.load(open(path))["rows"]:
            if r.get("peak_fraction") is None or not r["model"].startswith("resnet"):
                continue
            pct = 100 * r["peak_fraction"]
            print(
                f"{part} {r['model']} {r['backend']}: {r['gflop_per_s']:.1f} GFLOP/s, {pct:.1f}% of the fp32 peak "
                f"({'at or above' if pct >= aim else 'below'} the {aim:.0f}% aim)"
            )


if __name__ == "__main__":
    if sys.argv[1:2] == ["--verdicts"]:
        sys.argv.pop(1)
        _verdicts_only()
    else:
        main()
