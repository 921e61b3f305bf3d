"""Training configuration: dataclasses with a comment on every field, YAML recipes, ``--set`` overrides.

A recipe is a YAML file whose top-level keys are the sections below (``model``, ``data``,
``augment``, ``optim``, ``schedule``, ``finetune``, ``run``) plus the scalar fields of
:class:`TrainConfig`. Shipped recipes live in ``cnnlineage/configs/<name>.yaml``.
Everything is checked before training starts: unknown keys (with the list of valid
ones), wrong types and impossible values raise :class:`ConfigError`.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

__all__ = [
    "AugmentConfig",
    "ConfigError",
    "DataConfig",
    "DistillConfig",
    "SSLConfig",
    "SemiConfig",
    "FinetuneConfig",
    "ModelConfig",
    "OptimConfig",
    "RunConfig",
    "ScheduleConfig",
    "TrainConfig",
    "apply_overrides",
    "config_from_dict",
    "config_to_dict",
    "list_recipes",
    "load_config",
    "recipe_path",
    "validate",
    "yaml_load",
]

RECIPE_DIR = Path(__file__).resolve().parent.parent / "configs"

DATASET_NAMES = (
    "mnist5k",
    "digits",
    "shapes10",
    "mnist",
    "fashion_mnist",
    "cifar10",
    "cifar100",
    "imagefolder",
)
OPTIMIZERS = ("sgd", "adam", "adamw", "rmsprop", "adagrad")
SCHEDULES = ("none", "step", "multistep", "exponential", "cosine", "onecycle", "plateau")
POLICIES = ("none", "autoaugment", "randaugment", "trivialaugment")
SSL_METHODS = ("none", "simclr", "moco", "byol", "dino", "mae")
MAX_WIDTH = 1 << 20  # SSL head widths, prototypes and queue length: beyond this no memory holds them
MAX_THREADS = 1024  # torch allocates per-thread state: 100,000 threads is a MemoryError, not a setting
MAX_BATCH = 1 << 20  # larger batches cannot fit any machine's memory; the trainer also checks the data size
MAX_IMAGE_SIZE = 4096  # pixels a side: the largest default input of a registered model is 600


class ConfigError(ValueError):
    """A recipe or override does not fit the schema: unknown key, wrong type or impossible value."""


# ---------------------------------------------------------------------------- YAML, bounded
MAX_CONFIG_BYTES = 1 << 20  # a recipe is a few KB; refuse anything near a megabyte
MAX_VALUE_ITEMS = 10_000  # items in any list or mapping value, strings' characters included
MAX_VALUE_DEPTH = 16  # nesting of lists and mappings
_BOOL_WORDS = {"true": True, "yes": True, "on": True, "false": False, "no": False, "off": False}


class _StrictLoader(yaml.SafeLoader):
    """yaml.SafeLoader that refuses anchors and aliases (a 375-byte alias bomb expands to gigabytes) and duplicate keys."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent) or getattr(self.peek_event(), "anchor", None):
            mark = self.peek_event().start_mark
            raise ConfigError(
                f"YAML anchors and aliases (&name, *name) are not allowed in configs (line {mark.line + 1}); "
                "write the values out"
            )
        return super().compose_node(parent, index)

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if isinstance(key, (str, int, float, bool)) and key in seen:
                raise ConfigError(
                    f"duplicate key {key!r} (line {key_node.start_mark.line + 1}); each key may appear once"
                )
            seen.add(key) if isinstance(key, (str, int, float, bool)) else None
        return super().construct_mapping(node, deep)


def yaml_load(text: str, *, where: str) -> Any:
    """Return the value of a YAML text: safe tags only, no anchors/aliases or duplicate keys, bounded size."""
    if len(text) > MAX_CONFIG_BYTES:
        raise ConfigError(
            f"{where}: {len(text):,} characters of YAML; a config is at most {MAX_CONFIG_BYTES:,}"
        )
    try:
        value = yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except ConfigError as e:
        raise ConfigError(f"{where}: {e}") from None
    except yaml.YAMLError as e:
        hint = " (python/... tags are refused: configs hold plain values only)" if "python/" in str(e) else ""
        raise ConfigError(f"{where}: not valid YAML{hint}: {' '.join(str(e).split())}") from None
    _check_bounded(value, where, 0)
    return value


