"""Quantization-aware training (QAT): fine-tune a trained checkpoint with int8 rounding in the forward pass.

torchao's PT2E does the heavy lifting. ``torch.export`` captures the network;
``prepare_qat_pt2e`` with ``X86InductorQuantizer`` and its QAT configuration
(``get_default_x86_inductor_quantization_config(is_qat=True)``) puts a fake-quantize module
(moving-average min/max observer + quantize/dequantize in float) wherever the PTQ path would
put an observer, and rewrites each convolution + BatchNorm into the QAT pattern that folds
BatchNorm into the weights before they are fake-quantized (Jacob et al. 2018, §3.2). Training
then sees the int8 rounding of weights and activations; gradients pass through the rounding
by the straight-through estimator (Bengio et al. 2013). ``convert_pt2e`` folds BatchNorm and
writes the same kind of int8 program as PTQ (quantize/dequantize pairs around conv/linear),
which inductor fuses into oneDNN int8 kernels.

The fine-tuning recipe is the run's own (optimizer, batch size, augmentation, mixup/cutmix,
label smoothing, gradient clipping, seed) with these QAT changes:

- learning rate: the recipe's peak lr × ``lr_mult`` (0.01), annealed by a half cosine down
  to 1% of that, no warm-up — NVIDIA's pytorch-quantization guidance ("starting at 1% of the
  initial training learning rate, and a cosine annealing learning rate schedule ... down to 1%
  of the initial fine tuning learning rate"): a small step keeps the straight-through
  estimator's error from undoing the trained network;
- BatchNorm running statistics are frozen after 30% of the steps and the quantization ranges
  (observers) after 40%, the ratios of torchvision's QAT reference and torchao's PT2E QAT
  tutorial (3 and 4 of 10 epochs): the last steps train against the fixed int8 grid that
  inference will use.

Gradient accumulation, the weight EMA and mixed precision of a recipe are not used; QAT
runs on the CPU, where the int8 program will run.

The exported graph's train/eval switch is torchao's ``move_exported_model_to_train`` /
``move_exported_model_to_eval`` (``model.train()`` does not reach the ops of an exported
graph). The last step's weights are kept: the held-out split is not used to pick an epoch.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import time
from collections.abc import Callable
from typing import Any

import torch
import torch.nn as nn

from ..data import EpochSampler, build_batch_mix, make_loader
from ..data.transforms import mix_seed, seeded
from ..train.config import ScheduleConfig
from ..train.engine import classification_loss
from ..train.metrics import Progress
from ..train.optim import LRSchedule, build_optimizer, param_groups
from ._data import CheckpointData
from .pt2e import _drop_unused, export_model, float_layers_pt2e, float_ops

__all__ = [
    "FREEZE_BN_AT",
    "FREEZE_OBSERVERS_AT",
    "LR_MULT",
    "evaluate_graph",
    "freeze_batchnorm_stats",
    "quantize_qat",
]

LR_MULT = 0.01  # QAT lr = recipe lr x 0.01 (NVIDIA pytorch-quantization guidance)
FREEZE_BN_AT = 0.3  # fraction of the steps after which BatchNorm statistics stop updating
FREEZE_OBSERVERS_AT = 0.4  # ... after which the quantization ranges stop moving
_BN_OPS = (
    "aten.batch_norm.default",
    "aten._native_batch_norm_legit.default",
    "aten.cudnn_batch_norm.default",
)


def freeze_batchnorm_stats(gm: torch.fx.GraphModule) -> int:
    """Make every training-mode BatchNorm of an exported graph use (and stop updating) its running statistics.

    Returns how many BatchNorm nodes were switched. Their ``training`` argument (the sixth)
    becomes False: the batch's own mean and variance are no longer used, as at inference —
    the torchao PT2E QAT tutorial's way of freezing BN statistics in an exported graph.
    """
    n = 0
    for node in gm.graph.nodes:
        if node.op == "call_function" and str(node.target) in _BN_OPS and node.args[5] is True:
            args = list(node.args)
            args[5] = False
            node.args = tuple(args)
            n += 1
    if n:
        gm.recompile()
    return n


def _steps_per_epoch(n_images: int, batch: int) -> int:
    return max(1, math.ceil(n_images / batch))


def quantize_qat(
    data: CheckpointData,
    *,
    epochs: int,
    lr_mult: float = LR_MULT,
    freeze_bn_at: float = FREEZE_BN_AT,
    freeze_observers_at: float = FREEZE_OBSERVERS_AT,
    progress: str = "auto",
    log: Callable[[str], None] = lambda s: None,
) -> tuple[torch.fx.GraphModule, dict[str, Any]]:
    """Return (the int8 program after ``epochs`` of QAT on the run's own training data, a record of the run).

    The checkpoint's model in ``data`` is not changed (QAT works on a copy).
    """
    from torchao.quantization import pt2e
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_qat_pt2e
    from torchao.quantization.pt2e.quantizer import x86_inductor_quantizer as xiq

    if epochs < 1:
        raise ValueError(f"--qat-epochs must be at least 1; got {epochs}")
    if not 0 < lr_mult <= 1:
        raise ValueError(f"the QAT learning-rate multiplier must be in (0, 1]; got {lr_mult}")
    cfg = data.cfg
    if cfg is None:
        raise ValueError(f"{data.path}: the run's recipe is needed for QAT; use load_checkpoint_data")
    train_set = data.training_set()
    if len(train_set) == 0:
        raise ValueError(f"{data.path}'s training split has no images: nothing to fine-tune on")

    torch.manual_seed(cfg.seed)
    model = copy.deepcopy(data.model).eval()  # the checkpoint's model stays as it was
    gm = export_model(model, data.example(2))
    quantizer = xiq.X86InductorQuantizer()
    quantizer.set_global(xiq.get_default_x86_inductor_quantization_config(is_qat=True))
    prepared = prepare_qat_pt2e(gm, quantizer)
    pt2e.move_exported_model_to_train(prepared)

    batch = min(cfg.data.batch_size, len(train_set))
    sampler = EpochSampler(len(train_set), seed=cfg.seed, shuffle=True)
    loader = make_loader(train_set, sampler, batch_size=batch)
    spe = _steps_per_epoch(sampler.per_rank(), batch)
    total = epochs * spe
    lr = cfg.optim.lr * lr_mult
    optim_cfg = dataclasses.replace(cfg.optim, lr=lr)
    optimizer = build_optimizer(param_groups(prepared, optim_cfg), optim_cfg)
    schedule = LRSchedule(
        ScheduleConfig(name="cosine", warmup_epochs=0.0, min_lr=lr * 0.01),
        base_lr=lr, epochs=epochs, steps_per_epoch=spe,
    )  # fmt: skip
    mix = build_batch_mix(cfg.augment, data.num_classes)
    bn_step, obs_step = round(freeze_bn_at * total), round(freeze_observers_at * total)
    record: dict[str, Any] = {
        "epochs": epochs,
        "steps": total,
        "batch_size": batch,
        "training_images": len(train_set),
        "optimizer": cfg.optim.name,
        "lr": lr,
        "lr_mult": lr_mult,
        "schedule": "cosine to 1% of lr, no warm-up",
        "freeze_bn_step": bn_step,
        "freeze_observers_step": obs_step,
        "seed": cfg.seed,
        "history": [],
    }
    step = 0
    bn_frozen = 0
    t0 = time.perf_counter()
    for epoch in range(epochs):
        sampler.set_epoch(epoch)
        bar = Progress(progress, total=spe, initial=0, desc=f"QAT epoch {epoch + 1}/{epochs}",
                       every=cfg.run.log_every_steps)  # fmt: skip
        sums = {"loss": 0.0, "correct": 0.0, "seen": 0.0}
        start = time.perf_counter()
        for i, (images, labels) in enumerate(loader):
            if step == bn_step:
                bn_frozen = freeze_batchnorm_stats(prepared)
            if step == obs_step:
                prepared.apply(pt2e.disable_observer)
            targets = labels
            if mix is not None:  # soft targets, seeded by the batch's place, as the trainer does
                with seeded(mix_seed(cfg.seed, epoch, i, 0, 0x313)):
                    images, targets = mix(images, labels)
            torch.random.default_generator.manual_seed(mix_seed(cfg.seed, 0x0A7, step))  # dropout
            schedule.apply(optimizer, step)
            out = prepared(images)
            loss = classification_loss(out, targets, label_smoothing=cfg.label_smoothing)
            if not math.isfinite(float(loss.detach())):
                raise ValueError(
                    f"QAT loss is {float(loss.detach())} at epoch {epoch + 1}, step {step}; lower the learning rate"
                )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.optim.clip_grad_norm:
                torch.nn.utils.clip_grad_norm_(prepared.parameters(), cfg.optim.clip_grad_norm)
            optimizer.step()
            step += 1
            logits = out[0] if isinstance(out, (tuple, list)) else out
            hard = targets if targets.dim() == 1 else targets.argmax(1)
            sums["loss"] += float(loss.detach()) * len(labels)
            sums["correct"] += float((logits.detach().argmax(1) == hard).sum())
            sums["seen"] += len(labels)
            seen = max(1.0, sums["seen"])
            bar.update({"loss": float(loss.detach()), "acc": 100.0 * sums["correct"] / seen,
                        "ips": sums["seen"] / max(1e-9, time.perf_counter() - start)})  # fmt: skip
        bar.close()
        rec = {"epoch": epoch + 1, "train_loss": sums["loss"] / max(1.0, sums["seen"]),
               "train_top1": 100.0 * sums["correct"] / max(1.0, sums["seen"]),
               "lr": optimizer.param_groups[0]["lr"]}  # fmt: skip
        record["history"].append(rec)
        log(f"QAT epoch {epoch + 1}/{epochs}  train loss {rec['train_loss']:.4f} "
            f"top-1 {rec['train_top1']:.2f}% (int8 forward)  lr {rec['lr']:.3g}")  # fmt: skip
    record["seconds"] = time.perf_counter() - t0
    record["batchnorm_frozen"] = bn_frozen
    pt2e.move_exported_model_to_eval(prepared)
    converted = convert_pt2e(prepared)
    _drop_unused(converted)
    info = {
        "weight_bytes": sum(t.numel() * t.element_size() for t in converted.state_dict().values()),
        "fp32_weight_bytes": sum(t.numel() * t.element_size() for t in data.model.state_dict().values()),
        "float_layers": float_layers_pt2e(converted),
        "float_ops": float_ops(converted),
        "qat": record,
    }
    return converted, info


def evaluate_graph(data: CheckpointData, gm: torch.fx.GraphModule | nn.Module) -> dict[str, Any]:
    """Return the held-out evaluation of an exported/converted graph run as it is (no inductor)."""
    return data.evaluate(lambda x: gm(x))
