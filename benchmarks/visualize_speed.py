"""Speed of `cnnlineage visualize`: every kind on a 224x224 image with ResNet-50, and top-images over mnist5k.

ResNet-50 is randomly initialised (speed does not depend on the weights); the image is a
shapes10 picture upscaled to 640x480 and saved as JPEG, so loading and resizing are
timed too. attention runs on ViT-B/16 (ResNet-50 has none). top-images scans all 5,000
mnist5k digits with a LeNet-5 trained here for one epoch. Each kind writes its PNG, as the
command does. Model construction is not timed (the command pays it once per call).

Rounds are interleaved (every kind once, then again ...) with a baseline in each round:
one forward and backward pass of the same model on the same image, the cost of one
plain gradient. The report gives median wall and CPU seconds per kind and the median of
the per-round ratios (CPU time) to that baseline. On a shared, overloaded machine wall
time measures the queue, not the work: the CPU seconds of a one-thread run are what one
idle core would take, and so an upper bound for an idle 2-core machine.

    python benchmarks/visualize_speed.py                  # 3 rounds, 1 thread
    python benchmarks/visualize_speed.py --rounds 5 --threads 2 --kinds gradcam occlusion
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import torch

IMAGE_KINDS = ["filters", "features", "deconvnet", "occlusion", "saliency", "gradcam", "integrated-gradients",
               "erf", "attention"]  # fmt: skip


def make_image(folder: Path) -> Path:
    """Write a 640x480 JPEG of a shapes10 picture and return its path."""
    from PIL import Image

    from cnnlineage.data.datasets import make_shapes10

    _, test = make_shapes10()
    img = Image.fromarray(test[7][0].permute(1, 2, 0).numpy()).resize((640, 480), Image.BILINEAR)
    path = folder / "photo.jpg"
    img.save(path, quality=90)
    return path


def train_lenet(folder: Path) -> Path:
    """Train LeNet-5 for one epoch on mnist5k and return its checkpoint."""
    from cnnlineage.train import Trainer
    from cnnlineage.train.run import resolve_config

    overrides = ["epochs=1", f'run.out_dir="{folder / "lenet5"}"', 'run.progress="none"', "run.tensorboard=false",
                 "run.plots=false"]  # fmt: skip
    cfg = resolve_config("lenet5", recipe=None, overrides=overrides, resume=None)
    Trainer(cfg, log=lambda *_: None).fit()
    return folder / "lenet5" / "checkpoints" / "best.pt"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--kinds", nargs="*", default=IMAGE_KINDS + ["top-images"])
    parser.add_argument("--json", default=None, help="also write the results here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")
    from cnnlineage import visualize as V

    tmp = Path(tempfile.mkdtemp(prefix="viz-bench-"))
    photo = make_image(tmp)
    resnet = V.load_subject("resnet50")
    vit = V.load_subject("vit_b_16") if "attention" in args.kinds else None
    lenet = V.load_subject(train_lenet(tmp)) if "top-images" in args.kinds else None
    ex = V.load_images(resnet, [photo])
    out = tmp / "figures"
    runs = {
        "filters": lambda: V.filters(resnet, out_dir=out),
        "features": lambda: V.features(
            resnet, V.load_images(resnet, [photo]), layers=["layer3"], out_dir=out
        ),
        "deconvnet": lambda: V.deconvnet(resnet, V.load_images(resnet, [photo]), out_dir=out),
        "occlusion": lambda: V.occlusion(resnet, V.load_images(resnet, [photo]), out_dir=out),
        "saliency": lambda: V.saliency(resnet, V.load_images(resnet, [photo]), out_dir=out),
        "gradcam": lambda: V.gradcam(resnet, V.load_images(resnet, [photo]), out_dir=out),
        "integrated-gradients": lambda: V.integrated_gradients(
            resnet, V.load_images(resnet, [photo]), out_dir=out
        ),
        "erf": lambda: V.erf(resnet, V.load_images(resnet, [photo]), out_dir=out),
        "attention": lambda: V.attention(vit, V.load_images(vit, [photo]), out_dir=out),
        "top-images": lambda: V.top_images(lenet, channel=3, out_dir=out, progress=False),
    }
    V.default_layer(resnet)  # the analyzer's profile is built once per subject, as in one command
    if vit is not None:
        V.default_layer(vit)

    def baseline(subject) -> float:  # noqa: ANN001
        x = ex[0].x[None].clone().requires_grad_(True)
        start = time.process_time()
        subject.model(x)[0, 0].backward()
        return time.process_time() - start

    wall: dict[str, list[float]] = {k: [] for k in args.kinds}
    cpu: dict[str, list[float]] = {k: [] for k in args.kinds}
    ratios: dict[str, list[float]] = {k: [] for k in args.kinds}
    for r in range(args.rounds):
        for kind in args.kinds:
            base = baseline(vit if kind == "attention" else resnet) if kind != "top-images" else None
            w0, c0 = time.perf_counter(), time.process_time()
            runs[kind]()
            w, c = time.perf_counter() - w0, time.process_time() - c0
            wall[kind].append(w)
            cpu[kind].append(c)
            if base:
                ratios[kind].append(c / base)
            ratio = f"  ({c / base:5.1f}x fwd+bwd)" if base else ""
            print(f"round {r + 1} {kind:21s} wall {w:7.2f} s  cpu {c:7.2f} s{ratio}", flush=True)
    load = os.getloadavg()
    print(f"\nmedians of {args.rounds} rounds, {args.threads} thread(s); load average {load[0]:.1f} on "
          f"{os.cpu_count()} cores (shared machine: wall seconds are mostly waiting)")  # fmt: skip
    print("| kind | model | CPU s | wall s | CPU / one fwd+bwd |\n|---|---|---:|---:|---:|")
    rows = []
    for kind in args.kinds:
        c, w = statistics.median(cpu[kind]), statistics.median(wall[kind])
        ratio = statistics.median(ratios[kind]) if ratios[kind] else None
        model = {"attention": "vit_b_16", "top-images": "lenet5, 5,000 mnist5k"}.get(kind, "resnet50")
        rows.append({"kind": kind, "model": model, "cpu_s": c, "wall_s": w, "ratio_to_fwd_bwd": ratio})
        print(f"| {kind} | {model} | {c:.2f} | {w:.2f} | " + (f"{ratio:.1f}x |" if ratio else "- |"))
    print(f"figures: {out}")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