def _check_bounded(value: Any, where: str, depth: int) -> int:
    """Return the number of items in ``value``; ConfigError if it is too deep or too large."""
    if depth > MAX_VALUE_DEPTH:
        raise ConfigError(f"{where}: values nest deeper than {MAX_VALUE_DEPTH} levels")
    if isinstance(value, str):
        n = len(value)
    elif isinstance(value, dict):
        n = len(value) + sum(_check_bounded(v, where, depth + 1) for v in value.values())
    elif isinstance(value, (list, tuple)):
        n = len(value) + sum(_check_bounded(v, where, depth + 1) for v in value)
    else:
        n = 1
    if n > MAX_VALUE_ITEMS:
        raise ConfigError(f"{where}: a value holds more than {MAX_VALUE_ITEMS:,} items or characters")
    return n


@dataclass
class ModelConfig:
    name: str = "lenet5"  # registered model name (see `cnnlineage list`)
    init: str = "paper"  # weight initialisation: "paper" (the model's own), "kaiming" (He 2015) or "xavier" (Glorot 2010)
    drop_path_rate: float = (
        0.0  # stochastic depth rate, for builders that take drop_path_rate (0 = builder default)
    )
    channels_last: bool = (
        False  # keep activations in NHWC memory layout (faster convolutions on many backends)
    )
    kwargs: dict[str, Any] = field(default_factory=dict)  # further builder keywords, e.g. {pad_input: true}
    pruned: dict[str, Any] = field(
        default_factory=dict
    )  # structure after channel pruning ({} = the builder's own)


@dataclass
class DataConfig:
    name: str = (
        "mnist5k"  # dataset: mnist5k, digits, shapes10, mnist, fashion_mnist, cifar10, cifar100, imagefolder
    )
    root: str = "data"  # directory of on-disk datasets (mnist, fashion_mnist, cifar*, imagefolder)
    download: bool = (
        False  # allow torchvision to download mnist/fashion_mnist/cifar into root (off: never touch the net)
    )
    image_size: int = 0  # side of the square model input; 0 = the model's own input size
    batch_size: int = 64  # global training batch size (split evenly across processes under torchrun)
    eval_batch_size: int = 500  # batch size for evaluation
    num_workers: int = 0  # DataLoader worker processes (0 = load in the training process)
    train_subset: int = 0  # use only the first N training samples (0 = all); for quick experiments and tests
    test_subset: int = 0  # use only the first N test samples (0 = all)
    skip_bad_images: bool = (
        False  # imagefolder: skip unreadable image files with a warning instead of failing
    )
    max_image_pixels: int = 40_000_000  # imagefolder: refuse files with more pixels (decompression bombs)


@dataclass
class AugmentConfig:
    crop_padding: int = 0  # random crop after padding by this many pixels (0 = off); CIFAR recipes use 4
    hflip: float = 0.0  # probability of a horizontal flip (keep 0 for digits)
    affine_degrees: float = 0.0  # random rotation in [-d, d] degrees
    affine_translate: float = 0.0  # random shift up to this fraction of the image side
    affine_scale: float = 0.0  # random zoom in [1 - s, 1 + s]
    color_jitter: float = 0.0  # brightness, contrast and saturation jitter strength (0 = off)
    policy: str = "none"  # learned/random policy: none, autoaugment, randaugment, trivialaugment
    random_erasing: float = 0.0  # probability of erasing a random rectangle (Zhong 2017), after normalisation
    mixup_alpha: float = 0.0  # mixup Beta(alpha, alpha) (Zhang 2018); 0 = off
    cutmix_alpha: float = (
        0.0  # cutmix Beta(alpha, alpha) (Yun 2019); 0 = off; with mixup, one is picked per batch
    )
    mix_prob: float = 1.0  # probability that a batch is mixed when mixup or cutmix is on


@dataclass
class OptimConfig:
    name: str = "sgd"  # optimizer: sgd, adam, adamw, rmsprop, adagrad
    lr: float = 0.1  # peak learning rate for the global batch
    momentum: float = 0.9  # SGD / RMSprop momentum
    nesterov: bool = False  # SGD with Nesterov momentum
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])  # Adam/AdamW moment decay rates
    alpha: float = 0.99  # RMSprop smoothing constant
    eps: float = 1e-8  # Adam/AdamW/RMSprop/Adagrad denominator epsilon
    weight_decay: float = 0.0  # L2 penalty (decoupled for AdamW)
    decay_norm_bias: bool = False  # also decay norm-layer weights and biases (off: they get weight_decay 0)
    clip_grad_norm: float = 0.0  # clip the global gradient norm to this value (0 = off)
    accum_steps: int = 1  # accumulate gradients over this many batches before each optimizer step


