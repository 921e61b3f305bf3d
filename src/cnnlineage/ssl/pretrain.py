"""``cnnlineage pretrain``: self-supervised pre-training on the trainer's machinery, labels ignored.

:class:`PretrainTrainer` is a :class:`~cnnlineage.train.trainer.Trainer` with four pieces
replaced: the model (the registered network as ``backbone`` inside the method's module,
:mod:`.methods` / :mod:`.mae`), the data (several augmented views per image,
:mod:`.augment`), the per-batch loss (the method's) and the evaluation (a weighted k-NN
probe of the backbone's features, :mod:`.knn`, reported as ``test_top1``). Everything
else is the trainer's: run directory, config.yaml, metrics.jsonl, ``last.pt``/``best.pt``,
exact resume after a kill, TensorBoard, learning curves, DDP under torchrun, signals.

In metrics.jsonl ``train_loss`` is the method's loss and ``train_top1`` its pretext
accuracy (SimCLR: the other view is the nearest of the batch's 2N - 1; MoCo: the positive
key beats the queue; BYOL: the prediction's nearest target is its own; DINO: student and
teacher pick the same prototype; MAE: a masked patch's prediction is nearest its own
target); ``test_*`` is the k-NN probe (loss: negative log of the vote share of the true
class), measured every ``ssl.probe_every`` epochs and at the end; ``probe_epoch`` says
which epoch measured the figures a row carries (0: the untrained network).

A checkpoint is a trainer checkpoint whose ``model`` holds the method's module (the
network under ``backbone.``) and whose ``ssl`` entry names the method (see
:mod:`cnnlineage.train.checkpoint`).
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
import yaml
from lightly.utils.scheduler import cosine_schedule
from torchvision.transforms import v2

from ..common import atomic_write_text
from ..data import EpochSampler, Pipeline, TransformedDataset, build_transforms, make_loader
from ..data.transforms import mix_seed
from ..models.vit import VisionTransformer
from ..registry import get_builder, model_info
from ..train import distributed
from ..train.checkpoint import CheckpointError
from ..train.config import (
    AugmentConfig,
    ConfigError,
    SSLConfig,
    TrainConfig,
    apply_overrides,
    config_from_dict,
    config_to_dict,
    load_config,
    recipe_path,
    validate,
    yaml_load,
)
from ..train.engine import autocast
from ..train.metrics import accuracy_from_confusion, topk_correct
from ..train.optim import LRSchedule, build_optimizer, param_groups
from ..train.trainer import Trainer
from .augment import ViewsDataset, build_views, describe_views, local_crop_size, view_specs
from .knn import extract_features, knn_predict
from .mae import MAE, mae_models
from .methods import BYOL, DINO, MoCo, SimCLR, SSLMethod, feature_dim

__all__ = [
    "METHODS",
    "PretrainTrainer",
    "build_ssl_model",
    "launch_pretrain",
    "method_defaults",
    "pretrain",
    "pretrain_config",
]

METHODS = ("simclr", "moco", "byol", "dino", "mae")
QUICK = {"data": {"train_subset": 512, "test_subset": 256, "batch_size": 128}, "epochs": 1}
VIEW_AUGMENT = ("affine_degrees", "affine_translate", "affine_scale")  # augment.* keys the views also take
_ADAMW = {"name": "adamw", "lr": 1e-3, "weight_decay": 5e-4}  # on mnist5k SGD (lr 0.12) did worse
_ADAMW_VIT = {"name": "adamw", "lr": 5e-4, "weight_decay": 0.04}  # DINO's ViT recipe (lr for batch 256)
# the method's own settings; EMA rates for runs of a few hundred steps (docs/ssl.md)
_SSL_DEFAULTS = {
    "simclr": {"temperature": 0.1},  # SimCLR's best temperature (Table 5)
    "moco": {"temperature": 0.2, "momentum": 0.9, "queue_size": 1024},  # v2's tau; a queue of ~1/4 of mnist5k
    "byol": {"momentum": 0.99},
    # teacher 0.07, the paper's choice when 0.04 is unstable: at 0.04 a LeNet fell below its random probe (seed 1)
    "dino": {"momentum": 0.9, "teacher_temp": 0.07, "local_crops": 4},
    "mae": {"mask_ratio": 0.75},
}


def method_defaults(method: str, *, vit: bool = False) -> dict[str, Any]:
    """Return the config values ``cnnlineage pretrain`` starts from for ``method`` (small data, CPU; docs/ssl.md)."""
    if method not in METHODS:
        raise ConfigError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    values: dict[str, Any] = {
        "data": {"batch_size": 256},
        "epochs": 10,
        "schedule": {"name": "cosine", "warmup_epochs": 0.5 if vit else 0.0},
        "optim": dict(_ADAMW_VIT if vit else _ADAMW),
        "ssl": {"method": method, **_SSL_DEFAULTS[method]},
    }
    if method == "mae":  # the paper's AdamW (0.9, 0.95), wd 0.05, warm-up; lr raised for short runs
        values["optim"] = {"name": "adamw", "lr": 1e-3, "betas": [0.9, 0.95], "weight_decay": 0.05}
    return values


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in extra.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def pretrain_config(
    model: str | None,
    *,
    method: str | None = None,
    quick: bool = False,
    overrides: list[str] = (),
    config: str | None = None,
    resume: str | None = None,
) -> TrainConfig:
    """Return the validated config of a pretrain command: defaults for the method, ``--quick``, then overrides.

    ``config`` (a YAML file, e.g. from ``--print-config``) replaces the defaults; ``resume``
    without ``config`` reads the run directory's config.yaml.
    """
    out = [f"run.out_dir={json.dumps(str(resume))}"] if resume else []
    if resume and not config:
        saved = Path(resume) / "config.yaml"
        if not saved.is_file():
            raise ConfigError(f"cannot resume: {saved} does not exist (is {resume} a run directory?)")
        try:
            cfg = config_from_dict(yaml_load(saved.read_text(), where=str(saved)))
        except ConfigError as e:
            raise ConfigError(f"{saved}: {e}") from None
        if cfg.ssl.method == "none":
            raise ConfigError(
                f"{resume} is a `cnnlineage train` run; resume it with `cnnlineage train --resume`"
            )
        for given, held, what in ((model, cfg.model.name, "model"), (method, cfg.ssl.method, "method")):
            if given and given != held:
                raise ConfigError(f"{resume} is a {held} run ({what}), not {given}")
        return apply_overrides(cfg, [*overrides, *out])
    if config:
        cfg = load_config(config)
        if model:
            cfg = apply_overrides(cfg, [f"model.name={model}"])
        if method:
            cfg = apply_overrides(cfg, [f"ssl.method={method}"])
        return apply_overrides(cfg, [*overrides, *out])
    if not model:
        raise ConfigError("name a model, e.g. `cnnlineage pretrain lenet5_modern --method simclr`")
    get_builder(model)  # an unknown name fails here, with the closest names
    if not method:
        raise ConfigError(f"name a method with --method: {', '.join(METHODS)}")
    values = method_defaults(method, vit=model_info(model).family == "vit")
    values = _merge(values, {"model": {"name": model}})
    if quick:
        values = _merge(values, QUICK)
    note = f"pretrain defaults for {method}{' (--quick)' if quick else ''}, docs/ssl.md"
    values = _merge(values, {"run": {"recipe": note}})
    cfg = apply_overrides(config_from_dict(values), [*overrides, *out])
    own = recipe_path(model)  # the model's own recipe builds it (e.g. lenet5's pad_input) when for this data
    if own is not None:
        recipe = load_config(model)
        if recipe.data.name == cfg.data.name:
            values = _merge(values, {"model": {"kwargs": recipe.model.kwargs, "init": recipe.model.init}})
            cfg = apply_overrides(config_from_dict(values), [*overrides, *out])
    return cfg


def check_pretrain_config(cfg: TrainConfig) -> None:
    """ConfigError (a ValueError) for what pre-training cannot do: no method, MAE on a CNN, classification options."""
    validate(cfg)
    method = cfg.ssl.method
    if method == "none":
        raise ConfigError(f"ssl.method is none: name a self-supervised method ({', '.join(METHODS)})")
    if method == "mae" and cfg.model.name not in mae_models():
        raise ConfigError(
            f"MAE pre-trains Vision Transformers only: {', '.join(mae_models())}; {cfg.model.name} is not one. "
            "For a CNN use simclr, moco, byol or dino"
        )
    refused = [
        key
        for key, on in (
            ("finetune.checkpoint", cfg.finetune.checkpoint),
            ("distill.teacher", cfg.distill.teacher),
            ("ema_decay", cfg.ema_decay),
            ("label_smoothing", cfg.label_smoothing),
            ("semi.method", cfg.semi.method != "none"),
        )
        if on
    ]
    refused += [
        f"augment.{k}"
        for k, v in config_to_dict(cfg)["augment"].items()
        if v != getattr(AugmentConfig(), k) and k not in VIEW_AUGMENT
    ]
    if refused:
        raise ConfigError(
            f"pre-training does not use {', '.join(refused)} (classification settings; each method draws its own "
            "views, docs/ssl.md; of augment.* only the affine_* keys apply): leave them unset"
        )


def build_ssl_model(ssl: SSLConfig, net: nn.Module, *, size: tuple[int, int]) -> SSLMethod:
    """Return the method's module around the registered network ``net`` (which becomes its ``backbone``)."""
    m = ssl.method
    if m == "mae":
        return MAE(
            net,
            size=size,
            mask_ratio=ssl.mask_ratio,
            decoder_dim=ssl.decoder_dim,
            decoder_depth=ssl.decoder_depth,
        )
    heads = dict(feature_dim=feature_dim(net, size), hidden_dim=ssl.hidden_dim)
    if m == "simclr":
        return SimCLR(net, **heads, proj_dim=ssl.proj_dim, temperature=ssl.temperature)
    if m == "moco":
        return MoCo(
            net, **heads, proj_dim=ssl.proj_dim, temperature=ssl.temperature, queue_size=ssl.queue_size
        )
    if m == "byol":
        return BYOL(net, **heads, proj_dim=ssl.proj_dim)
    if m == "dino":
        return DINO(
            net,
            **heads,
            bottleneck_dim=ssl.proj_dim,
            out_dim=ssl.out_dim,
            teacher_temp=ssl.teacher_temp,
            center_momentum=ssl.center_momentum,
            batch_norm=not isinstance(net, VisionTransformer),  # BN-free for a ViT, as the paper's
        )
    raise ConfigError(f"unknown method {m!r}; choose one of {', '.join(METHODS)}")


