"""MAE pre-training, then fine-tuning, against training from scratch: vit_tiny_patch4_32 on shapes10.

    python benchmarks/mae_shapes10.py --seeds 0 1 2
    python benchmarks/mae_shapes10.py --seeds 0 --pretrain-epochs 1 --epochs 2 --labelled 256   # a smoke run

For each seed: ``cnnlineage pretrain vit_tiny_patch4_32 --method mae`` on all of shapes10's
training images with the labels ignored (``--pretrain-epochs``), then ``cnnlineage train
--init`` on the first ``--labelled`` training images for ``--epochs`` epochs; and the same
training from a random initialisation, the same images, epochs, optimiser and seed. The two
runs differ only in their starting weights, so "at the same budget" means the same
fine-tuning steps; the pre-training's own minutes are reported beside them. Both use
AdamW (lr 1e-3, weight decay 0.05, betas 0.9/0.999), a one-epoch warm-up then cosine, and
the shapes10 recipe's crop and flip, the usual small-data ViT setting.

Prints a Markdown table (mean over seeds, per seed in brackets, and the paired difference)
and writes benchmarks/results/mae_shapes10.json. Wall times are this machine's, with
whatever else runs on it.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch
from ssl_mnist5k import cell, merge_rows  # this script's folder is on sys.path

from cnnlineage.ssl.pretrain import pretrain, pretrain_config
from cnnlineage.train import train
from cnnlineage.train.run import resolve_config

MODEL = "vit_tiny_patch4_32"
VIT_FINETUNE = ["optim.name=adamw", "optim.lr=0.001", "optim.weight_decay=0.05", "optim.nesterov=false",
                "optim.momentum=0.9", "schedule.warmup_epochs=1", "data.batch_size=128"]  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="shapes10")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--pretrain-epochs", type=int, default=4, help="MAE epochs over all training images")
    ap.add_argument("--epochs", type=int, default=6, help="fine-tuning / from-scratch epochs")
    ap.add_argument("--labelled", type=int, default=2000, help="labelled training images for both runs")
    ap.add_argument("--mask-ratio", type=float, default=0.75)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default="runs/bench-mae")
    ap.add_argument("--json", help="where to write the rows (default benchmarks/results/mae_<data>.json)")
    ap.add_argument(
        "--merge", nargs="+", metavar="JSON", help="print and write the table of several runs' files"
    )
    args = ap.parse_args()
    if args.merge:
        runs, merged = merge_rows(args.merge)
        for key in ("data", "labelled", "epochs", "pretrain_epochs"):
            setattr(args, key, runs[0]["args"][key])
        args.seeds = [r["seed"] for r in merged["from scratch"]]
        report(args, merged, merged_from=[r["args"] for r in runs])
        return
    torch.set_num_threads(args.threads)
    quiet = ['run.progress="none"', "run.tensorboard=false"]
    rows: dict[str, list[dict]] = {}

    def add(name: str, rec: dict) -> None:
        rows.setdefault(name, []).append(rec)
        print(name, rec, flush=True)

    for seed in args.seeds:
        out = f"{args.out}/mae-{args.data}-{seed}"
        cfg = pretrain_config(MODEL, method="mae", overrides=[
            f"data.name={args.data}", f"epochs={args.pretrain_epochs}", f"seed={seed}",
            f"ssl.mask_ratio={args.mask_ratio}", "ssl.probe_every=0", f'run.out_dir="{out}"', *quiet])  # fmt: skip
        t = time.perf_counter()
        s = pretrain(cfg, overwrite=True, log=lambda s: None)
        add(
            "MAE pre-training",
            {"seed": seed, "minutes": (time.perf_counter() - t) / 60, "knn": s["final_top1"]},
        )
        ckpt = f"{out}/checkpoints/last.pt"
        for name, init in (("from scratch", None), ("fine-tuned from MAE", ckpt)):
            run = f"{args.out}/{'scratch' if init is None else 'mae-ft'}-{args.data}-{seed}"
            sets = [f"data.name={args.data}", f"data.train_subset={args.labelled}", f"epochs={args.epochs}",
                    f"seed={seed}", f'run.out_dir="{run}"', *VIT_FINETUNE, *quiet]  # fmt: skip
            if init:
                sets.append(f'finetune.checkpoint="{init}"')
            s = train(resolve_config(MODEL, overrides=sets), overwrite=True, log=lambda s: None)
            add(
                name,
                {
                    "seed": seed,
                    "top1": s["final_top1"],
                    "best": s["best_top1"],
                    "minutes": s["wall_seconds"] / 60,
                },
            )

    report(args, rows)


def report(args: argparse.Namespace, rows: dict[str, list[dict]], **extra) -> None:
    """Print the Markdown table and the paired differences; write the rows as JSON."""
    diffs = [f["top1"] - s["top1"] for f, s in zip(rows["fine-tuned from MAE"], rows["from scratch"])]
    print(f"\n{MODEL} on {args.data}: {args.labelled} labelled images, {args.epochs} epochs; "
          f"MAE {args.pretrain_epochs} epochs on all training images; seeds {args.seeds}")  # fmt: skip
    print("| run | held-out top-1 (last) | best epoch | k-NN of the encoder | minutes |")
    print("|---|---:|---:|---:|---:|")
    for name, rs in rows.items():
        print(
            f"| {name} | {cell(rs, 'top1')} | {cell(rs, 'best')} | {cell(rs, 'knn')} | {cell(rs, 'minutes')} |"
        )
    print(f"fine-tuned minus scratch, paired by seed: {', '.join(f'{d:+.2f}' for d in diffs)} "
          f"(mean {statistics.mean(diffs):+.2f} points)")  # fmt: skip
    out = Path(args.json or f"benchmarks/results/mae_{args.data}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps({"args": vars(args), "rows": rows, "finetuned_minus_scratch": diffs, **extra},
                              indent=1) + "\n")  # fmt: skip
    tmp.replace(out)


if __name__ == "__main__":
    main()
