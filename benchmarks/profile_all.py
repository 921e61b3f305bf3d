"""Time the analyzer on every registered model at its default input (goal: under 60 s in total on 2 CPU cores).

    python benchmarks/profile_all.py [--repeat 3] [--json out.json]

Each model is profiled ``--repeat`` times (built on the meta device each time); the
median per model and the sum of medians are reported.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import cnnlineage
from cnnlineage.analysis import profile


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3, help="runs per model; the median is reported")
    ap.add_argument("--json", default=None, help="write per-model medians to this JSON file")
    args = ap.parse_args()

    profile("lenet5")  # import and registration costs, not part of any model's time
    medians = {}
    start = time.perf_counter()
    for name in cnnlineage.list_models():
        times = []
        for _ in range(args.repeat):
            t = time.perf_counter()
            p = profile(name)
            times.append(time.perf_counter() - t)
        medians[name] = statistics.median(times)
        print(f"{name:24s} {medians[name]:6.3f} s   {p.total_macs / 1e9:9.3f} GMACs")
    wall = time.perf_counter() - start
    total = sum(medians.values())
    print(
        f"\n{len(medians)} models: sum of medians {total:.1f} s (goal < 60 s); wall for all repeats {wall:.1f} s"
    )
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"medians_s": medians, "sum_of_medians_s": total}, f, indent=2)


if __name__ == "__main__":
    main()
