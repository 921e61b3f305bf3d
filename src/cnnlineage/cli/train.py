"""`cnnlineage train`, `eval` and `predict`: the trainer and the use of its checkpoints."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable

from ..common import format_table
from . import deploy

# Convenience flags of `train` and the config keys they set (everything else: --set key=value).
_TRAIN_FLAGS = {
    "data": "data.name",
    "data_dir": "data.root",
    "epochs": "epochs",
    "batch_size": "data.batch_size",
    "lr": "optim.lr",
    "seed": "seed",
    "device": "device",
    "amp": "amp",
    "out": "run.out_dir",
    "workers": "data.num_workers",
    "checkpoint_every": "run.checkpoint_every_steps",
    "finetune": "finetune.checkpoint",
    "init": "finetune.checkpoint",
    "finetune_mode": "finetune.mode",
    "distill": "distill.teacher",
    "kd_temperature": "distill.temperature",
    "kd_alpha": "distill.alpha",
    "semi": "semi.method",
    "labels_per_class": "semi.labels_per_class",
}


def run_training(command: str, fn: Callable[[], dict]) -> tuple[int, dict | None]:
    """Run ``fn`` (a training or pre-training run); return (exit status, its summary or None).

    A NaN loss is status 3, a signal 128 + its number (with the line that says how to
    resume with ``command``), a stalled distributed peer 2; each is one line on stderr.
    Other errors reach :func:`cnnlineage.cli.main`, which writes ValueError and OSError as one line.
    """
    from ..train import NonFiniteLossError
    from ..train.distributed import DistributedStall
    from ..train.signals import TrainingInterrupted
    from . import _error_line

    try:
        return 0, fn()
    except NonFiniteLossError as e:
        _error_line(f"cnnlineage {command}: stopped: {e}")
        return 3, None
    except TrainingInterrupted as e:
        _error_line(
            f"cnnlineage {command}: "
            + str(e).replace("cnnlineage train --resume", f"cnnlineage {command} --resume")
        )
        return 128 + e.signum, None
    except DistributedStall as e:
        _error_line(f"cnnlineage {command}: error: {e}")
        return 2, None


def _cmd_train(args: argparse.Namespace) -> int:
    import os

    import yaml

    from ..train import config_to_dict, train
    from ..train.run import launch_distributed, resolve_config

    if args.nproc < 1:
        raise ValueError(f"--nproc must be at least 1 (the number of processes); got {args.nproc}")
    if args.init is not None and args.finetune is not None:
        raise ValueError(
            f"--init {args.init} and --finetune {args.finetune} both name the starting weights; give one "
            "(--init is --finetune, for pre-training checkpoints too)"
        )
    overrides = [
        f"{key}={json.dumps(getattr(args, dest))}"
        for dest, key in _TRAIN_FLAGS.items()
        if getattr(args, dest) is not None
    ]
    for flag, key in (
        ("download", "data.download"),
        ("channels_last", "model.channels_last"),
        ("skip_bad_images", "data.skip_bad_images"),
    ):
        if getattr(args, flag):
            overrides.append(f"{key}=true")
    if args.quiet:
        overrides.append("run.progress=none")
    cfg = resolve_config(
        args.model, recipe=args.config, overrides=overrides + list(args.set), resume=args.resume
    )
    if args.print_config:
        print(yaml.safe_dump(config_to_dict(cfg), sort_keys=False), end="")
        return 0
    if args.nproc > 1 and "WORLD_SIZE" not in os.environ:
        return launch_distributed(cfg, args.nproc, resume=bool(args.resume), overwrite=args.overwrite)
    code, summary = run_training(
        "train", lambda: train(cfg, resume=bool(args.resume), overwrite=args.overwrite)
    )
    if code:
        return code
    if args.format == "json" and int(os.environ.get("RANK", "0")) == 0:
        print(json.dumps(summary, indent=2))
    return 0


def _add_train(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="train a model (default data: mnist5k, the 5,000 real MNIST digits bundled offline)",
        description="Train a registered model from a YAML recipe (shipped: cnnlineage/configs/*.yaml; a model "
        "with a shipped recipe uses it), with flags and --set key=value overrides. Writes a run directory: "
        "config.yaml, metrics.jsonl, summary.json, checkpoints/, tb/, plots.",
    )
    p.add_argument("model", nargs="?", default=None, help="registered model name, e.g. lenet5")
    p.add_argument("--config", default=None, help="recipe: a YAML file or a shipped recipe name")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config key, e.g. optim.lr=0.05 (repeatable)",
    )
    p.add_argument(
        "--data",
        default=None,
        help="mnist5k, digits, shapes10, mnist, fashion_mnist, cifar10, cifar100, imagefolder",
    )
    p.add_argument(
        "--data-dir", default=None, help="root of on-disk datasets / your image folder (data.root)"
    )
    p.add_argument(
        "--download", action="store_true", help="allow torchvision to download mnist/fashion_mnist/cifar"
    )
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--batch-size", type=int, default=None, help="global batch size")
    p.add_argument("--lr", type=float, default=None, help="peak learning rate")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--device", default=None, help="auto (CUDA if present), cpu, cuda, cuda:N")
    p.add_argument("--amp", choices=["none", "bf16", "fp16"], default=None, help="mixed precision")
    p.add_argument("--channels-last", action="store_true", help="NHWC memory layout")
    p.add_argument("--workers", type=int, default=None, help="DataLoader worker processes")
    p.add_argument("--out", default=None, help="run directory (default runs/<model>-<data>-<date>-<time>)")
    p.add_argument(
        "--resume",
        default=None,
        metavar="RUN_DIR",
        help="continue the run in RUN_DIR from its last checkpoint",
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace the outputs of a finished or unfinished run in --out",
    )
    p.add_argument(
        "--checkpoint-every", type=int, default=None, metavar="N", help="also checkpoint every N steps"
    )
    p.add_argument(
        "--finetune",
        default=None,
        metavar="CHECKPOINT",
        help="start from a checkpoint's weights with a new head",
    )
    p.add_argument(
        "--init",
        default=None,
        metavar="CHECKPOINT",
        help="start from a pre-trained backbone (`cnnlineage pretrain` or train checkpoint) with a new head; "
        "same as --finetune",
    )
    p.add_argument(
        "--finetune-mode",
        choices=["head", "full", "gradual"],
        default=None,
        help="with --finetune/--init: head (a linear classifier on frozen features), full, or gradual unfreezing",
    )
    p.add_argument(
        "--semi",
        choices=["none", "fixmatch", "pseudo-label", "mean-teacher"],
        default=None,
        help="semi-supervised training on --labels-per-class labelled images per class, the rest unlabelled",
    )
    p.add_argument(
        "--labels-per-class",
        type=int,
        default=None,
        metavar="N",
        help="keep the labels of N training images per class (seeded); without --semi: train on them only",
    )
    p.add_argument(
        "--distill", default=None, metavar="TEACHER_CKPT", help="knowledge distillation from a teacher"
    )
    p.add_argument(
        "--kd-temperature", type=float, default=None, help="distillation temperature T (default 4)"
    )
    p.add_argument(
        "--kd-alpha", type=float, default=None, help="weight of the soft-target loss (default 0.9)"
    )
    p.add_argument(
        "--skip-bad-images", action="store_true", help="skip unreadable image files with a warning"
    )
    p.add_argument(
        "--nproc",
        type=int,
        default=1,
        help="data-parallel processes on this machine (starts torchrun; at least 1)",
    )
    p.add_argument("--print-config", action="store_true", help="print the resolved config as YAML and exit")
    p.add_argument("--quiet", action="store_true", help="no progress bar or step lines (epoch lines only)")
    p.add_argument("--format", choices=["text", "json"], default="text", help="json: also print summary.json")
    p.set_defaults(func=_cmd_train)


def _cmd_eval(args: argparse.Namespace) -> int:
    from ..train.inference import evaluate_checkpoint

    if deploy.wants_deploy(args):  # an .onnx file, an int8 directory from `cnnlineage quantize` or --backend
        r = deploy.run_eval(args)
    else:
        r = evaluate_checkpoint(
            args.checkpoint,
            data=args.data,
            root=args.data_dir,
            split=args.split,
            batch_size=args.batch_size,
            device=args.device,
            allow_mismatch=args.allow_mismatch,
        )
    if r.get("mismatch"):
        print(f"warning: {r['mismatch']}; scored anyway (--allow-mismatch)", file=sys.stderr)
    if args.format == "json":
        print(json.dumps({k: (v.tolist() if hasattr(v, "tolist") else v) for k, v in r.items()}, indent=2))
        return 0
    print(f"{r['model']} on {r['dataset']} ({r['split']}, {r['samples']:,} images): "
          f"top-1 {r['top1']:.2f}%  top-5 {r['top5']:.2f}%  loss {r['loss']:.4f}")  # fmt: skip
    if args.per_class:
        rows = [(c, "-" if a is None else f"{a:.2f}") for c, a in zip(r["classes"], r["per_class"])]
        print(format_table(rows, ["class", "top-1 %"], "lr"))
    return 0


def _add_eval(sub: argparse._SubParsersAction) -> None:
    from .analysis import positive_int

    p = sub.add_parser("eval", help="evaluate a checkpoint on its dataset's held-out split (or another)")
    p.add_argument(
        "checkpoint",
        help="a checkpoint written by `cnnlineage train` (last.pt or best.pt), an .onnx file from `cnnlineage "
        "export` or a directory from `cnnlineage quantize`",
    )
    p.add_argument("--data", default=None, help="dataset (default: the one it was trained on)")
    p.add_argument("--data-dir", default=None, help="root of on-disk datasets (default: the training run's)")
    p.add_argument("--split", choices=["test", "train"], default="test")
    p.add_argument("--batch-size", type=positive_int, default=500)
    p.add_argument("--device", default="auto")
    p.add_argument(
        "--allow-mismatch",
        action="store_true",
        help="score on a dataset whose class names or channels differ from the training data",
    )
    deploy.add_backend_flag(p)
    p.add_argument("--per-class", action="store_true", help="also print per-class accuracy")
    p.add_argument("--format", choices=["text", "json"], default="text")
    p.set_defaults(func=_cmd_eval)


def _cmd_predict(args: argparse.Namespace) -> int:
    from ..train.inference import predict

    if deploy.wants_deploy(args):  # an .onnx file, an int8 directory from `cnnlineage quantize` or --backend
        results = deploy.run_predict(args)
    else:
        results = predict(
            args.checkpoint,
            args.images,
            topk=args.topk,
            device=args.device,
            invert=args.invert,
            show_input=args.show_input,
        )
    failed = [r for r in results if "error" in r]
    if args.format == "json":
        print(json.dumps(results, indent=2))
    else:
        for r in results:
            if "error" in r:
                print(f"{r['image']}\n  error: {r['error']}")
                continue
            print(r["image"])
            if r.get("preprocessing"):
                print(f"  input: {' -> '.join(r['preprocessing'])}")
            if r.get("summary"):
                print(f"  warning: {r['summary']}")
            if r.get("model_input"):
                print(f"  model input saved as {r['model_input']}")
            for name, p in r["top"]:
                print(f"  {p * 100:6.2f}%  {name}")
    for r in failed:
        print(f"cnnlineage predict: error: {r['error']}", file=sys.stderr)
    if failed:
        print(
            f"cnnlineage predict: {len(failed)} of {len(results)} file(s) could not be classified",
            file=sys.stderr,
        )
        return 2
    return 0


def _add_predict(sub: argparse._SubParsersAction) -> None:
    from .analysis import positive_int

    p = sub.add_parser(
        "predict", help="classify image files with a checkpoint: top-k classes and probabilities"
    )
    p.add_argument(
        "checkpoint",
        help="a checkpoint written by `cnnlineage train`, an .onnx file or a directory from `cnnlineage quantize`",
    )
    p.add_argument("images", nargs="+", help="JPEG/PNG files; resized to the model's input")
    p.add_argument("--topk", type=positive_int, default=5, help="classes to show per image (1 or more)")
    p.add_argument(
        "--invert",
        choices=["auto", "never", "always"],
        default="auto",
        help="auto: invert dark-on-light images for a model trained on light-on-dark digits (default)",
    )
    p.add_argument(
        "--show-input",
        default=None,
        metavar="DIR",
        help="save each input as the model saw it, as PNG, in DIR",
    )
    p.add_argument("--device", default="auto")
    deploy.add_backend_flag(p)
    p.add_argument("--format", choices=["text", "json"], default="text")
    p.set_defaults(func=_cmd_predict)


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """Register train, eval and predict."""
    _add_train(sub)
    _add_eval(sub)
    _add_predict(sub)
