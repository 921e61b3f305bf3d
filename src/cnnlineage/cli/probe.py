"""`cnnlineage probe`: linear and k-NN probes of a network's frozen features, with all or a few labels."""

from __future__ import annotations

import argparse
import json
import sys

from ..common import format_table


def labels_list(text: str) -> list[int]:
    """Return '1,10,100' as [1, 10, 100] (an argparse type); ArgumentTypeError unless every item is an integer >= 1."""
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected positive integers separated by commas, e.g. 1,10,100; got {text!r}"
        ) from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(
            f"expected positive integers separated by commas, e.g. 1,10,100; got {text!r}"
        )
    return values


def _model_arg(text: str) -> tuple[str, object]:
    """Parse KEY=VALUE, the value as YAML (true, 0.5, [1, 2]) the way `--set` reads it."""
    from ..train.config import yaml_load

    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, e.g. pad_input=true; got {text!r}")
    try:
        return key.strip(), yaml_load(value, where=f"--model-arg {key.strip()}")
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _cmd_probe(args: argparse.Namespace) -> int:
    from ..ssl.probe import run_probe, write_probe

    both = not args.linear and args.knn is None  # neither named: both probes
    sizes = [n for group in args.labels_per_class for n in group]
    result = run_probe(
        args.source,
        data=args.data,
        root=args.data_dir,
        linear=args.linear or both,
        knn=args.knn if args.knn is not None else (20 if both else None),
        labels_per_class=sizes,
        raw=args.raw,
        seed=args.seed,
        image_size=args.image_size,
        model_kwargs=dict(args.model_arg),
        C=args.C,
        max_iter=args.max_iter,
        batch_size=args.batch_size,
        device=args.device,
        progress=not args.quiet,
    )
    written = write_probe(result, args.out) if args.out else []
    if args.format == "json":
        print(json.dumps(result, indent=2))
    else:
        what = result["source"] if result["kind"] != "raw pixels" else "(the preprocessed input)"
        if result["model"] and result["model"] != result["source"] and result["kind"] != "raw pixels":
            what += f" ({result['model']})"
        if result["pretraining"]:
            what += f", pre-trained with {result['pretraining']}"
        print(
            f"probe of {result['kind']} {what} on {result['dataset']}: "
            f"{result['feature_dim']:,}-d features, {result['train_images']:,} train / "
            f"{result['test_images']:,} held-out images, seed {result['seed']}"
        )
        headers = ["labels/class", "train images"]
        if result["linear"]:
            headers.append("linear top-1 %")
        if result["knn"]:
            headers.append(f"k-NN top-1 % (k={result['knn']['k']})")
        rows = []
        for r in result["rows"]:
            row = [r["labels_per_class"], f"{r['train_images']:,}"]
            if "linear_top1" in r:
                row.append(f"{r['linear_top1']:.2f}" + ("" if r["linear_converged"] else " (not converged)"))
            if "knn_top1" in r:
                row.append(f"{r['knn_top1']:.2f}")
            rows.append(row)
        print(format_table(rows, headers, "r" * len(headers)))
        for p in written:
            print(f"wrote {p}")
    if any(not r.get("linear_converged", True) for r in result["rows"]):
        print(
            f"cnnlineage probe: warning: the logistic regression stopped at --max-iter {args.max_iter} before "
            "converging; raise --max-iter for the exact optimum",
            file=sys.stderr,
        )
    return 0


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """Register probe."""
    from .analysis import positive_int

    p = sub.add_parser(
        "probe",
        help="frozen-feature evaluation: linear probe and weighted k-NN, with all labels or a few per class",
        description="Score a network's frozen pooled features on the held-out split: a logistic regression on "
        "standardised features (scikit-learn, L-BFGS) and a weighted k-NN (cosine, k=20, T=0.07), both by "
        "default. SOURCE is a `train` or `pretrain` checkpoint, or a registered model name (randomly "
        "initialised for --seed: the baseline a pre-training must beat); --raw probes the pixels.",
    )
    p.add_argument("source", nargs="?", default=None, help="checkpoint file or registered model name")
    p.add_argument(
        "--data", default=None, help="data set (default: the checkpoint's; mnist5k for a model name)"
    )
    p.add_argument("--data-dir", default=None, help="root of on-disk data sets (default: the checkpoint's)")
    p.add_argument("--linear", action="store_true", help="the linear probe (alone unless --knn is given too)")
    p.add_argument(
        "--knn",
        type=positive_int,
        default=None,
        metavar="K",
        help="the weighted k-NN probe with K neighbours",
    )
    p.add_argument(
        "--labels-per-class",
        type=labels_list,
        action="append",
        default=[],
        metavar="N[,N...]",
        help="also probe with a seeded, class-balanced N images per class as the training set (e.g. 1,10,100)",
    )
    p.add_argument(
        "--raw", action="store_true", help="probe the preprocessed pixels instead of a network's features"
    )
    p.add_argument(
        "--seed", type=int, default=0, help="seeds the few-label subsets and a model name's initialisation"
    )
    p.add_argument(
        "--image-size",
        type=positive_int,
        default=0,
        metavar="N",
        help="for a model name: feed it NxN images (as `pretrain --set data.image_size=N` did); "
        "default the model's own input size",
    )
    p.add_argument(
        "--model-arg",
        type=_model_arg,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="for a model name: an argument of its builder, as `pretrain --set model.kwargs.KEY=VALUE` "
        "gave it (e.g. pad_input=true); repeatable",
    )
    p.add_argument(
        "--C", type=float, default=1.0, help="inverse L2 strength of the logistic regression (default 1)"
    )
    p.add_argument(
        "--max-iter", type=positive_int, default=1000, help="L-BFGS iterations at most (default 1000)"
    )
    p.add_argument("--batch-size", type=positive_int, default=256, help="images per feature-extraction batch")
    p.add_argument("--device", default="auto")
    p.add_argument("--out", default=None, metavar="DIR", help="write DIR/probe.json and DIR/probe.png")
    p.add_argument("--quiet", action="store_true", help="no progress display")
    p.add_argument("--format", choices=["table", "json"], default="table")
    p.set_defaults(func=_cmd_probe)