@dataclass
class ScheduleConfig:
    name: str = "cosine"  # none, step, multistep, exponential, cosine, onecycle, plateau
    warmup_epochs: float = 0.0  # linear warm-up length in epochs (may be fractional), before the schedule
    warmup_factor: float = 0.01  # warm-up starts at lr * warmup_factor
    min_lr: float = 0.0  # cosine: lowest learning rate
    restart_epochs: int = (
        0  # cosine: restart period in epochs (SGDR, Loshchilov 2017); 0 = one cosine, no restart
    )
    restart_mult: int = 1  # cosine: each restart period is this many times longer than the last
    step_epochs: int = 30  # step: multiply by gamma every step_epochs epochs
    milestones: list[int] = field(default_factory=list)  # multistep: epochs at which to multiply by gamma
    gamma: float = 0.1  # step/multistep/plateau factor; exponential: per-epoch factor
    pct_start: float = 0.3  # onecycle: fraction of the steps spent rising to lr
    div_factor: float = 25.0  # onecycle: start at lr / div_factor
    final_div_factor: float = 1e4  # onecycle: end at lr / (div_factor * final_div_factor)
    patience: int = 5  # plateau: epochs without a better test loss before multiplying by gamma


@dataclass
class FinetuneConfig:
    checkpoint: str = ""  # start from this checkpoint or state_dict file ("" = train from scratch)
    mode: str = (
        "full"  # head: train only the classifier; full: train all; gradual: unfreeze stages from the top
    )
    unfreeze_every: int = 1  # gradual: epochs between unfreezing one more stage
    backbone_lr_mult: float = (
        1.0  # lr of the pretrained layers relative to optim.lr (the new head keeps optim.lr)
    )


@dataclass
class DistillConfig:
    teacher: str = ""  # knowledge distillation from this checkpoint's model ("" = off; Hinton et al. 2015)
    temperature: float = 4.0  # softmax temperature T of the soft targets (the soft loss is scaled by T²)
    alpha: float = 0.9  # weight of the soft-target loss; 1 - alpha goes to the hard-label loss


@dataclass
class SSLConfig:
    method: str = "none"  # self-supervised pre-training (cnnlineage pretrain): simclr, moco, byol, dino, mae
    proj_dim: int = 128  # output size of the projection head (SimCLR/MoCo/BYOL); DINO: its bottleneck (prototypes: out_dim)
    hidden_dim: int = 512  # hidden size of the projection / prediction heads
    out_dim: int = 1024  # DINO: number of prototypes (the head's output size)
    temperature: float = (
        0.1  # SimCLR/MoCo: NT-Xent / InfoNCE temperature; DINO: teacher temperature is teacher_temp
    )
    teacher_temp: float = 0.04  # DINO: sharpening temperature of the teacher (the student uses 0.1)
    center_momentum: float = 0.9  # DINO: momentum of the teacher's output centre
    momentum: float = (
        0.99  # EMA momentum of MoCo's key encoder (constant), BYOL's target and DINO's teacher (cosine to 1)
    )
    queue_size: int = 4096  # MoCo: number of negative keys kept in the queue
    local_crops: int = 4  # DINO: number of small local crops besides the two global ones
    crop_min: float = (
        0.0  # smallest area fraction of a view's random crop (0 = the method's; DINO: global crops)
    )
    elastic_alpha: float = 0.0  # elastic distortion of the views, pixels (0 = off; Simard: 34)
    elastic_sigma: float = 4.0  # elastic distortion: smoothing Gaussian's std in pixels (Simard: 4)
    mask_ratio: float = 0.75  # MAE: fraction of patches masked (He et al. 2022 use 0.75)
    decoder_dim: int = 128  # MAE: width of the light decoder
    decoder_depth: int = 2  # MAE: transformer blocks in the decoder
    probe_every: int = 1  # evaluate a k-NN probe on the held-out split every N epochs (0 = only at the end)
    knn_k: int = 20  # neighbours of the weighted k-NN probe (Wu et al. 2018)


