"""DARTS vs random search vs lenet5_modern on mnist5k, at the same search budget.

    python benchmarks/search_mnist5k.py --seeds 0 1 2 --budget 15 --retrain-epochs 10

For each seed: a first-order DARTS search and a random search, each given ``--budget``
minutes, then each derived network trained from scratch by the trainer for
``--retrain-epochs`` epochs; and lenet5_modern trained with its shipped recipe. Prints
a Markdown table of held-out top-1 and parameters (mean over seeds) and writes
benchmarks/results/search_mnist5k.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from cnnlineage.registry import create_model
from cnnlineage.search import run_search
from cnnlineage.train import train
from cnnlineage.train.run import resolve_config


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--budget", type=float, default=15.0, help="search minutes per method and seed")
    ap.add_argument("--retrain-epochs", type=int, default=10)
    ap.add_argument("--out", default="runs/bench-search")
    args = ap.parse_args()
    rows: dict[str, list[dict]] = {"darts": [], "random": [], "lenet5_modern": []}
    for seed in args.seeds:
        for method in ("darts", "random"):
            t = time.perf_counter()
            r = run_search(method, out_dir=f"{args.out}/{method}-{seed}", data="mnist5k", budget_minutes=args.budget,
                           seed=seed, retrain_epochs=args.retrain_epochs, epochs=50 if method == "darts" else 2,
                           candidates=100, log=lambda s: None)  # fmt: skip
            rows[method].append({"seed": seed, "top1": r["retrain"]["final_top1"], "params": r["retrain"]["params"],
                                 "search_min": r["search_seconds"] / 60, "total_min": (time.perf_counter() - t) / 60})  # fmt: skip
            print(method, seed, rows[method][-1], flush=True)
        cfg = resolve_config("lenet5_modern", overrides=[f"seed={seed}", f'run.out_dir="{args.out}/lenet5_modern-{seed}"',
                                                         "run.progress=none"])  # fmt: skip
        s = train(cfg, overwrite=True, log=lambda s: None)
        n = sum(p.numel() for p in create_model("lenet5_modern", in_chans=1).parameters())
        rows["lenet5_modern"].append(
            {"seed": seed, "top1": s["final_top1"], "params": n, "total_min": s["wall_seconds"] / 60}
        )
        print("lenet5_modern", seed, rows["lenet5_modern"][-1], flush=True)
    print("\n| network | held-out top-1 (mean of seeds) | per seed | parameters | search + training (min) |")
    print("|---|---:|---|---:|---:|")
    for name, rs in rows.items():
        tops = [r["top1"] for r in rs]
        print(f"| {name} | {statistics.mean(tops):.2f}% | {', '.join(f'{t:.2f}' for t in tops)} | "
              f"{rs[0]['params']:,} | {statistics.mean(r['total_min'] for r in rs):.1f} |")  # fmt: skip
    out = Path("benchmarks/results")
    out.mkdir(parents=True, exist_ok=True)
    (out / "search_mnist5k.json").write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
