"""Knowledge distillation on mnist5k: a LeNet-5 student alone vs distilled from a ResNet-20 teacher, mean of 3 seeds.

    python benchmarks/compress_distill.py --out runs/distill [--student-epochs 10] [--teacher-epochs 8]

The student recipe is the shipped ``lenet5`` recipe (AdamW, one-cycle, small affine
distortions) with ``--student-epochs``; the distilled runs add only ``distill.teacher``
(T = 4, alpha = 0.9, Hinton et al. 2015). The teacher is ResNet-20 (He 2016 §4.2, 0.27M
parameters, 1 input channel) trained on the same 28x28 digits with the same augmentation.
Every run is an ordinary ``cnnlineage train`` run directory under ``--out``.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import torch

from cnnlineage.train import apply_overrides, config_from_dict, config_to_dict, load_config, train


def teacher_config(out: Path, epochs: int) -> dict:
    cfg = config_to_dict(load_config("lenet5"))
    cfg["model"] = {"name": "resnet20", "init": "kaiming", "kwargs": {}}
    cfg["data"]["image_size"] = 28
    cfg.update(epochs=epochs, threads=1)
    cfg["run"].update(out_dir=str(out), progress="none", tensorboard=False)
    return cfg


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="runs/distill")
    ap.add_argument("--student-epochs", type=int, default=10)
    ap.add_argument("--teacher-epochs", type=int, default=8)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--temperature", type=float, default=4.0)
    ap.add_argument("--alpha", type=float, default=0.9)
    args = ap.parse_args()
    torch.set_num_threads(1)
    out = Path(args.out)
    teacher = out / "teacher"
    if not (teacher / "summary.json").exists():
        train(teacher_config(teacher, args.teacher_epochs))
    t_top1 = json.loads((teacher / "summary.json").read_text())["final_top1"]
    results: dict[str, list[float]] = {"alone": [], "distilled": []}
    for seed in args.seeds:
        for kind in results:
            run = out / f"lenet5-{kind}-seed{seed}"
            if not (run / "summary.json").exists():
                sets = [f"epochs={args.student_epochs}", f"seed={seed}", f"run.out_dir={run}", "threads=1",
                        "run.progress=none", "run.tensorboard=false"]  # fmt: skip
                if kind == "distilled":
                    sets += [f"distill.teacher={teacher / 'checkpoints' / 'best.pt'}",
                             f"distill.temperature={args.temperature}", f"distill.alpha={args.alpha}"]  # fmt: skip
                cfg = apply_overrides(load_config("lenet5"), sets)
                train(config_from_dict(config_to_dict(cfg)), overwrite=True)
            results[kind].append(json.loads((run / "summary.json").read_text())["final_top1"])
    print(f"\nteacher resnet20: held-out top-1 {t_top1:.2f}%")
    print("seed  " + "  ".join(f"{s:>6d}" for s in args.seeds) + "    mean   errors/1000")
    for kind, vals in results.items():
        mean = statistics.mean(vals)
        print(
            f"{kind:9s} " + "  ".join(f"{v:6.2f}" for v in vals) + f"  {mean:6.2f}   {10 * (100 - mean):.1f}"
        )
    (out / "distill_results.json").write_text(
        json.dumps({"teacher_top1": t_top1, **results}, indent=2) + "\n"
    )


if __name__ == "__main__":
    main()
