"""Self-supervised pre-training and few-label training on a bundled data set, measured end to end.

    python benchmarks/ssl_mnist5k.py --seeds 0 1 2 --epochs 10
    python benchmarks/ssl_mnist5k.py --data shapes10 --model resnet20 --seeds 0

For each seed: the frozen-feature probes (logistic regression and weighted k-NN, all
labels and 10 per class) of raw pixels, of the randomly initialised network, and of the
network after ``cnnlineage pretrain`` with each method for ``--epochs`` epochs; then, with
``--labels-per-class`` labels per class, each semi-supervised method for ``--semi-epochs``
epochs and the supervised baseline on the same labelled images for as many optimizer steps
(10 classes assumed). Prints a Markdown table (mean over seeds, per seed in
brackets) and writes benchmarks/results/ssl_<data>.json. Wall times are those of this
machine, with whatever else runs on it.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time
from pathlib import Path

import torch

from cnnlineage.ssl.pretrain import pretrain, pretrain_config
from cnnlineage.ssl.probe import run_probe
from cnnlineage.train import train
from cnnlineage.train.run import resolve_config


def cell(rs: list[dict], key: str) -> str:
    """Return the Markdown cell of ``key`` over the seeds' records: the mean, each seed in brackets."""
    vals = [r[key] for r in rs if key in r]
    if not vals:
        return ""
    per = f" ({', '.join(f'{v:.1f}' for v in vals)})" if len(vals) > 1 else ""
    return f"{statistics.mean(vals):.2f}{per}"


def merge_rows(files: list[str]) -> tuple[list[dict], dict[str, list[dict]]]:
    """Return the runs saved in ``files`` (JSON) and their rows joined per name, in file order."""
    runs = [json.loads(Path(f).read_text()) for f in files]
    merged: dict[str, list[dict]] = {}
    for r in runs:
        for name, recs in r["rows"].items():
            merged.setdefault(name, []).extend(recs)
    return runs, merged