@dataclass
class SemiConfig:
    method: str = "none"  # semi-supervised training: fixmatch, pseudo-label, mean-teacher ("none" = off)
    labels_per_class: int = 0  # labelled images kept per class; the rest of the training split is unlabelled
    unlabelled_ratio: int = 7  # unlabelled images per labelled image in each step (FixMatch's mu)
    threshold: float = 0.95  # FixMatch/pseudo-label: confidence needed to use a pseudo-label
    weight: float = (
        1.0  # weight of the unlabelled loss (FixMatch's lambda_u; mean teacher's max consistency weight)
    )
    rampup_epochs: float = 5.0  # pseudo-label/mean-teacher: epochs over which the unlabelled weight ramps up
    ema_decay: float = 0.999  # mean teacher: EMA decay of the teacher's weights


@dataclass
class RunConfig:
    out_dir: str = ""  # run directory ("" = runs/<model>-<data>-<date>-<time>)
    checkpoint_every_steps: int = 0  # also checkpoint every N optimizer steps (0 = only at epoch ends)
    log_every_steps: int = 50  # plain-text progress line every N steps (when not on a terminal)
    progress: str = "auto"  # auto (bar on a terminal, lines otherwise), bar, lines, none
    tensorboard: bool = True  # write TensorBoard event files to <run>/tb
    plots: bool = True  # write learning_curves.png and confusion_matrix.png
    grad_norms: bool = False  # log each layer's gradient norm (mean over the epoch's steps)
    dist_timeout: float = 300.0  # seconds a process waits in a collective for the others before giving up
    recipe: str = ""  # which recipe the config came from and why (written by `cnnlineage train`; a note only)


@dataclass
class TrainConfig:
    model: ModelConfig = field(default_factory=ModelConfig)  # which network and how to build it
    data: DataConfig = field(default_factory=DataConfig)  # dataset, input size, batching
    augment: AugmentConfig = field(default_factory=AugmentConfig)  # training-time augmentation
    optim: OptimConfig = field(default_factory=OptimConfig)  # optimizer and gradient handling
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)  # learning-rate schedule
    finetune: FinetuneConfig = field(default_factory=FinetuneConfig)  # transfer learning from a checkpoint
    run: RunConfig = field(default_factory=RunConfig)  # outputs, checkpoints, logging
    distill: DistillConfig = field(default_factory=DistillConfig)  # soft targets from a trained teacher
    ssl: SSLConfig = field(default_factory=SSLConfig)  # self-supervised pre-training (cnnlineage pretrain)
    semi: SemiConfig = field(default_factory=SemiConfig)  # semi-supervised training with few labels
    epochs: int = 10  # passes over the training set
    seed: int = 0  # seeds initialisation, data order, augmentation and dropout
    device: str = "auto"  # auto (CUDA if present), cpu, cuda, cuda:N
    amp: str = "none"  # mixed precision: none, bf16 (CPU or CUDA), fp16 (CUDA, with loss scaling)
    label_smoothing: float = 0.0  # cross-entropy label smoothing (Szegedy 2016)
    ema_decay: float = 0.0  # exponential moving average of the weights, e.g. 0.999 (0 = off)
    threads: int = 0  # torch intra-op CPU threads (0 = torch's default)


# ---------------------------------------------------------------------------- dict <-> dataclass
def _is_section(tp: Any) -> bool:
    return isinstance(tp, type) and dataclasses.is_dataclass(tp)


