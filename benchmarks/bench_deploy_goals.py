"""The deployment figures: ours vs torchvision per backend, the auto backend, training against the GEMM peak.

    python benchmarks/bench_deploy_goals.py [--threads 2] [--reps 10] [--out bench-results/deploy]

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
    ap.add_argument("--only", default=None, help="run one part: infer, train or auto")
    args = ap.parse_args()
    common = ["--threads", args.threads, "--peak", "--format", "md", "--quiet", "--clock", args.clock]
    parts = {
        "infer": ["bench", *MODELS, "--vs", "torchvision", "--reps", args.reps, "--out", f"{args.out}/infer"],
        "auto": ["bench", "resnet50", "mobilenet_v2", "--backend", "eager,onnxruntime,auto", "--reps", args.reps,
                 "--out", f"{args.out}/auto"],
        "train": ["bench", *MODELS, "--train", "--batch", "32", "--vs", "torchvision", "--reps", args.train_reps,
                  "--warmup", "1", "--out", f"{args.out}/train"],
    }  # fmt: skip
    env = {**os.environ, "CNNLINEAGE_CACHE": f"{args.out}/cache"}
    start = time.perf_counter()
    for name, argv in parts.items():
        if args.only and name != args.only:
            continue
        cmd = [sys.executable, "-m", "cnnlineage", *argv, *common]
        print("$ cnnlineage " + " ".join(argv + common), flush=True)
        t = time.perf_counter()
        subprocess.run(cmd, env=env, check=True)
        print(f"({time.perf_counter() - t:.0f}s)\n", flush=True)
    print(f"all parts: {time.perf_counter() - start:.0f}s", flush=True)
    verdicts(args.out)


def verdicts(out: str) -> None:
    """Print, per ours-vs-torchvision row, whether ours is slower, faster or neither at 95 % confidence."""
    for part in ("infer", "train"):
        path = f"{out}/{part}/bench.json"
        if not os.path.exists(path):
            continue
        counts = {"slower": 0, "faster": 0, "not distinguishable": 0, "too few pairs": 0}
        for r in json.load(open(path))["rows"]:
            if r["ratio"] is None:
                continue
            if r["ratio_low"] is None:
                verdict = "too few pairs"
            elif r["ratio_high"] < 1:
                verdict = "slower"
            elif r["ratio_low"] > 1:
                verdict = "faster"
            else:
                verdict = "not distinguishable"
            counts[verdict] += 1
            ci = "" if r["ratio_low"] is None else f" [{r['ratio_low']:.3f}, {r['ratio_high']:.3f}]"
            print(f"{part} {r['model']}: tv/ours {r['ratio']:.3f}{ci} -> ours {verdict}")
        print(f"{part}: " + ", ".join(f"{v} {k}" for k, v in counts.items() if v))


if __name__ == "__main__":
    main()
