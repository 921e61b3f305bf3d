"""The training loop: epochs -> batches -> forward, loss, backward, step. One file, model-agnostic.

``Trainer(cfg).fit()`` builds the data, model and optimizer from a :class:`TrainConfig`,
trains, evaluates on the held-out split after every epoch and writes a run directory::

    config.yaml            the resolved configuration
    metrics.jsonl          one line per epoch (losses, top-1/top-5, per-class accuracy, lr, images/s)
    summary.json           final_top1, best_top1, epochs, wall_seconds, images_per_second, ...
    checkpoints/last.pt    everything needed to resume (every epoch, and every N steps if asked)
    checkpoints/best.pt    the weights with the best test top-1
    tb/                    TensorBoard events
    learning_curves.png, confusion_matrix.png

Exact resume: the data order of an epoch depends on (seed, epoch) only, each sample's
augmentation on (seed, epoch, index), mixup on (seed, epoch, batch) and the global RNG is
reseeded from (seed, rank, batch) before every forward pass (dropout, stochastic depth).
The learning rate is a function of the optimizer step. So a run resumed from a mid-epoch
checkpoint takes exactly the steps the uninterrupted run takes.

Hooks: ``on_train_start(trainer)``, ``on_step_end(trainer, stats)``,
``on_epoch_end(trainer, record)``, ``on_train_end(trainer, summary)``.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import math
import os
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
import yaml

from ..data import (
    EpochSampler,
    TransformedDataset,
    build_batch_mix,
    build_datasets,
    build_transforms,
    describe,
    make_loader,
)
from ..data.transforms import mix_seed, seeded
from ..models._resize import apply_structure
from ..registry import create_model, get_builder
from . import distributed
from .checkpoint import (
    FORMAT,
    CheckpointError,
    RunDirError,
    capture_rng,
    load_checkpoint,
    new_run_dir,
    prepare_run_dir,
    release_lock,
    restore_rng,
    save_checkpoint,
)
from .checks import (
    UPSCALE_WARNING,
    check_builder_kwargs,
    check_finetune_source,
    check_same_run,
    is_collective_failure,
    small_models,
)
from .config import ConfigError, TrainConfig, config_to_dict, validate
from .distill import distillation_loss, load_teacher
from .engine import autocast, classification_loss, evaluate, input_size_for, pick_device
from .finetune import head_parameter_names, load_pretrained, set_trainable
from .metrics import (
    Progress,
    TensorBoard,
    Timer,
    plot_confusion,
    plot_learning_curves,
)
from .optim import LRSchedule, ModelEma, build_optimizer, init_weights, param_groups
from .signals import StopRequest, TrainingInterrupted

__all__ = [
    "HOOKS",
    "NonFiniteLossError",
    "Trainer",
    "TrainingInterrupted",
    "classification_loss",
    "evaluate",
    "input_size_for",
    "pick_device",
]

HOOKS = ("on_train_start", "on_step_end", "on_epoch_end", "on_train_end")


class NonFiniteLossError(RuntimeError):
    """The loss became NaN or infinite; training stopped and the last good checkpoint was kept."""


class Trainer:
    """Train ``cfg.model.name`` on ``cfg.data.name`` as ``cfg`` says; ``fit()`` returns the summary dict."""

    handles_semi = False  # semi.* settings need the subclass in semi.py (run.train() picks it)
    chance_hint = True  # hint when epoch 1's loss is not below ln(classes) (a classification loss only)

    def __init__(
        self,
        cfg: TrainConfig,
        *,
        resume: bool = False,
        overwrite: bool = False,
        hooks: dict[str, list[Callable[..., Any]]] | None = None,
        log: Callable[[str], None] = print,
    ) -> None:
        self.cfg = cfg = validate(cfg)
        if (cfg.semi.method != "none" or cfg.semi.labels_per_class) and not self.handles_semi:
            raise ConfigError(
                "semi.method / semi.labels_per_class need cnnlineage.train.semi.SemiTrainer; "
                "cnnlineage.train.train(cfg) picks it"
            )
        unknown = set(hooks or {}) - set(HOOKS)
        if unknown:
            raise ValueError(f"unknown hooks {sorted(unknown)}; known: {', '.join(HOOKS)}")
        self.hooks = {name: list((hooks or {}).get(name, [])) for name in HOOKS}
        wants_cuda = cfg.device.startswith("cuda") or (cfg.device == "auto" and torch.cuda.is_available())
        self.dist = distributed.setup("cuda" if wants_cuda else "cpu", timeout=cfg.run.dist_timeout)
        self.main = self.dist.is_main
        self.log = log if self.main else (lambda *_: None)
        self.device = pick_device(cfg.device, self.dist.local_rank)
        if cfg.amp == "fp16" and self.device.type != "cuda":
            raise ConfigError("amp=fp16 needs CUDA; on the CPU use amp=bf16")
        if cfg.data.batch_size % self.dist.world_size:
            raise ConfigError(
                f"data.batch_size ({cfg.data.batch_size}) must divide by the number of processes "
                f"({self.dist.world_size})"
            )
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        self.local_batch = cfg.data.batch_size // self.dist.world_size

        # Everything that can be refused is checked before the run directory exists.
        pretrained = load_checkpoint(cfg.finetune.checkpoint) if cfg.finetune.checkpoint else None
        if pretrained is not None:
            check_finetune_source(pretrained, cfg)
        train_base, test_base = self._build_model(pretrained)
        self._build_data(train_base, test_base)
        self._check_sizes()
        self._build_optimizer(finetuning=pretrained is not None)
        self.teacher = None  # knowledge distillation: frozen, outside the optimizer and the checkpoint
        if cfg.distill.teacher:
            self.teacher = load_teacher(cfg.distill.teacher, student_meta=self._meta(), device=self.device)

        # Run directory: rank 0 creates (a fresh unique name by default), checks and locks it,
        # then tells the others the path or the reason it was refused, so every rank stops alike.
        outcome: tuple[str, str] = ("", "")
        if self.main:
            try:
                if cfg.run.out_dir:
                    path = prepare_run_dir(Path(cfg.run.out_dir), resume=resume, overwrite=overwrite)
                else:
                    path = prepare_run_dir(new_run_dir(f"runs/{cfg.model.name}-{cfg.data.name}"))
                outcome = (str(path), "")
            except ValueError as e:
                outcome = ("", str(e))
        path, refused = distributed.broadcast_object(outcome)
        if refused:
            raise RunDirError(refused)
        self.run_dir = Path(path)

        # Position in the run (restored on resume)
        self.epoch, self.batch_in_epoch, self.global_step, self.global_batch = 0, 0, 0, 0
        self.sums = self._new_sums()  # this epoch's training loss·n, correct, n
        self.grad_sums: dict[str, float] = {}
        self.grad_count = 0
        self.history: list[dict[str, Any]] = []
        self.best_top1 = -1.0
        self.wall = Timer()  # the whole run, across resumes
        self.epoch_time = Timer()  # training time of the current epoch (evaluation and checkpoints excluded)
        self.confusion: torch.Tensor | None = None
        self.stop = StopRequest()
        self.tb = None
        try:
            if resume:
                last = self.run_dir / "checkpoints" / "last.pt"
                self.load_state(load_checkpoint(last), source=last)
            if self.main:
                (self.run_dir / "config.yaml").write_text(
                    yaml.safe_dump(config_to_dict(cfg), sort_keys=False)
                )
                tmp = (
                    self.run_dir / ".metrics.jsonl.tmp"
                )  # on resume: exactly the epochs the checkpoint holds
                tmp.write_text("".join(json.dumps(h) + "\n" for h in self.history))
                os.replace(tmp, self.run_dir / "metrics.jsonl")
                if cfg.run.tensorboard:
                    self.tb = TensorBoard(self.run_dir / "tb", purge_step=self.epoch + 1 if resume else None)
        except BaseException:
            if self.main:
                release_lock(self.run_dir)
            raise

    def _build_model(self, pretrained: dict[str, Any] | None) -> tuple[Any, Any]:
        """Load the dataset, build the model for it (seeded) and return the raw (train, test) sets."""
        cfg, d = self.cfg, self.cfg.data
        train_base, test_base, self.info = build_datasets(
            d.name,
            root=d.root,
            download=d.download,
            skip_bad_images=d.skip_bad_images,
            max_image_pixels=d.max_image_pixels,
        )
        kwargs = dict(cfg.model.kwargs)
        check_builder_kwargs(cfg.model.name, kwargs)
        if cfg.model.drop_path_rate:
            if "drop_path_rate" not in inspect.signature(get_builder(cfg.model.name)).parameters:
                raise ConfigError(
                    f"{cfg.model.name} has no stochastic depth (its builder takes no drop_path_rate)"
                )
            kwargs["drop_path_rate"] = cfg.model.drop_path_rate
        # a pretrained stem keeps its channels; the data pipeline adapts to it
        in_chans = int(pretrained.get("in_chans", self.info.in_chans)) if pretrained else self.info.in_chans
        torch.manual_seed(cfg.seed)  # initialisation depends on the seed only
        self.model = create_model(
            cfg.model.name, num_classes=self.info.num_classes, in_chans=in_chans, **kwargs
        )
        apply_structure(self.model, cfg.model.pruned)  # a channel-pruned network (cnnlineage prune)
        init_weights(self.model, cfg.model.init)
        self.finetune_report = (
            load_pretrained(self.model, cfg.finetune.checkpoint, ckpt=pretrained) if pretrained else None
        )
        self.size = input_size_for(self.model, d.image_size)
        if cfg.model.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.model.to(self.device)
        self.num_params = sum(p.numel() for p in self.model.parameters())
        return train_base.subset(d.train_subset), test_base.subset(d.test_subset)

    def _build_data(self, train_base: Any, test_base: Any) -> None:
        """Build the train/test pipelines (resized to the model's input), samplers and loaders."""
        cfg, d = self.cfg, self.cfg.data
        resize = self.info.size != self.size
        kw = dict(size=self.size, in_chans=self.model.in_chans, resize=resize)
        self.train_tf = build_transforms(cfg.augment, self.info, train=True, **kw)
        self.test_tf = build_transforms(cfg.augment, self.info, train=False, **kw)
        self.train_set = TransformedDataset(train_base, self.train_tf)
        self.test_set = TransformedDataset(test_base, self.test_tf)
        r, w = self.dist.rank, self.dist.world_size
        self.train_sampler = EpochSampler(
            len(self.train_set), seed=cfg.seed, shuffle=True, rank=r, world_size=w
        )
        test_sampler = EpochSampler(
            len(self.test_set), seed=cfg.seed, shuffle=False, rank=r, world_size=w, pad=False
        )
        loader = dict(num_workers=d.num_workers, pin_memory=self.device.type == "cuda")
        self.train_loader = make_loader(
            self.train_set, self.train_sampler, batch_size=self.local_batch, **loader
        )
        self.test_loader = make_loader(self.test_set, test_sampler, batch_size=d.eval_batch_size, **loader)
        self.mix = build_batch_mix(cfg.augment, self.info.num_classes)
        self.loader_batch = self.local_batch  # samples per training batch of this rank's loader
        self.batches_per_epoch = math.ceil(self.train_sampler.per_rank() / self.local_batch)
        self.steps_per_epoch = math.ceil(self.batches_per_epoch / cfg.optim.accum_steps)

    def _build_optimizer(self, *, finetuning: bool) -> None:
        cfg = self.cfg
        head = head_parameter_names(self.model) if finetuning else None
        groups = param_groups(
            self.model, cfg.optim, head=head, backbone_lr_mult=cfg.finetune.backbone_lr_mult
        )
        self.optimizer = build_optimizer(groups, cfg.optim)
        self.schedule = LRSchedule(
            cfg.schedule, base_lr=cfg.optim.lr, epochs=cfg.epochs, steps_per_epoch=self.steps_per_epoch
        )
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=cfg.amp == "fp16")
        self.ema = ModelEma(self.model, cfg.ema_decay) if cfg.ema_decay else None
        self.ddp: nn.Module | None = None
        self.trainable_blocks = -1

    # ------------------------------------------------------------------ the loop
    def fit(self) -> dict[str, Any]:
        """Train for the remaining epochs; return the summary (also written to summary.json).

        SIGINT, SIGTERM and SIGHUP stop the run after the current optimizer step with a
        checkpoint (TrainingInterrupted); finishing (plots, summary.json) is not interrupted.
        """
        with self.stop.installed():
            self.wall.start()
            try:
                self._describe()
                self._call("on_train_start", self)
                self._train_epochs()
            except BaseException as e:
                if self.main:
                    release_lock(
                        self.run_dir
                    )  # a crash frees the directory; the checkpoint stays for --resume
                if self.dist.enabled and is_collective_failure(e):
                    raise distributed.stalled_ranks_error(
                        e, timeout=self.cfg.run.dist_timeout, run_dir=self.run_dir
                    ) from None
                raise
            finally:
                self.wall.stop()
                if self.tb is not None:
                    self.tb.close()
            summary = self._finish()
        self._call("on_train_end", self, summary)
        return summary

    def _train_epochs(self) -> None:
        cfg = self.cfg
        for epoch in range(self.epoch, cfg.epochs):
            self.epoch = epoch
            self._maybe_stop(save=not (self.run_dir / "checkpoints" / "last.pt").is_file())
            model = self._prepare_epoch(epoch)
            self.train_sampler.set_epoch(epoch, start=self.batch_in_epoch * self.loader_batch)
            progress = Progress(
                cfg.run.progress, total=self.batches_per_epoch, initial=self.batch_in_epoch,
                desc=f"epoch {epoch + 1}/{cfg.epochs}", every=cfg.run.log_every_steps, enabled=self.main,
            )  # fmt: skip
            self.epoch_time.start()
            for images, labels in self.train_loader:
                last_of_step = (self.batch_in_epoch + 1) % cfg.optim.accum_steps == 0
                last_of_step = last_of_step or self.batch_in_epoch + 1 == self.batches_per_epoch
                stats = self._train_batch(model, images, labels, sync=last_of_step)
                if last_of_step:
                    self._optimizer_step()
                    if self.batch_in_epoch < self.batches_per_epoch:  # (the epoch's end checkpoints anyway)
                        every = cfg.run.checkpoint_every_steps
                        due = bool(every) and self.global_step % every == 0
                        if due:
                            self.epoch_time.stop()
                            self.save()
                            self.epoch_time.start()
                        self._maybe_stop(save=not due)
                stats["ips"] = self.sums["seen"] * self.dist.world_size / max(1e-9, self.epoch_time.peek())
                progress.update(stats)
                self._call("on_step_end", self, stats)
            self.epoch_time.stop()
            progress.close()
            self._end_epoch(epoch)  # a stop asked during the last epoch's evaluation: just finish

    def _maybe_stop(self, *, save: bool) -> None:
        """If a stop signal arrived (on any rank), checkpoint (if ``save``) and raise TrainingInterrupted."""
        asked = self.stop.signum or 0
        if self.dist.enabled:  # every rank must stop after the same step
            anyone = distributed.all_reduce_sum(torch.tensor([float(asked > 0)], device=self.device))
            if anyone.item() and not asked:
                asked = int(signal.SIGTERM)  # another rank was asked: stop with it
        if not asked:
            return
        if save:
            self.save()
        where = f"epoch {self.epoch + 1}, step {self.global_step}"
        last = self.run_dir / "checkpoints" / "last.pt"
        saved = (
            f"the checkpoint {last} holds everything up to {where}; continue with "
            f"`cnnlineage train --resume {self.run_dir}`"
            if last.is_file()
            else "no checkpoint was written yet, so there is nothing to resume"
        )
        raise TrainingInterrupted(f"stopped by {StopRequest.name(asked)} at {where}: {saved}", asked)

    def _train_batch(
        self, model: nn.Module, images: torch.Tensor, labels: torch.Tensor, *, sync: bool
    ) -> dict:
        """Forward, loss and backward of one batch (no optimizer step); return the running loss and accuracy."""
        cfg = self.cfg
        targets = labels
        if self.mix is not None:  # soft targets (B, classes); seeded by the batch's place in the run
            with seeded(mix_seed(cfg.seed, self.epoch, self.batch_in_epoch, self.dist.rank, 0x313)):
                images, targets = self.mix(images, labels)
        images = images.to(self.device, non_blocking=True)
        if cfg.model.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        targets = targets.to(self.device, non_blocking=True)
        # dropout and drop path draw from a stream that depends only on the batch's place: resumable
        step_seed = mix_seed(cfg.seed, self.dist.rank, self.global_batch)
        torch.random.default_generator.manual_seed(step_seed)  # (torch.manual_seed costs ~0.1 ms more)
        if self.device.type == "cuda":
            torch.cuda.manual_seed(step_seed)
        no_sync = self.ddp is not None and not sync  # accumulating: all-reduce only on the last micro-batch
        with self.ddp.no_sync() if no_sync else contextlib.nullcontext():
            with autocast(self.device, cfg.amp):
                out = model(images)
                loss = self._loss(out, targets, images)
            value = self._mean_loss(loss)
            self.scaler.scale(loss / cfg.optim.accum_steps).backward()
        logits = out[0] if isinstance(out, (tuple, list)) else out
        hard = targets if targets.dim() == 1 else targets.argmax(1)
        self.sums["loss"] += float(loss.detach()) * len(labels)
        self.sums["correct"] += float((logits.detach().argmax(1) == hard).sum())
        self.sums["seen"] += len(labels)
        self.batch_in_epoch += 1
        self.global_batch += 1
        return {"loss": float(value), "acc": 100.0 * self.sums["correct"] / max(1.0, self.sums["seen"])}

    def _new_sums(self) -> dict[str, float]:
        """Return the zeroed running sums of an epoch (subclasses add their own)."""
        return {"loss": 0.0, "correct": 0.0, "seen": 0.0}

    def _epoch_extras(self) -> dict[str, Any]:
        """Return further entries for this epoch's record (called on every rank before the sums reset)."""
        return {}

    def _epoch_note(self, record: dict[str, Any]) -> str:
        """Return text appended to the epoch's log line."""
        return ""

    def _mean_loss(self, loss: torch.Tensor) -> torch.Tensor:
        """Return the loss averaged over ranks (a copy); NonFiniteLossError if it is NaN or infinite."""
        value = loss.detach().float().reshape(1).clone()  # a copy: the all-reduce sums it in place
        if self.dist.enabled:  # every rank sees the same (mean) loss, so all stop together
            value = distributed.all_reduce_sum(value) / self.dist.world_size
        self._check_finite(value)
        return value

    def _check_finite(self, value: torch.Tensor) -> None:
        """Raise NonFiniteLossError (naming the checkpoint to resume from) if the batch loss ``value`` is NaN or infinite."""
        if math.isfinite(float(value)):
            return
        last = self.run_dir / "checkpoints" / "last.pt"
        kept = (
            f"The last good checkpoint is kept: {last} (continue with --resume {self.run_dir})"
            if last.is_file()
            else "No checkpoint was written yet (the first checkpoint comes at the end of epoch 1 "
            "or after run.checkpoint_every_steps steps)"
        )
        raise NonFiniteLossError(
            f"loss is {float(value)} at epoch {self.epoch + 1}, batch {self.batch_in_epoch + 1} "
            f"(step {self.global_step}); stopped. {kept}. "
            "Try a lower optim.lr, optim.clip_grad_norm, or amp=none."
        )

    def _loss(
        self, out: torch.Tensor | tuple[torch.Tensor, ...], targets: torch.Tensor, images: torch.Tensor
    ) -> torch.Tensor:
        weight = getattr(self.model, "aux_loss_weight", 0.3)
        loss = classification_loss(out, targets, aux_weight=weight, label_smoothing=self.cfg.label_smoothing)
        if self.teacher is not None:
            with torch.no_grad():
                soft = self.teacher(images)
            d = self.cfg.distill
            logits = out[0] if isinstance(out, (tuple, list)) else out
            loss = distillation_loss(logits, soft, loss, temperature=d.temperature, alpha=d.alpha)
        return loss

    def _optimizer_step(self) -> None:
        cfg = self.cfg
        self.schedule.apply(self.optimizer, self.global_step)
        self.scaler.unscale_(self.optimizer)
        if cfg.run.grad_norms:
            self._record_grad_norms()
        if cfg.optim.clip_grad_norm:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.optim.clip_grad_norm)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        if self.ema is not None:
            self.ema.update(self.model)
        self.global_step += 1

    def _record_grad_norms(self) -> None:
        per_layer: dict[str, list[torch.Tensor]] = {}
        for name, p in self.model.named_parameters():
            if p.grad is not None:
                per_layer.setdefault(name.rsplit(".", 1)[0], []).append(p.grad.detach().float().pow(2).sum())
        for layer, squares in per_layer.items():
            self.grad_sums[layer] = self.grad_sums.get(layer, 0.0) + float(torch.stack(squares).sum().sqrt())
        self.grad_count += 1

    def _prepare_epoch(self, epoch: int) -> nn.Module:
        """Apply this epoch's fine-tuning freezing; return the module to call (DDP-wrapped under torchrun)."""
        f = self.cfg.finetune
        changed = False
        if f.checkpoint:
            n = set_trainable(self.model, f.mode, epoch=epoch, unfreeze_every=f.unfreeze_every)
            changed, self.trainable_blocks = n != self.trainable_blocks, n
        if self.dist.enabled and (
            self.ddp is None or changed
        ):  # DDP is rebuilt when the trainable set changes
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.ddp = nn.parallel.DistributedDataParallel(self.model, device_ids=ids)
        self.model.train()
        return self.ddp if self.ddp is not None else self.model

    def _evaluate(self, model: nn.Module) -> dict[str, Any]:
        c = self.cfg
        return evaluate(
            model, self.test_loader, device=self.device, num_classes=self.info.num_classes,
            amp=c.amp, channels_last=c.model.channels_last,
        )  # fmt: skip

    def _end_epoch(self, epoch: int) -> None:
        """Evaluate, record the epoch (metrics.jsonl, TensorBoard, log line) and checkpoint."""
        cfg = self.cfg
        sums = torch.tensor([self.sums["loss"], self.sums["correct"], self.sums["seen"]], dtype=torch.float64)
        distributed.all_reduce_sum(sums)
        seconds = self.epoch_time.elapsed
        test = self._evaluate(self.model)
        self.schedule.end_epoch(test["loss"])
        record: dict[str, Any] = {
            "epoch": epoch + 1,
            "step": self.global_step,
            "lr": self.optimizer.param_groups[0]["lr"],
            "train_loss": float(sums[0] / sums[2]),
            "train_top1": 100.0 * float(sums[1] / sums[2]),
            "test_loss": test["loss"],
            "test_top1": test["top1"],
            "test_top5": test["top5"],
            "test_per_class": test["per_class"],
            "epoch_seconds": seconds,
            "images_per_second": float(sums[2]) / max(1e-9, seconds),
            **test.get("record", {}),  # further figures an evaluation reports (a subclass's)
        }
        record.update(self._epoch_extras())
        if self.ema is not None:
            ema = self._evaluate(self.ema.module)
            record.update(ema_loss=ema["loss"], ema_top1=ema["top1"])
        if cfg.run.grad_norms and self.grad_count:
            record["grad_norms"] = {k: v / self.grad_count for k, v in self.grad_sums.items()}
        self.history.append(record)
        self.confusion = test["confusion"]
        improved = test["top1"] > self.best_top1
        self.best_top1 = max(self.best_top1, test["top1"])
        self.epoch, self.batch_in_epoch = epoch + 1, 0
        self.sums = self._new_sums()
        self.grad_sums, self.grad_count, self.epoch_time = {}, 0, Timer()
        if improved and self.main:  # best.pt before last.pt: a kill between them is repaired by resuming,
            # which replays this epoch exactly and rewrites best.pt (last.pt first would leave it stale)
            best = {**self._meta(), "model": self.model.state_dict(), "metrics": record}
            save_checkpoint(best, self.run_dir / "checkpoints" / "best.pt")
        self.save()
        if not self.main:
            self._call("on_epoch_end", self, record)
            return
        with open(self.run_dir / "metrics.jsonl", "a") as fh:
            fh.write(json.dumps(record) + "\n")
        if self.tb is not None:
            scalars = {f"train/{k[6:]}": v for k, v in record.items() if k.startswith("train_")}
            scalars.update({f"test/{k[5:]}": v for k, v in record.items() if k.startswith("test_")})
            scalars.update({"lr": record["lr"], "images_per_second": record["images_per_second"]})
            scalars.update({f"grad_norm/{k}": v for k, v in record.get("grad_norms", {}).items()})
            self.tb.scalars(scalars, epoch + 1)
        ema_txt = f"  ema {record['ema_top1']:.2f}%" if "ema_top1" in record else ""
        self.log(
            f"epoch {epoch + 1}/{cfg.epochs}  train loss {record['train_loss']:.4f} top-1 {record['train_top1']:.2f}%  "
            f"test loss {record['test_loss']:.4f} top-1 {record['test_top1']:.2f}% "
            f"top-5 {record['test_top5']:.2f}%{ema_txt}{self._epoch_note(record)}  lr {record['lr']:.3g}  "
            f"{record['images_per_second']:,.0f} img/s  {seconds:.1f}s"
        )
        chance = math.log(self.info.num_classes)
        warmed_up = (
            max(self.schedule.factor(k) for k in range(self.steps_per_epoch)) >= 0.5
        )  # else: too early
        if self.chance_hint and epoch == 0 and record["train_loss"] >= chance and warmed_up:
            self.log(
                f"hint: after epoch 1 the training loss ({record['train_loss']:.3f}) is not below chance level "
                f"(ln {self.info.num_classes} = {chance:.3f}): the model is not learning yet. The learning rate "
                f"(optim.lr={cfg.optim.lr:g}) may not suit {cfg.model.name} on {cfg.data.name}; try a recipe made "
                "for this data set (--config), a lower --lr, or warm-up (--set schedule.warmup_epochs=1)"
            )
        self._call("on_epoch_end", self, record)

    def _finish(self) -> dict[str, Any]:
        """Write summary.json and the plots, free the run directory; return the summary."""
        h = self.history
        last = h[-1] if h else {}
        train_seconds = sum(r["epoch_seconds"] for r in h)
        images = sum(r["images_per_second"] * r["epoch_seconds"] for r in h)
        best = max(h, key=lambda r: r["test_top1"]) if h else {}
        summary = {
            "model": self.cfg.model.name,
            "dataset": self.cfg.data.name,
            "params": self.num_params,
            "input_size": [self.model.in_chans, *self.size],
            "device": str(self.device),
            "world_size": self.dist.world_size,
            "seed": self.cfg.seed,
            "epochs": len(h),
            "final_top1": last.get("test_top1"),
            "final_top5": last.get("test_top5"),
            "final_test_loss": last.get("test_loss"),
            "best_top1": best.get("test_top1"),
            "best_epoch": best.get("epoch"),
            "wall_seconds": self.wall.elapsed,
            "train_seconds": train_seconds,
            "images_per_second": images / max(1e-9, train_seconds),
            "run_dir": str(self.run_dir),
        }
        if "ema_top1" in last:
            summary["final_ema_top1"] = last["ema_top1"]
        if not self.main:
            return summary
        if self.cfg.run.plots and h:
            title = f"{self.cfg.model.name} on {self.cfg.data.name}"
            plot_learning_curves(h, self.run_dir / "learning_curves.png", title=title)
            if self.confusion is not None:
                path = self.run_dir / "confusion_matrix.png"
                plot_confusion(self.confusion, self.info.classes, path, title=f"{title}: test")
        (self.run_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
        release_lock(self.run_dir)
        if h:
            self.log(
                f"done: held-out top-1 {summary['final_top1']:.2f}% (best {summary['best_top1']:.2f}% "
                f"at epoch {summary['best_epoch']}), {summary['wall_seconds']:.1f}s, "
                f"{summary['images_per_second']:,.0f} img/s -> {self.run_dir}"
            )
        return summary

    # ------------------------------------------------------------------ state
    def _meta(self) -> dict[str, Any]:
        """Return what eval/predict need to rebuild and feed the model."""
        return {
            "format": FORMAT,
            "config": config_to_dict(self.cfg),
            "model_name": self.cfg.model.name,
            "num_classes": self.info.num_classes,
            "in_chans": self.model.in_chans,
            "input_size": [self.model.in_chans, *self.size],
            "classes": list(self.info.classes),
            "mean": list(self.info.mean),
            "std": list(self.info.std),
        }

    def state_dict(self) -> dict[str, Any]:
        """Return everything needed to continue this run exactly where it is."""
        return {
            **self._meta(),
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "schedule": self.schedule.state_dict(),
            "scaler": self.scaler.state_dict(),
            "ema": self.ema.state_dict() if self.ema is not None else None,
            "rng": capture_rng(),
            "position": {
                "epoch": self.epoch,
                "batch_in_epoch": self.batch_in_epoch,
                "global_step": self.global_step,
                "global_batch": self.global_batch,
            },
            "progress": {
                "sums": dict(self.sums),
                "grad_sums": dict(self.grad_sums),
                "grad_count": self.grad_count,
                "epoch_seconds": self.epoch_time.peek(),
            },
            "history": self.history,
            "best_top1": self.best_top1,
            "wall_seconds": self.wall.peek(),
        }

    def load_state(self, state: dict[str, Any], *, source: str | Path = "checkpoint") -> None:
        """Restore a :meth:`state_dict` (the resume path); CheckpointError if it belongs to another model or data set."""
        if "position" not in state or "model" not in state:
            raise CheckpointError(
                f"{source} is not a resumable checkpoint (no training position); use --finetune"
            )
        check_same_run(state, self._meta(), source=source)
        pos, progress = state["position"], state["progress"]
        try:
            self.model.load_state_dict(state["model"])
        except RuntimeError as e:
            raise CheckpointError(
                f"{source} holds weights of another shape than {self.cfg.model.name} with these settings "
                f"({str(e).splitlines()[0]}); resume with the settings it was trained with"
            ) from None
        if self.cfg.finetune.checkpoint:  # frozen groups must match before the optimizer state goes in
            f = self.cfg.finetune
            set_trainable(self.model, f.mode, epoch=pos["epoch"], unfreeze_every=f.unfreeze_every)
        self.optimizer.load_state_dict(state["optimizer"])
        self.schedule.load_state_dict(state["schedule"])
        self.scaler.load_state_dict(state["scaler"])
        if self.ema is not None and state.get("ema") is not None:
            self.ema.load_state_dict(state["ema"])
        restore_rng(state["rng"])
        self.epoch, self.batch_in_epoch = pos["epoch"], pos["batch_in_epoch"]
        self.global_step, self.global_batch = pos["global_step"], pos["global_batch"]
        self.sums, self.grad_sums = dict(progress["sums"]), dict(progress["grad_sums"])
        self.grad_count = progress["grad_count"]
        self.epoch_time = Timer(progress["epoch_seconds"])
        self.history = list(state["history"])
        self.best_top1 = state["best_top1"]
        self.wall = Timer(state["wall_seconds"])

    def save(self) -> None:
        """Write checkpoints/last.pt atomically (rank 0); every rank waits for it."""
        if self.main:
            save_checkpoint(self.state_dict(), self.run_dir / "checkpoints" / "last.pt")
        distributed.barrier()

    def _call(self, name: str, *args: Any) -> None:
        for fn in self.hooks[name]:
            fn(*args)

    def _check_sizes(self) -> None:
        """Refuse empty splits and batch or accumulation sizes the data cannot fill (ConfigError)."""
        c, n = self.cfg, len(self.train_set)
        for split, size in (("training", n), ("held-out", len(self.test_set))):
            if size == 0:
                raise ConfigError(f"{c.data.name}: the {split} split has no images; a run needs both splits")
        if c.data.batch_size > n:
            raise ConfigError(
                f"data.batch_size ({c.data.batch_size:,}) is larger than the training set ({n:,} images); "
                f"use at most {n:,}"
            )
        if c.optim.accum_steps > self.batches_per_epoch:
            raise ConfigError(
                f"optim.accum_steps ({c.optim.accum_steps:,}) exceeds the {self.batches_per_epoch:,} batches of "
                f"an epoch ({n:,} images / batch {c.data.batch_size}): at most {self.batches_per_epoch:,}"
            )

    def _describe(self) -> None:
        """Log what will run: model, data, input size and transforms, device, schedule, non-default settings."""
        c, d, info = self.cfg, self.cfg.data, self.info
        changed = " ".join(
            f"{k}={v}"
            for k, v in _changed(config_to_dict(c), config_to_dict(TrainConfig()))
            if k != "run.recipe"
        )
        stored = f"{info.in_chans}x{info.size[0]}x{info.size[1]}" if info.size[0] else "of varying size"
        where = (
            f" (resuming at epoch {self.epoch + 1}, batch {self.batch_in_epoch})" if self.global_batch else ""
        )
        lines = [
            f"cnnlineage train: {c.model.name} ({self.num_params:,} parameters) on {d.name} ({info.description})",
            f"  data      {len(self.train_set):,} train / {len(self.test_set):,} test images, "
            f"{info.num_classes} classes, stored {stored}",
            f"  input     {self.model.in_chans}x{self.size[0]}x{self.size[1]} (the model's input; "
            f"{'resized' if info.size != self.size else 'no resize'})",
            f"  train tf  {describe(self.train_tf)}{' + batch mixup/cutmix' if self.mix else ''}",
            f"  test tf   {describe(self.test_tf)}",
            f"  device    {self.device} x{self.dist.world_size}, {torch.get_num_threads()} threads, amp {c.amp}, "
            f"global batch {d.batch_size}",
            f"  schedule  {c.epochs} epochs x {self.steps_per_epoch} steps, {c.optim.name} lr {c.optim.lr:g}, "
            f"{c.schedule.name}",
            f"  settings  {changed or '(defaults)'}",
            f"  run dir   {self.run_dir}{where}",
        ]
        if self.finetune_report:
            r = self.finetune_report
            how = f" (pre-trained with {r['pretraining']})" if r.get("pretraining") else ""
            lines.append(
                f"  finetune  {c.finetune.checkpoint}{how}: {r['loaded']} tensors loaded, "
                f"new head {r['new_head_keys']}"
            )
        if c.run.recipe:
            lines.insert(1, f"  recipe    {c.run.recipe}")
        factor = max(self.size[0] / info.size[0], self.size[1] / info.size[1]) if info.size[0] else 1.0
        if factor >= UPSCALE_WARNING:
            lines.append(
                f"warning: {d.name} images are {info.size[0]}x{info.size[1]} and {c.model.name} takes "
                f"{self.size[0]}x{self.size[1]}: every image is upscaled {factor:.0f}x, which costs time and memory "
                f"and adds no detail. A model made for small inputs fits better: {', '.join(small_models(info.size))}"
            )
        for line in lines:
            self.log(line)


def _changed(values: dict[str, Any], defaults: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    out = []
    for k, v in values.items():
        if k == "pruned" and v:  # a channel-pruned network: its structure is long, say how much changed
            out.append((f"{prefix}{k}", f"<{len(v.get('tensors', {}))} resized tensors>"))
        elif isinstance(v, dict) and k not in ("kwargs", "pruned"):
            out += _changed(v, defaults.get(k, {}), f"{prefix}{k}.")
        elif v != defaults.get(k):
            out.append((f"{prefix}{k}", v))
    return out