def _coerce(value: Any, tp: Any, where: str) -> Any:
    """Return ``value`` converted to the annotated type ``tp``; ConfigError if it does not fit."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        for a in args:
            if a is type(None):
                continue
            try:
                return _coerce(value, a, where)
            except ConfigError:
                pass
        raise ConfigError(f"{where}: expected {tp}, got {value!r}")
    if tp is Any:
        return value
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in _BOOL_WORDS:
            return _BOOL_WORDS[value.strip().lower()]
        raise ConfigError(f"{where}: expected a boolean (true/false, yes/no, on/off), got {value!r}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):  # YAML 1.1 reads "1e6" as a string
            try:
                f = float(value)
            except ValueError:
                f = math.nan
            if math.isfinite(f) and f.is_integer():
                return int(f)
        raise ConfigError(f"{where}: expected an integer, got {_shown(value)}")
    if tp is float:
        number = None
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            number = float(value)
        elif isinstance(value, str):  # YAML 1.1 reads "1e-3" as a string
            try:
                number = float(value)
            except ValueError:
                pass
        if number is None:
            raise ConfigError(f"{where}: expected a number (e.g. 0.5), got {_shown(value)}")
        if not math.isfinite(number):
            raise ConfigError(f"{where}: expected a finite number, got {value!r}")
        return number
    if tp is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"{where}: expected a string, got {value!r}")
    if origin is list:
        (item,) = typing.get_args(tp)
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        return [_coerce(v, item, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        return dict(value)
    raise ConfigError(f"{where}: unsupported type {tp}")  # pragma: no cover - schema bug


def _shown(value: Any) -> str:
    if isinstance(value, bool):  # YAML reads yes/no/on/off as booleans too
        return f"the boolean {str(value).lower()}"
    return repr(value)


_ALIASES = {
    "learning_rate": "lr",
    "wd": "weight_decay",
    "bs": "batch_size",
    "batch": "batch_size",
    "epoch": "epochs",
}


def _unknown_key(key: str, names: list[str], prefix: str) -> ConfigError:
    """Return the error for an unknown key: the nearest valid keys first, then the section's keys."""
    close = [_ALIASES[key]] if _ALIASES.get(key) in names else []
    close += [c for c in difflib.get_close_matches(key, names, n=3, cutoff=0.5) if c not in close]
    guess = f"did you mean {' or '.join(prefix + c for c in close)}? " if close else ""
    section = f" in {prefix[:-1]}" if prefix else ""
    return ConfigError(f"unknown key {prefix + key!r}; {guess}valid keys{section}: {', '.join(names)}")


def _fill(obj: Any, values: dict[str, Any], prefix: str) -> None:
    hints = typing.get_type_hints(type(obj))
    names = [f.name for f in dataclasses.fields(obj)]
    if not isinstance(values, dict):
        raise ConfigError(f"{prefix or 'config'}: expected a mapping of keys, got {values!r}")
    for key, value in values.items():
        where = f"{prefix}{key}"
        if key not in names:
            raise _unknown_key(str(key), names, prefix)
        tp = hints[key]
        if key == "kwargs" and isinstance(
            value, dict
        ):  # builder keywords merge, so model.kwargs.x=1 adds one
            value = {**getattr(obj, key), **value}
        if _is_section(tp):
            _fill(getattr(obj, key), value, f"{where}.")
        else:
            setattr(obj, key, _coerce(value, tp, where))


def config_from_dict(values: dict[str, Any], base: TrainConfig | None = None) -> TrainConfig:
    """Return a validated TrainConfig: ``base`` (default: the defaults) updated with nested ``values``."""
    cfg = TrainConfig()
    if base is not None:  # a deep copy of base, through its dict form, so base is left untouched
        _fill(cfg, config_to_dict(base), "")
    _fill(cfg, values or {}, "")
    return validate(cfg)


def config_to_dict(cfg: TrainConfig) -> dict[str, Any]:
    """Return the config as nested plain dicts (YAML- and checkpoint-safe)."""
    return dataclasses.asdict(cfg)


def valid_keys(cfg: TrainConfig | None = None) -> list[str]:
    """Return every dotted key the schema accepts, e.g. 'optim.lr'."""
    cfg = cfg or TrainConfig()
    keys = []
    for f in dataclasses.fields(cfg):
        sub = getattr(cfg, f.name)
        if dataclasses.is_dataclass(sub):
            keys += [f"{f.name}.{g.name}" for g in dataclasses.fields(sub)]
        else:
            keys.append(f.name)
    return keys


def apply_overrides(cfg: TrainConfig, overrides: list[str]) -> TrainConfig:
    """Return ``cfg`` with ``key=value`` overrides applied (values parsed as YAML: 0.05, true, [30, 60])."""
    values: dict[str, Any] = {}
    given: list[tuple[str, str]] = []
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} is not of the form key=value, e.g. optim.lr=0.05")
        key, raw = item.split("=", 1)
        key = key.strip()
        if key not in valid_keys(cfg) and not key.startswith("model.kwargs."):
            section, _, leaf = key.rpartition(".")
            names = [k.rpartition(".")[2] for k in valid_keys(cfg) if k.rpartition(".")[0] == section]
            if section and names:
                raise _unknown_key(leaf, names, section + ".")
            raise _unknown_key(key, valid_keys(cfg), "")
        value = yaml_load(raw, where=f"--set {item}")
        node = values
        *parents, leaf = key.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
        given.append((key, item))
    try:
        return config_from_dict(values, base=cfg)
    except ConfigError as e:
        culprit = next((item for key, item in reversed(given) if str(e).startswith(key)), None)
        raise ConfigError(f"{e} (from --set {culprit})" if culprit else str(e)) from None


