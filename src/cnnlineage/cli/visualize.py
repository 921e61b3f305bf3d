"""`cnnlineage visualize KIND MODEL [IMAGE...]`: filters, feature maps, attributions, attention, ERF, top images, t-SNE."""

from __future__ import annotations

import argparse
from pathlib import Path

_NEEDS_IMAGES = {
    "features",
    "deconvnet",
    "occlusion",
    "saliency",
    "gradcam",
    "integrated-gradients",
    "attention",
}
_NO_IMAGES = {"filters", "top-images", "embedding"}

_HELP = """kinds:
  filters               kernels of the first convolution (--layer: any Conv2d) as a grid (AlexNet Fig. 3)
  features              feature maps of --layer (repeatable; default the model's stages) for an image
  deconvnet             one unit of --layer [--channel] projected to pixels: deconvnet and guided backprop
  occlusion             drop in p(target) under a sliding grey square [--patch, --stride] (ZFNet Fig. 7)
  saliency              |d score / d pixel| (Simonyan et al. 2014)
  gradcam               Grad-CAM at --layer (default the last convolutional stage)
  integrated-gradients  integrated gradients from a black image [--steps], completeness checked
  attention             ViT class-token attention per head and attention rollout
  erf                   effective receptive field of --layer's centre unit, theoretical field drawn over it
  top-images            the data set images that excite --layer/--channel most (ZFNet Fig. 2)
  embedding             t-SNE of penultimate features of the held-out split, coloured by class

Without IMAGE files, the image kinds use held-out samples of the model's data set (--index).
Figures go to --out (default: RUN_DIR/visualize for a checkpoint in a run directory, else
visualize/MODEL)."""


def _out_dir(args: argparse.Namespace, subject) -> Path:  # noqa: ANN001
    if args.out:
        return Path(args.out)
    spec = Path(args.model)
    if spec.is_file() and spec.parent.name == "checkpoints":
        return spec.parent.parent / "visualize"
    return Path("visualize") / subject.name


def _cmd_visualize(args: argparse.Namespace) -> int:
    import warnings

    from .. import visualize as V

    kind = args.kind
    warnings.filterwarnings(
        "ignore", module="captum"
    )  # its notes on hooks and requires_grad, not ours to act on
    subject = V.load_subject(args.model, data=args.data, data_root=args.data_dir)
    if args.images and kind in _NO_IMAGES:
        raise ValueError(
            f"{kind} takes no image files (it reads the model or its data set); got {len(args.images)}"
        )
    examples = []
    if kind in _NEEDS_IMAGES or (kind == "erf" and (args.images or args.index)):
        if args.images:
            examples = V.load_images(subject, args.images)
        else:
            examples = V.dataset_examples(subject, split="test", indices=args.index or [0])
    target = V.resolve_target(subject, args.target)
    if len(args.layer) > 1 and kind != "features":
        raise ValueError(f"{kind} takes one --layer, got {len(args.layer)}: {', '.join(args.layer)}")
    layer = args.layer[0] if args.layer else None
    out = _out_dir(args, subject)
    calls = {
        "filters": lambda: V.filters(subject, layer=layer, out_dir=out),
        "features": lambda: V.features(
            subject, examples, layers=args.layer or None, channel=args.channel, out_dir=out
        ),
        "deconvnet": lambda: V.deconvnet(subject, examples, layer=layer, channel=args.channel, out_dir=out),
        "occlusion": lambda: V.occlusion(
            subject, examples, target=target, patch=args.patch, stride=args.stride, out_dir=out
        ),
        "saliency": lambda: V.saliency(subject, examples, target=target, out_dir=out),
        "gradcam": lambda: V.gradcam(subject, examples, layer=layer, target=target, out_dir=out),
        "integrated-gradients": lambda: V.integrated_gradients(
            subject, examples, target=target, steps=args.steps, out_dir=out
        ),
        "attention": lambda: V.attention(subject, examples, layer=layer, out_dir=out),
        "erf": lambda: V.erf(
            subject,
            examples,
            layer=layer,
            channel=args.channel,
            samples=args.samples,
            seed=args.seed,
            out_dir=out,
        ),
        "top-images": lambda: V.top_images(
            subject, layer=layer, channel=args.channel or 0, k=args.k, split=args.split or "all", out_dir=out
        ),
        "embedding": lambda: V.embedding(
            subject, split=args.split or "test", limit=args.limit, seed=args.seed, out_dir=out
        ),
    }
    result = calls[kind]()
    for key in ("layer", "completeness_error", "mass_inside_rf", "side_95", "knn5_accuracy_2d", "positions"):
        if key in result.info:
            value = result.info[key]
            if isinstance(value, list):
                value = ", ".join(f"{v:.2%}" for v in value)
            elif isinstance(value, float):
                value = f"{value:.4g}"
            print(f"{key.replace('_', ' ')}: {value}")
    for p in result.paths:
        print(f"wrote {p}")
    return 0


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """Register visualize."""
    from ..visualize import KINDS

    p = sub.add_parser(
        "visualize",
        help="look inside a model: filters, feature maps, deconvnet, occlusion, Grad-CAM, attention, ERF, ...",
        description="Write PNG figures that show what a model (a `cnnlineage train` checkpoint or a registered "
        "name, randomly initialised) computes.",
        epilog=_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("kind", choices=list(KINDS), metavar="KIND", help="what to draw (see below)")
    p.add_argument(
        "model", metavar="CHECKPOINT_OR_MODEL", help="a checkpoint from `cnnlineage train`, or a model name"
    )
    p.add_argument("images", nargs="*", metavar="IMAGE", help="PNG/JPEG files (any size or mode; resized)")
    p.add_argument(
        "--layer", action="append", default=[], metavar="NAME", help="module name, as `summary` lists"
    )
    p.add_argument("--channel", type=int, default=None, metavar="N", help="channel of the layer")
    p.add_argument(
        "--target", default=None, metavar="CLASS", help="class index or name (default: true, else predicted)"
    )
    p.add_argument("--out", default=None, metavar="DIR", help="output directory")
    p.add_argument(
        "--data", default=None, help="data set for a bare model name (normalisation, classes, samples)"
    )
    p.add_argument("--data-dir", default="data", help="root of on-disk data sets")
    p.add_argument(
        "--index", type=int, action="append", default=[], metavar="I", help="held-out sample (repeatable)"
    )
    p.add_argument(
        "--patch", type=int, default=None, help="occlusion: side of the grey square (default side/7)"
    )
    p.add_argument(
        "--stride", type=int, default=None, help="occlusion: step of the square (default: the patch)"
    )
    p.add_argument(
        "--steps",
        type=int,
        default=16,
        help="integrated gradients: Gauss-Legendre steps (raise if the error is large)",
    )
    p.add_argument(
        "--samples", type=int, default=16, help="erf: random inputs to average when no image is given"
    )
    p.add_argument("--k", type=int, default=9, help="top-images: how many images")
    p.add_argument(
        "--split", choices=["train", "test", "all"], default=None, help="top-images (all), embedding (test)"
    )
    p.add_argument("--limit", type=int, default=1000, help="embedding: at most this many images")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_cmd_visualize)
