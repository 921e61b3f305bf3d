"""Accuracy and wall time of the shipped lenet5 recipe on mnist5k, with SVM and k-NN baselines on the same split.

Runs ``cnnlineage train lenet5 --seed S`` as a user would (a fresh process each, startup
included) for each seed, reads each run's summary.json, and fits an RBF-kernel SVM and a
k-nearest-neighbour classifier on the same 4,000 / 1,000 digits (raw pixels scaled to
[0, 1]) for reference. Prints a table and writes JSON.

    python benchmarks/train_lenet5.py                     # seeds 0 1 2
    python benchmarks/train_lenet5.py --threads 1 --out lenet5.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def run_recipe(seed: int, out: Path, threads: int, recipe: str) -> dict:
    cmd = [
        sys.executable,
        "-m",
        "cnnlineage",
        "train",
        recipe,
        "--seed",
        str(seed),
        "--out",
        str(out),
        "--quiet",
    ]
    if threads:
        cmd += ["--set", f"threads={threads}"]
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{done.stdout}\n{done.stderr}")
    summary = json.loads((out / "summary.json").read_text())
    return {"seed": seed, "top1": summary["final_top1"], "best_top1": summary["best_top1"],
            "train_wall_seconds": summary["wall_seconds"], "process_wall_seconds": wall,
            "images_per_second": summary["images_per_second"]}  # fmt: skip


def baselines() -> dict:
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.svm import SVC

    from cnnlineage.data import build_datasets

    train, test, _ = build_datasets("mnist5k")
    x, y = train.images.flatten(1).numpy() / 255.0, train.labels.numpy()
    xt, yt = test.images.flatten(1).numpy() / 255.0, test.labels.numpy()
    out = {}
    for name, clf in (
        ("svm_rbf", SVC(kernel="rbf", C=10, gamma="scale")),
        ("knn_3", KNeighborsClassifier(3)),
    ):
        start = time.perf_counter()
        clf.fit(x, y)
        acc = 100.0 * float((clf.predict(xt) == yt).mean())
        out[name] = {"top1": acc, "seconds": time.perf_counter() - start}
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default)")
    p.add_argument("--recipe", default="lenet5")
    p.add_argument("--out", default=None, help="write the results as JSON here")
    args = p.parse_args()
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for s in args.seeds:
            runs.append(run_recipe(s, Path(tmp) / f"seed{s}", args.threads, args.recipe))
            r = runs[-1]
            print(f"seed {s}: held-out top-1 {r['top1']:.2f}%  train {r['train_wall_seconds']:.1f}s  "
                  f"process {r['process_wall_seconds']:.1f}s  {r['images_per_second']:,.0f} img/s", flush=True)  # fmt: skip
    base = baselines()
    mean = statistics.mean(r["top1"] for r in runs)
    result = {
        "recipe": args.recipe,
        "runs": runs,
        "mean_top1": mean,
        "std_top1": statistics.pstdev(r["top1"] for r in runs),
        "mean_process_wall_seconds": statistics.mean(r["process_wall_seconds"] for r in runs),
        "baselines": base,
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "threads": args.threads or "default",
        },  # fmt: skip
    }
    print(f"\n{args.recipe} on mnist5k (4,000 train / 1,000 held out), {len(runs)} seeds:")
    print(f"  mean held-out top-1 {mean:.2f}% (+-{result['std_top1']:.2f}), "
          f"mean wall {result['mean_process_wall_seconds']:.1f}s per run (whole process)")  # fmt: skip
    for name, b in base.items():
        print(f"  baseline {name}: {b['top1']:.2f}% ({b['seconds']:.1f}s)")
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