def list_recipes() -> list[str]:
    """Return the names of the shipped recipes (``cnnlineage/configs/*.yaml``)."""
    return sorted(p.stem for p in RECIPE_DIR.glob("*.yaml"))


def recipe_path(name: str) -> Path | None:
    """Return the shipped recipe file called ``name``, or None."""
    p = RECIPE_DIR / f"{name}.yaml"
    return p if p.is_file() else None


def load_config(path_or_name: str | Path) -> TrainConfig:
    """Return the validated TrainConfig of a YAML file, or of a shipped recipe by name (e.g. 'lenet5')."""
    p = Path(path_or_name)
    if not p.is_file():
        shipped = recipe_path(str(path_or_name))
        if shipped is None:
            raise ConfigError(
                f"no recipe file {str(p)!r} and no shipped recipe of that name; shipped: {', '.join(list_recipes())}"
            )
        p = shipped
    values = yaml_load(p.read_text(), where=str(p)) or {}
    try:
        return config_from_dict(values)
    except ConfigError as e:
        raise ConfigError(f"{p}: {e}") from None


# ---------------------------------------------------------------------------- value checks
def _choice(value: str, choices: tuple[str, ...], key: str) -> None:
    if value not in choices:
        raise ConfigError(f"{key} must be one of {', '.join(choices)}; got {value!r}")


def _at_least(value: float, low: float, key: str) -> None:
    if value < low:
        raise ConfigError(f"{key} must be >= {low}; got {value!r}")


def _prob(value: float, key: str) -> None:
    if not 0.0 <= value <= 1.0:
        raise ConfigError(f"{key} must be a probability in [0, 1]; got {value!r}")