def _probe(
    source: str | None, *, data: str, seed: int, raw: bool = False, lpc: int = 10, image_size: int = 0
) -> dict:
    r = run_probe(
        source, data=data, raw=raw, seed=seed, labels_per_class=[lpc], image_size=image_size, progress=False,
        log=lambda s: None,
    )  # fmt: skip
    rows = {row["labels_per_class"]: row for row in r["rows"]}
    few = rows[lpc]
    full = [row for row in r["rows"] if row["labels_per_class"] != lpc][-1]
    return {"linear": full["linear_top1"], "knn": full["knn_top1"], "linear_few": few["linear_top1"],
            "knn_few": few["knn_top1"]}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="mnist5k")
    ap.add_argument("--model", default="lenet5_modern")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--methods", nargs="+", default=["simclr", "moco", "byol", "dino"])
    ap.add_argument(
        "--epochs",
        nargs="+",
        default=["10"],
        help="pre-training epochs: N for every method, METHOD=N for one (e.g. 10 simclr=100)",
    )
    ap.add_argument(
        "--set",
        nargs="*",
        default=[],
        metavar="KEY=VALUE",
        help="config overrides for every pre-training run (e.g. ssl.probe_every=10)",
    )
    ap.add_argument("--semi", nargs="*", default=["fixmatch"], help="semi-supervised methods")
    ap.add_argument("--semi-epochs", type=int, default=10)
    ap.add_argument("--labels-per-class", type=int, default=10)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default="runs/bench-ssl")
    ap.add_argument("--json", help="where to write the rows (default benchmarks/results/ssl_<data>.json)")
    ap.add_argument(
        "--merge",
        nargs="+",
        metavar="JSON",
        help="print and write the table of several runs' JSON files (e.g. one process per seed), run nothing",
    )
    args = ap.parse_args()
    if args.merge:
        runs, merged = merge_rows(args.merge)
        first = runs[0]["args"]
        args.model, args.data, args.methods = first["model"], first["data"], first["methods"]
        args.labels_per_class = first["labels_per_class"]
        args.seeds = sorted({rec["seed"] for recs in merged.values() for rec in recs})
        report(args, merged, merged_from=[r["args"] for r in runs])
        return
    torch.set_num_threads(args.threads)
    lpc, quiet = args.labels_per_class, ['run.progress="none"', "run.tensorboard=false"]
    pre_epochs = {
        m: int(e.split("=")[-1])
        for m in args.methods
        for e in args.epochs
        if "=" not in e or e.startswith(m + "=")
    }
    rows: dict[str, list[dict]] = {}

    def add(name: str, rec: dict) -> None:
        rows.setdefault(name, []).append(rec)
        print(name, rec, flush=True)

    for seed in args.seeds:
        add("raw pixels", {"seed": seed, **_probe(None, data=args.data, seed=seed, raw=True, lpc=lpc)})
        side = pretrain_config(  # the input side pre-training sees (data.image_size; 0: the model's own)
            args.model,
            method=(args.methods or ["simclr"])[0],
            overrides=[f"data.name={args.data}", *args.set],
        ).data.image_size
        add(f"random {args.model}", {"seed": seed, **_probe(args.model, data=args.data, seed=seed, lpc=lpc,
                                                            image_size=side)})  # fmt: skip
        for method in args.methods:
            out = f"{args.out}/{method}-{args.data}-{seed}"
            cfg = pretrain_config(args.model, method=method, overrides=[
                f"data.name={args.data}", f"epochs={pre_epochs[method]}", f"seed={seed}", f'run.out_dir="{out}"', *quiet,
                *args.set])  # fmt: skip
            t = time.perf_counter()
            pretrain(cfg, overwrite=True, log=lambda s: None)
            minutes = (time.perf_counter() - t) / 60
            ckpt = f"{out}/checkpoints/last.pt"
            rec = {"seed": seed, "epochs": pre_epochs[method], "minutes": minutes}
            add(method, {**rec, **_probe(ckpt, data=args.data, seed=seed, lpc=lpc)})
        steps = 0  # the supervised baseline takes as many optimizer steps as the longest semi-supervised run
        for semi in [*args.semi, "none"]:
            out = f"{args.out}/semi-{semi}-{args.data}-{seed}"
            sets = [f"data.name={args.data}", f"seed={seed}", f'run.out_dir="{out}"',
                    f"semi.labels_per_class={lpc}", f"semi.method={semi}", *quiet]  # fmt: skip
            epochs = args.semi_epochs
            if semi == "none":
                batch = resolve_config(args.model, overrides=sets).data.batch_size
                if batch > lpc * 10:  # a recipe batch larger than the labelled images (shapes10: 128 > 100)
                    batch = lpc * 10
                    sets.append(f"data.batch_size={batch}")
                if steps:
                    epochs = math.ceil(steps / math.ceil(lpc * 10 / batch))
            cfg = resolve_config(args.model, overrides=[*sets, f"epochs={epochs}"])
            s = train(cfg, overwrite=True, log=lambda s: None)
            last = json.loads(Path(out, "metrics.jsonl").read_text().splitlines()[-1])
            steps = max(steps, last["step"])
            name = f"{lpc} labels/class: " + ("supervised" if semi == "none" else semi)
            add(name, {"seed": seed, "top1": s["final_top1"], "minutes": s["wall_seconds"] / 60,
                       "epochs": epochs, "steps": last["step"]})  # fmt: skip

    report(args, rows)


def report(args: argparse.Namespace, rows: dict[str, list[dict]], **extra) -> None:
    """Print the Markdown table (mean over seeds) and the per-method verdict; write the rows as JSON."""
    lpc = args.labels_per_class
    print(f"\n{args.model} on {args.data}, seeds {args.seeds}")
    print(f"| features / run | linear (all) | k-NN (all) | linear ({lpc}/class) | k-NN ({lpc}/class) | "
          "held-out top-1 | minutes |")  # fmt: skip
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, rs in rows.items():
        print(f"| {name} | {cell(rs, 'linear')} | {cell(rs, 'knn')} | {cell(rs, 'linear_few')} | "
              f"{cell(rs, 'knn_few')} | {cell(rs, 'top1')} | {cell(rs, 'minutes')} |")  # fmt: skip
    base = {r["seed"]: r["linear"] for r in rows.get(f"random {args.model}", [])}
    for method in args.methods:
        above = [r["linear"] > base[r["seed"]] for r in rows.get(method, []) if r["seed"] in base]
        print(f"{method}: linear probe above the random network's in {sum(above)} of {len(above)} seeds")
    out = Path(args.json or f"benchmarks/results/ssl_{args.data}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps({"args": vars(args), "rows": rows, **extra}, indent=1) + "\n")
    tmp.replace(out)


if __name__ == "__main__":
    main()