class PretrainTrainer(Trainer):
    """Self-supervised pre-training of ``cfg.model.name`` with ``cfg.ssl.method``; ``fit()`` returns the summary."""

    chance_hint = False  # the loss is not a classification loss

    def __init__(self, cfg: TrainConfig, **kwargs: Any) -> None:
        check_pretrain_config(cfg)
        self.init_probe: dict[str, Any] | None = None  # k-NN probe of the untrained network
        self.last_probe: dict[str, Any] | None = None  # the latest probe, carried by epochs without one
        super().__init__(cfg, **kwargs)

    # ------------------------------------------------------------------ building
    def _build_model(self, pretrained: dict[str, Any] | None) -> tuple[Any, Any]:
        train_base, test_base = super()._build_model(pretrained)  # the registered network, seeded
        net = self.model
        self.feature_dim = feature_dim(net, self.size)
        torch.manual_seed(
            mix_seed(self.cfg.seed, 0x551)
        )  # the heads' initialisation depends on the seed only
        self.model = build_ssl_model(self.cfg.ssl, net, size=self.size).to(self.device)
        trainable = sum(p.numel() for p in self.model.parameters() if p.requires_grad)
        self.head_params = trainable - sum(p.numel() for p in net.parameters() if p.requires_grad)
        return train_base, test_base

    def _build_data(self, train_base: Any, test_base: Any) -> None:
        cfg, d = self.cfg, self.cfg.data
        net = self.model.backbone
        resize = self.info.size != self.size
        local = local_crop_size(net, self.size)
        specs = view_specs(
            cfg.ssl.method,
            self.info,
            self.size,
            local_crops=cfg.ssl.local_crops,
            local_size=local,
            min_scale=cfg.ssl.crop_min,
            affine=(cfg.augment.affine_degrees, cfg.augment.affine_translate, cfg.augment.affine_scale),
            elastic=(cfg.ssl.elastic_alpha, cfg.ssl.elastic_sigma),
        )
        self.views = build_views(specs, self.info, size=self.size, resize=resize)
        self.test_tf = build_transforms(
            AugmentConfig(), self.info, size=self.size, in_chans=net.in_chans, train=False, resize=resize
        )
        self.train_tf = self.test_tf  # (describe() of the probe's pipeline)
        self.train_set = ViewsDataset(train_base, self.views)
        self.test_set = TransformedDataset(test_base, self.test_tf)
        # the probe's bank: the training images without augmentation (uint8 cache, normalised per batch)
        finish = [
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize(list(self.info.mean), list(self.info.std)),
        ]
        bank_set = TransformedDataset(train_base, Pipeline(self.views.static, v2.Compose(finish)))
        r, w = self.dist.rank, self.dist.world_size
        self.train_sampler = EpochSampler(
            len(self.train_set), seed=cfg.seed, shuffle=True, rank=r, world_size=w
        )
        loader = dict(num_workers=d.num_workers, pin_memory=self.device.type == "cuda")
        self.train_loader = make_loader(
            self.train_set, self.train_sampler, batch_size=self.local_batch, **loader
        )

        def whole(ds: Any) -> Any:  # every process probes on all images: no collective, the same result
            sampler = EpochSampler(len(ds), seed=cfg.seed, shuffle=False, pad=False)
            return make_loader(ds, sampler, batch_size=d.eval_batch_size, **loader)

        self.test_loader, self.bank_loader = whole(self.test_set), whole(bank_set)
        self.mix = None
        self.loader_batch = self.local_batch  # samples per training batch of this rank's loader
        self.batches_per_epoch = -(-self.train_sampler.per_rank() // self.local_batch)
        self.steps_per_epoch = -(-self.batches_per_epoch // cfg.optim.accum_steps)

    def _build_optimizer(self, *, finetuning: bool) -> None:
        cfg = self.cfg
        groups = []
        for g in param_groups(self.model, cfg.optim):  # momentum encoders and the frozen classifier left out
            g["params"] = [p for p in g["params"] if p.requires_grad]
            if g["params"]:
                groups.append(g)
        self.optimizer = build_optimizer(groups, cfg.optim)
        self.schedule = LRSchedule(
            cfg.schedule, base_lr=cfg.optim.lr, epochs=cfg.epochs, steps_per_epoch=self.steps_per_epoch
        )
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=cfg.amp == "fp16")
        self.ema = None
        self.ddp: nn.Module | None = None
        self.trainable_blocks = -1

    # ------------------------------------------------------------------ training
    def _train_epochs(self) -> None:
        if self.init_probe is None:
            self.init_probe = {**self._probe(), "epoch": 0}
            self.log(
                f"k-NN probe of the untrained network: top-1 {self.init_probe['top1']:.2f}% "
                f"(k={self.cfg.ssl.knn_k}; the figure pre-training has to beat)"
            )
        super()._train_epochs()

    def _train_batch(
        self, model: nn.Module, views: list[torch.Tensor], labels: torch.Tensor, *, sync: bool
    ) -> dict:
        """Forward (the method's loss), backward; labels only count the images. Return the running loss and accuracy."""
        cfg = self.cfg
        views = [v.to(self.device, non_blocking=True) for v in views]
        if cfg.model.channels_last:
            views = [v.contiguous(memory_format=torch.channels_last) for v in views]
        step_seed = mix_seed(cfg.seed, self.dist.rank, self.global_batch)  # masking, dropout: resumable
        torch.random.default_generator.manual_seed(step_seed)
        if self.device.type == "cuda":
            torch.cuda.manual_seed(step_seed)
        no_sync = self.ddp is not None and not sync
        with self.ddp.no_sync() if no_sync else contextlib.nullcontext():
            with autocast(self.device, cfg.amp):
                loss, acc = model(views)
            value = loss.detach().float().reshape(1).clone()
            if self.dist.enabled:
                value = distributed.all_reduce_sum(value) / self.dist.world_size
            self._check_finite(value)
            self.scaler.scale(loss / cfg.optim.accum_steps).backward()
        n = len(labels)
        self.sums["loss"] += float(loss.detach()) * n
        self.sums["correct"] += float(acc) * n
        self.sums["seen"] += n
        self.batch_in_epoch += 1
        self.global_batch += 1
        return {"loss": float(value), "acc": 100.0 * self.sums["correct"] / max(1.0, self.sums["seen"])}

    def momentum_at(self, step: int) -> float:
        """Return the EMA momentum after optimizer step ``step``: constant (MoCo) or cosine to 1 (BYOL, DINO)."""
        m = self.cfg.ssl.momentum
        if self.model.momentum_schedule == "cosine":
            return cosine_schedule(step, self.cfg.epochs * self.steps_per_epoch, m, 1.0)
        return m

    def _optimizer_step(self) -> None:
        step = self.global_step
        super()._optimizer_step()
        self.model.momentum_update(self.momentum_at(step))

    # ------------------------------------------------------------------ evaluation
    def _probe(self) -> dict[str, Any]:
        """Return the weighted k-NN probe of the backbone: train split (no augmentation) as bank, held-out as queries."""
        net, k, c = self.model.backbone, self.cfg.ssl.knn_k, self.info.num_classes
        bank, bank_labels = extract_features(net, self.bank_loader, device=self.device)
        feats, labels = extract_features(net, self.test_loader, device=self.device)
        scores = knn_predict(bank, bank_labels, feats, num_classes=c, k=k)  # (M, C) summed vote weights
        share = scores / scores.sum(1, keepdim=True).clamp_min(1e-30)
        loss = -share.gather(1, labels[:, None]).clamp_min(1e-8).log().mean()
        confusion = torch.bincount(labels * c + scores.argmax(1), minlength=c * c).view(c, c)
        top1, per_class = accuracy_from_confusion(confusion)
        n = len(labels)
        top5 = 100.0 * topk_correct(scores, labels, 5) / n
        return {"loss": float(loss), "top1": top1, "top5": top5, "per_class": per_class, "confusion": confusion,
                "samples": n}  # fmt: skip

    def _evaluate(self, model: nn.Module) -> dict[str, Any]:
        """Return the k-NN probe when one is due (every ssl.probe_every epochs and the last), else the latest one."""
        done, every = self.epoch + 1, self.cfg.ssl.probe_every
        if done == self.cfg.epochs or (every and done % every == 0):
            self.last_probe = {**self._probe(), "epoch": done}
        probe = self.last_probe or self.init_probe
        return {**probe, "record": {"probe_epoch": probe["epoch"]}}

    # ------------------------------------------------------------------ reporting and state
    def _describe(self) -> None:
        lines: list[str] = []
        log, self.log = self.log, lines.append
        try:
            super()._describe()
        finally:
            self.log = log
        c, method = self.cfg, self.cfg.ssl.method
        lines[0] = lines[0].replace("cnnlineage train:", f"cnnlineage pretrain ({method}):", 1)
        for i, line in enumerate(lines):
            if line.startswith("  train tf"):
                lines[i] = f"  views     {describe_views(self.views)}"
            elif line.startswith("  test tf"):
                lines[i] = line.replace("  test tf ", "  probe tf", 1)
        heads = f"  ssl       {method}: {self.head_params:,} parameters in its heads, features {self.feature_dim}-d"
        where = next(i for i, line in enumerate(lines) if line.startswith("  device"))
        lines.insert(where, heads)
        lines.insert(
            where + 1,
            f"  metrics   train loss/top-1: {method}'s loss and pretext accuracy; test: weighted k-NN probe "
            f"(k={c.ssl.knn_k}) of the backbone's features, every {c.ssl.probe_every or c.epochs} epoch(s)",
        )
        for line in lines:
            log(line)

    def _finish(self) -> dict[str, Any]:
        summary = super()._finish()
        summary.update(
            method=self.cfg.ssl.method,
            init_probe_top1=self.init_probe["top1"] if self.init_probe else None,
            probe_k=self.cfg.ssl.knn_k,
        )
        if self.main and self.history:
            atomic_write_text(self.run_dir / "summary.json", json.dumps(summary, indent=2) + "\n")
        return summary

    def _meta(self) -> dict[str, Any]:
        return {
            **super()._meta(),
            "ssl": {
                "method": self.cfg.ssl.method,
                "feature_dim": self.feature_dim,
                "init_probe": self.init_probe,
                "last_probe": self.last_probe,
            },
        }

    def load_state(self, state: dict[str, Any], *, source: str | Path = "checkpoint") -> None:
        held = state.get("ssl")
        if not isinstance(held, dict):
            raise CheckpointError(
                f"{source} was written by `cnnlineage train`, not `cnnlineage pretrain`; resume it with "
                "`cnnlineage train --resume`"
            )
        if held.get("method") != self.cfg.ssl.method:
            raise CheckpointError(
                f"{source} holds {held.get('method')} pre-training, not {self.cfg.ssl.method}; resume with its method"
            )
        super().load_state(state, source=source)
        self.init_probe, self.last_probe = held.get("init_probe"), held.get("last_probe")


def pretrain(cfg: TrainConfig | dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """Return the summary of a pre-training run configured by ``cfg`` (a TrainConfig or a nested dict)."""
    if isinstance(cfg, dict):
        cfg = config_from_dict(cfg)
    return PretrainTrainer(cfg, **kwargs).fit()


def launch_pretrain(cfg: TrainConfig, nproc: int, *, resume: bool, overwrite: bool) -> int:
    """Run ``cfg`` in ``nproc`` torchrun processes on this machine (each gets the resolved config); return the exit status."""
    check_pretrain_config(cfg)
    fd, path = tempfile.mkstemp(prefix="cnnlineage-", suffix=".yaml")
    with os.fdopen(fd, "w") as f:
        yaml.safe_dump(config_to_dict(cfg), f, sort_keys=False)
    try:
        argv = (
            ["pretrain", "--config", path]
            + (["--resume", cfg.run.out_dir] if resume else [])
            + (["--overwrite"] if overwrite else [])
        )
        return distributed.launch(nproc, argv)
    finally:
        os.unlink(path)