def validate(cfg: TrainConfig) -> TrainConfig:
    """Return ``cfg`` if every value is possible; ConfigError naming the first one that is not."""
    m, d, a, o, s, f, r = cfg.model, cfg.data, cfg.augment, cfg.optim, cfg.schedule, cfg.finetune, cfg.run
    _at_least(cfg.epochs, 1, "epochs")
    _choice(m.init, ("paper", "kaiming", "xavier"), "model.init")
    _prob(m.drop_path_rate, "model.drop_path_rate")
    _choice(d.name, DATASET_NAMES, "data.name")
    for key in ("image_size", "num_workers", "train_subset", "test_subset"):
        _at_least(getattr(d, key), 0, f"data.{key}")
    if d.image_size > MAX_IMAGE_SIZE:
        raise ConfigError(
            f"data.image_size must be at most {MAX_IMAGE_SIZE} pixels a side; got {d.image_size} "
            "(0 feeds the model its own input size)"
        )
    _at_least(d.batch_size, 1, "data.batch_size")
    _at_least(d.eval_batch_size, 1, "data.eval_batch_size")
    for key in ("hflip", "random_erasing", "mix_prob"):
        _prob(getattr(a, key), f"augment.{key}")
    for key in (
        "crop_padding",
        "affine_degrees",
        "affine_translate",
        "color_jitter",
        "mixup_alpha",
        "cutmix_alpha",
    ):
        _at_least(getattr(a, key), 0, f"augment.{key}")
    if not 0 <= a.affine_scale < 1:
        raise ConfigError(f"augment.affine_scale must be in [0, 1); got {a.affine_scale!r}")
    if a.affine_degrees > 180:
        raise ConfigError(
            f"augment.affine_degrees must be in [0, 180] (a rotation in [-d, d] degrees); got {a.affine_degrees!r}"
        )
    if a.affine_translate > 1:
        raise ConfigError(
            f"augment.affine_translate must be in [0, 1] (a fraction of the image side); got {a.affine_translate!r}"
        )
    _choice(a.policy, POLICIES, "augment.policy")
    _choice(o.name, OPTIMIZERS, "optim.name")
    if o.lr <= 0:
        raise ConfigError(f"optim.lr must be > 0; got {o.lr!r}")
    _at_least(o.momentum, 0, "optim.momentum")
    _at_least(o.weight_decay, 0, "optim.weight_decay")
    _at_least(o.clip_grad_norm, 0, "optim.clip_grad_norm")
    _at_least(o.accum_steps, 1, "optim.accum_steps")
    if o.eps <= 0:
        raise ConfigError(
            f"optim.eps must be > 0 (it keeps the update's denominator off zero); got {o.eps!r}"
        )
    if not 0 <= o.alpha < 1:
        raise ConfigError(f"optim.alpha must be in [0, 1); got {o.alpha!r}")
    if len(o.betas) != 2 or not all(0 <= b < 1 for b in o.betas):
        raise ConfigError(f"optim.betas must be two numbers in [0, 1); got {o.betas!r}")
    if o.nesterov and (o.name != "sgd" or o.momentum <= 0):
        raise ConfigError("optim.nesterov needs optim.name=sgd and optim.momentum > 0")
    _choice(s.name, SCHEDULES, "schedule.name")
    _at_least(s.warmup_epochs, 0, "schedule.warmup_epochs")
    if not 0 < s.warmup_factor <= 1:
        raise ConfigError(f"schedule.warmup_factor must be in (0, 1]; got {s.warmup_factor!r}")
    if s.warmup_epochs and s.warmup_epochs >= cfg.epochs:
        raise ConfigError(
            f"schedule.warmup_epochs ({s.warmup_epochs}) must be shorter than epochs ({cfg.epochs})"
        )
    if s.name == "onecycle" and s.warmup_epochs:
        raise ConfigError("schedule.onecycle has its own warm-up (pct_start); set schedule.warmup_epochs=0")
    if s.min_lr < 0 or s.min_lr >= o.lr:
        raise ConfigError(f"schedule.min_lr must be in [0, optim.lr); got {s.min_lr!r}")
    _at_least(s.restart_epochs, 0, "schedule.restart_epochs")
    _at_least(s.restart_mult, 1, "schedule.restart_mult")
    _at_least(s.step_epochs, 1, "schedule.step_epochs")
    if sorted(s.milestones) != list(s.milestones) or any(x < 1 for x in s.milestones):
        raise ConfigError(f"schedule.milestones must be increasing positive epochs; got {s.milestones!r}")
    if not 0 < s.gamma <= 1:
        raise ConfigError(f"schedule.gamma must be in (0, 1]; got {s.gamma!r}")
    if not 0 < s.pct_start < 1:
        raise ConfigError(f"schedule.pct_start must be in (0, 1); got {s.pct_start!r}")
    _at_least(s.div_factor, 1, "schedule.div_factor")
    _at_least(s.final_div_factor, 1, "schedule.final_div_factor")
    _at_least(s.patience, 0, "schedule.patience")
    _choice(f.mode, ("head", "full", "gradual"), "finetune.mode")
    _at_least(f.unfreeze_every, 1, "finetune.unfreeze_every")
    if f.backbone_lr_mult < 0:
        raise ConfigError(f"finetune.backbone_lr_mult must be >= 0; got {f.backbone_lr_mult!r}")
    _at_least(r.checkpoint_every_steps, 0, "run.checkpoint_every_steps")
    _at_least(r.log_every_steps, 1, "run.log_every_steps")
    _choice(r.progress, ("auto", "bar", "lines", "none"), "run.progress")
    _at_least(cfg.seed, 0, "seed")
    if not (cfg.device in ("auto", "cpu", "cuda", "mps") or cfg.device.startswith("cuda:")):
        raise ConfigError(f"device must be auto, cpu, cuda, cuda:N or mps; got {cfg.device!r}")
    _choice(cfg.amp, ("none", "bf16", "fp16"), "amp")
    if not 0 <= cfg.label_smoothing < 1:
        raise ConfigError(f"label_smoothing must be in [0, 1); got {cfg.label_smoothing!r}")
    if not 0 <= cfg.ema_decay < 1:
        raise ConfigError(f"ema_decay must be in [0, 1); got {cfg.ema_decay!r}")
    _at_least(cfg.threads, 0, "threads")
    if cfg.threads > MAX_THREADS:
        raise ConfigError(f"threads must be at most {MAX_THREADS}; got {cfg.threads} (0 = torch's default)")
    if cfg.seed >= 2**63:
        raise ConfigError(f"seed must be below 2**63; got {cfg.seed}")
    if d.batch_size > MAX_BATCH or d.eval_batch_size > MAX_BATCH:
        raise ConfigError(
            f"data.batch_size and data.eval_batch_size must be at most {MAX_BATCH:,}; got "
            f"{d.batch_size:,} and {d.eval_batch_size:,}"
        )
    _at_least(d.max_image_pixels, 1, "data.max_image_pixels")
    if not 0 < r.dist_timeout <= 86400:
        raise ConfigError(f"run.dist_timeout must be in (0, 86400] seconds; got {r.dist_timeout!r}")
    _validate_ssl(cfg.ssl)
    if cfg.distill.temperature <= 0:
        raise ConfigError(f"distill.temperature must be > 0; got {cfg.distill.temperature!r}")
    _prob(cfg.distill.alpha, "distill.alpha")
    _validate_semi(cfg)
    return cfg


