"""`cnnlineage pretrain`: self-supervised pre-training (SimCLR, MoCo v2, BYOL, DINO, MAE), labels ignored."""

from __future__ import annotations

import argparse
import json

# Convenience flags and the config keys they set (everything else: --set key=value).
_FLAGS = {
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
}


def _cmd_pretrain(args: argparse.Namespace) -> int:
    import os

    import yaml

    try:
        from ..ssl.pretrain import launch_pretrain, pretrain, pretrain_config
    except ModuleNotFoundError as e:
        if (e.name or "").split(".")[0] != "lightly":
            raise
        raise ValueError(
            "cnnlineage pretrain needs lightly (heads and losses of the methods), which is not installed: "
            "pip install 'cnnlineage[ssl]'"
        ) from None
    from ..train import config_to_dict
    from .train import run_training

    if args.nproc < 1:
        raise ValueError(f"--nproc must be at least 1 (the number of processes); got {args.nproc}")
    overrides = [
        f"{key}={json.dumps(getattr(args, dest))}"
        for dest, key in _FLAGS.items()
        if getattr(args, dest) is not None
    ]
    if args.download:
        overrides.append("data.download=true")
    if args.quiet:
        overrides.append("run.progress=none")
    cfg = pretrain_config(
        args.model,
        method=args.method,
        quick=args.quick,
        overrides=overrides + list(args.set),
        config=args.config,
        resume=args.resume,
    )
    if args.print_config:
        print(yaml.safe_dump(config_to_dict(cfg), sort_keys=False), end="")
        return 0
    if args.nproc > 1 and "WORLD_SIZE" not in os.environ:
        return launch_pretrain(cfg, args.nproc, resume=bool(args.resume), overwrite=args.overwrite)
    code, summary = run_training(
        "pretrain", lambda: pretrain(cfg, resume=bool(args.resume), overwrite=args.overwrite)
    )
    if code:
        return code
    if args.format == "json" and int(os.environ.get("RANK", "0")) == 0:
        print(json.dumps(summary, indent=2))
    return 0


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """Register pretrain."""
    p = sub.add_parser(
        "pretrain",
        help="self-supervised pre-training of a model (simclr, moco, byol, dino, mae), labels ignored",
        description="Pre-train a registered model without labels: SimCLR, MoCo v2, BYOL, DINO (any model) or "
        "MAE (ViT). Writes a run directory like `train`; the held-out accuracy it reports is a weighted "
        "k-NN probe of the network's features. Defaults for small data on a CPU: docs/ssl.md.",
    )
    p.add_argument("model", nargs="?", default=None, help="registered model name, e.g. lenet5_modern")
    p.add_argument("--method", choices=["simclr", "moco", "byol", "dino", "mae"], default=None)
    p.add_argument("--quick", action="store_true", help="try it out: 512 training images, 1 epoch")
    p.add_argument(
        "--config", default=None, help="a full YAML config (e.g. from --print-config) instead of the defaults"
    )
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config key, e.g. ssl.temperature=0.2",
    )
    p.add_argument("--data", default=None, help="mnist5k (default), digits, shapes10, mnist, fashion_mnist, cifar10, "
                   "cifar100, imagefolder")  # fmt: skip
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
        "--nproc", type=int, default=1, help="data-parallel processes on this machine (starts torchrun)"
    )
    p.add_argument("--print-config", action="store_true", help="print the resolved config as YAML and exit")
    p.add_argument("--quiet", action="store_true", help="no progress bar or step lines (epoch lines only)")
    p.add_argument("--format", choices=["text", "json"], default="text", help="json: also print summary.json")
    p.set_defaults(func=_cmd_pretrain)
