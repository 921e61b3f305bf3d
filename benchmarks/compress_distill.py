"""Knowledge distillation on mnist5k: a LeNet-5 student alone vs distilled from a ResNet-20 teacher, mean of 3 seeds.

    python benchmarks/compress_distill.py --out runs/distill [--student-epochs 20] [--teacher-epochs 30]
        [--train-subset N] [--alphas 0.5 0.9] [--temperature 4] [--student-set KEY=VALUE ...]

The student recipe is the shipped ``lenet5`` recipe (AdamW, one-cycle, small affine
distortions) with ``--student-epochs``; the distilled runs add only ``distill.teacher``
(temperature T, weight alpha of the soft targets; Hinton et al. 2015). The teacher is
ResNet-20 (He 2016 §4.2, 0.27M parameters, 1 input channel) trained with the same recipe on
the same 28x28 digits, on the whole training split, for ``--teacher-epochs``; its last
epoch teaches (``last.pt``: its held-out score does not choose it).

``--student-set KEY=VALUE ...`` changes the student recipe for every student, alone and
distilled alike: ``augment.affine_degrees=0 augment.affine_translate=0 augment.affine_scale=0``
gives Hinton et al.'s MNIST student (§3: no regularisation, no jitter; soft targets at T = 20
took it from 146 to 74 test errors). ``--train-subset N`` gives every student the same fixed
N of the 4,000 training digits while the teacher keeps all of them, as in their §5 where
soft targets let a model trained on 3% of the data generalise; ``--teacher-subset N`` with
the same N trains the teacher on those digits only (the control: the teacher knows no more
digits than the student). Every run is an ordinary
``cnnlineage train`` run directory under ``--out``, reused when it exists; held-out top-1 is
the last epoch's (the held-out split picks nothing). Runs use one thread.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
from pathlib import Path

import torch

from cnnlineage.train import apply_overrides, config_from_dict, config_to_dict, load_config, train


def teacher_config(out: Path, epochs: int, subset: int = 0) -> dict:
    cfg = config_to_dict(load_config("lenet5"))
    cfg["model"] = {"name": "resnet20", "init": "kaiming", "kwargs": {}}
    cfg["data"].update(image_size=28, train_subset=subset)
    cfg.update(epochs=epochs, threads=1)
    cfg["run"].update(out_dir=str(out), progress="none", tensorboard=False)
    return cfg


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="runs/distill")
    ap.add_argument("--student-epochs", type=int, default=20)
    ap.add_argument("--teacher-epochs", type=int, default=30)
    ap.add_argument("--train-subset", type=int, default=0, help="students' training digits (0: all 4,000)")
    ap.add_argument(
        "--teacher-subset", type=int, default=0,
        help="the teacher's training digits (0: all 4,000; the same N as --train-subset: the same fixed digits)",
    )  # fmt: skip
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--temperature", type=float, default=4.0)
    ap.add_argument("--alphas", type=float, nargs="+", default=[0.9], help="soft-target weights to compare")
    ap.add_argument(
        "--student-set", nargs="*", default=[], metavar="KEY=VALUE",
        help="config overrides for every student, alone and distilled (e.g. augment.affine_degrees=0)",
    )  # fmt: skip
    args = ap.parse_args()
    torch.set_num_threads(1)
    out = Path(args.out)
    t_name = f"e{args.teacher_epochs}" + (f"-n{args.teacher_subset}" if args.teacher_subset else "")
    teacher = out / f"teacher-{t_name}"
    if not (teacher / "summary.json").exists():
        train(teacher_config(teacher, args.teacher_epochs, args.teacher_subset))
    t_top1 = json.loads((teacher / "summary.json").read_text())["final_top1"]
    kinds = {"alone": None, **{f"distilled T={args.temperature:g} alpha={a:g}": a for a in args.alphas}}
    results: dict[str, list[float]] = {k: [] for k in kinds}
    n = f"n{args.train_subset}" if args.train_subset else "all"
    if args.student_set:  # a changed student recipe gets its own run directories
        n += "-" + hashlib.sha1(" ".join(args.student_set).encode()).hexdigest()[:6]
    for seed in args.seeds:
        for kind, alpha in kinds.items():
            tag = "alone" if alpha is None else f"kd-T{args.temperature:g}-a{alpha:g}-t{t_name[1:]}"
            run = out / f"lenet5-e{args.student_epochs}-{n}-{tag}-seed{seed}"
            if not (run / "summary.json").exists():
                sets = [f"epochs={args.student_epochs}", f"seed={seed}", f"run.out_dir={run}", "threads=1",
                        f"data.train_subset={args.train_subset}", "run.progress=none", "run.tensorboard=false",
                        "run.plots=false", *args.student_set]  # fmt: skip
                if alpha is not None:
                    sets += [f"distill.teacher={teacher / 'checkpoints' / 'last.pt'}",
                             f"distill.temperature={args.temperature}", f"distill.alpha={alpha}"]  # fmt: skip
                cfg = apply_overrides(load_config("lenet5"), sets)
                train(config_from_dict(config_to_dict(cfg)), overwrite=True, log=lambda *_: None)
            results[kind].append(json.loads((run / "summary.json").read_text())["final_top1"])
            print(f"{run.name}: {results[kind][-1]:.2f}%", flush=True)
    images = f"{args.train_subset:,}" if args.train_subset else "all 4,000"
    t_images = f"{args.teacher_subset:,}" if args.teacher_subset else "all 4,000"
    print(
        f"\nteacher resnet20, {args.teacher_epochs} epochs on {t_images} digits: held-out top-1 {t_top1:.2f}%"
    )
    changed = f", recipe changed: {' '.join(args.student_set)}" if args.student_set else ""
    print(
        f"students lenet5, {args.student_epochs} epochs on {images} training digits (1,000 held out){changed}"
    )
    print(
        f"{'student':28s}" + "".join(f"  seed {s:d}" for s in args.seeds) + "    mean  errors/1000  vs alone"
    )
    base = statistics.mean(results["alone"])
    for kind, vals in results.items():
        mean = statistics.mean(vals)
        print(f"{kind:28s}" + "".join(f"  {v:6.2f}" for v in vals)
              + f"  {mean:6.2f}  {10 * (100 - mean):11.1f}  {mean - base:+8.2f}")  # fmt: skip
    paired = {kind: paired_stats(results["alone"], vals) for kind, vals in results.items() if kind != "alone"}
    for kind, p in paired.items():
        print(f"{kind} - alone, paired by seed: mean {p['mean_diff']:+.2f} points (95% CI {p['ci95'][0]:+.2f} "
              f"to {p['ci95'][1]:+.2f}), wins/ties/losses {p['wins']}/{p['ties']}/{p['losses']}, "
              f"paired t-test p = {p['t_test_p']:.3f}, sign test p = {p['sign_test_p']:.3f}")  # fmt: skip
    (out / f"distill_results-e{args.student_epochs}-{n}-t{t_name[1:]}.json").write_text(
        json.dumps({"teacher_top1": t_top1, "args": vars(args), **results, "paired": paired}, indent=2) + "\n"
    )


def paired_stats(alone: list[float], other: list[float]) -> dict:
    """Return the per-seed differences other - alone with their mean, 95% CI, wins/ties/losses and two p-values.

    Seeds pair the runs (same initialisation and data order apart from the teacher), so the
    paired t-test (scipy) and the two-sided sign test on the non-tied seeds are the right tests.
    """
    from scipy import stats

    d = [o - a for a, o in zip(alone, other)]
    wins, losses = sum(x > 0 for x in d), sum(x < 0 for x in d)
    mean = statistics.mean(d)
    if len(d) > 1 and statistics.stdev(d) > 0:
        half = float(stats.t.ppf(0.975, len(d) - 1)) * statistics.stdev(d) / len(d) ** 0.5
        t_p = float(stats.ttest_rel(other, alone).pvalue)
    else:
        half, t_p = 0.0, 1.0
    sign_p = float(stats.binomtest(wins, wins + losses).pvalue) if wins + losses else 1.0
    return {"diffs": d, "mean_diff": mean, "ci95": [mean - half, mean + half], "wins": wins,
            "ties": len(d) - wins - losses, "losses": losses, "t_test_p": t_p, "sign_test_p": sign_p}  # fmt: skip


if __name__ == "__main__":
    main()