SEMI_METHODS = ("none", "fixmatch", "pseudo-label", "mean-teacher")


def _validate_semi(cfg: TrainConfig) -> None:
    s = cfg.semi
    _choice(s.method, SEMI_METHODS, "semi.method")
    _at_least(s.labels_per_class, 0, "semi.labels_per_class")
    _at_least(s.unlabelled_ratio, 1, "semi.unlabelled_ratio")
    _prob(s.threshold, "semi.threshold")
    _at_least(s.weight, 0, "semi.weight")
    _at_least(s.rampup_epochs, 0, "semi.rampup_epochs")
    if not 0 <= s.ema_decay < 1:
        raise ConfigError(f"semi.ema_decay must be in [0, 1); got {s.ema_decay!r}")
    if s.method == "none":
        return
    if not s.labels_per_class:
        raise ConfigError(
            f"semi.method={s.method} needs the number of labelled images per class: add --labels-per-class N "
            "(semi.labels_per_class); the rest of the training split is used without its labels"
        )
    if cfg.augment.mixup_alpha or cfg.augment.cutmix_alpha:
        raise ConfigError(
            f"semi.method={s.method} does not combine with mixup/cutmix (augment.mixup_alpha="
            f"{cfg.augment.mixup_alpha:g}, augment.cutmix_alpha={cfg.augment.cutmix_alpha:g}); set both to 0"
        )
    if s.method == "mean-teacher" and cfg.ema_decay:
        raise ConfigError(
            f"semi.method=mean-teacher keeps its own weight average (semi.ema_decay={s.ema_decay:g}); "
            f"set ema_decay=0 (got {cfg.ema_decay:g})"
        )


def _validate_ssl(ss: SSLConfig) -> None:
    _choice(ss.method, SSL_METHODS, "ssl.method")
    for key in ("proj_dim", "hidden_dim", "out_dim", "queue_size", "decoder_dim", "decoder_depth", "knn_k"):
        value = getattr(ss, key)
        if not 1 <= value <= MAX_WIDTH:
            raise ConfigError(f"ssl.{key} must be in [1, {MAX_WIDTH:,}]; got {value!r}")
    if not 0 <= ss.local_crops <= 32:
        raise ConfigError(f"ssl.local_crops must be in [0, 32] (DINO uses 6-10); got {ss.local_crops!r}")
    _at_least(ss.probe_every, 0, "ssl.probe_every")
    if not 0 <= ss.crop_min < 1:
        raise ConfigError(
            f"ssl.crop_min must be in [0, 1) (the smallest crop's share of the image; 0 = the method's); "
            f"got {ss.crop_min!r}"
        )
    if not 0 <= ss.elastic_alpha <= 1000:
        raise ConfigError(
            f"ssl.elastic_alpha must be in [0, 1000] (the displacement in pixels; 0 = off); "
            f"got {ss.elastic_alpha!r}. Simard et al. use 34 on 28-pixel digits"
        )
    if not 0 < ss.elastic_sigma <= 100:
        raise ConfigError(
            f"ssl.elastic_sigma must be in (0, 100] (the smoothing in pixels); got {ss.elastic_sigma!r}. "
            "Simard et al. use 4 on 28-pixel digits"
        )
    for key in ("temperature", "teacher_temp"):
        if getattr(ss, key) <= 0:
            raise ConfigError(f"ssl.{key} must be > 0; got {getattr(ss, key)!r}")
    if not 0 <= ss.center_momentum < 1:
        raise ConfigError(f"ssl.center_momentum must be in [0, 1); got {ss.center_momentum!r}")
    _prob(ss.momentum, "ssl.momentum")
    if not 0 < ss.mask_ratio < 1:
        raise ConfigError(
            f"ssl.mask_ratio must be in (0, 1) (MAE masks 0.75 of the patches); got {ss.mask_ratio!r}"
        )
