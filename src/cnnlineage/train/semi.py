"""Semi-supervised training with a few labels per class: FixMatch, Pseudo-Label, Mean Teacher.

A seeded, class-balanced subset of ``semi.labels_per_class`` images per class of the training
split keeps its labels; the rest of the split is the unlabelled set (its labels are replaced
by -1 before loading, so no loss can see them). The held-out split is evaluated every epoch as
in supervised training. With ``semi.method=none`` the run is the supervised baseline on the
same labelled images (the same subset for the same seed).

- **FixMatch** (Sohn et al. 2020, arXiv:2001.07685): the prediction on a weakly augmented view
  (flip where the recipe allows it, translation by up to 1/8 of the side) is the pseudo-label
  when its probability is at least ``semi.threshold`` (0.95); the loss is
  ``CE(labelled) + lambda_u * mean_u(mask * CE(strong view, pseudo-label))``. The strong view
  adds RandAugment with a random magnitude per operation (torchvision's operation table,
  FixMatch's translation range) and Cutout of half the side (DeVries & Taylor 2017), as
  FixMatch's strong augmentation.
- **Pseudo-Label** (Lee 2013, ICML workshop on challenges in representation learning): the
  network's own argmax on an unlabelled image is its target, weighted by alpha(t) that rises
  linearly from 0 to ``semi.weight`` over ``semi.rampup_epochs`` (Lee's eq. 16 with T1 = 0);
  only predictions at least ``semi.threshold`` confident count (threshold 0 = Lee's original).
- **Mean Teacher** (Tarvainen & Valpola 2017, arXiv:1703.01780): the teacher's weights are an
  exponential moving average of the student's (decay min(1 - 1/(step + 1), ``semi.ema_decay``));
  the consistency cost is the mean squared difference of the two softmaxes on two differently
  augmented views of the unlabelled images (and dropout noise: both networks run in training
  mode), weighted by
  ``semi.weight * exp(-5 (1 - t/T)^2)`` (the sigmoid ramp-up of Laine & Aila 2017, T =
  ``semi.rampup_epochs``). The teacher is the trainer's weight average: stored in the
  checkpoint under "ema", evaluated every epoch (``ema_top1``, ``final_ema_top1``).

An epoch is one pass over the unlabelled set in batches of ``unlabelled_ratio * batch_size``
(FixMatch's mu * B); each step also takes ``batch_size`` labelled images from an endless
stream of seeded permutations of the labelled set (pass k, position p: both follow from the
global batch number), so a resumed run draws exactly the images, augmentations and dropout
masks of the uninterrupted one. Augmentation runs on torchvision.transforms.v2 through
``data/transforms.py``; the losses are a few lines of torch written here.
"""

from __future__ import annotations

import contextlib
import copy
import math
from collections.abc import Callable
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import Dataset, Subset
from torchvision.transforms import v2

from ..data import EpochSampler, Pipeline, TransformedDataset, build_transforms, describe, make_loader
from ..data.datasets import ImageFolderDataset, TensorImageDataset
from ..data.transforms import mix_seed, seeded
from . import distributed
from .config import AugmentConfig, ConfigError
from .engine import autocast
from .trainer import Trainer

__all__ = [
    "Cutout",
    "MeanTeacher",
    "RandomMagnitudeRandAugment",
    "SemiTrainer",
    "balanced_subset",
    "consistency_loss",
    "dataset_labels",
    "fixmatch_loss",
    "linear_rampup",
    "pseudo_label_loss",
    "sigmoid_rampup",
    "weak_strong_transforms",
]

_LABELLED_STREAM = 0x1ABE1  # domains of mix_seed, so the labelled draws share no stream with the others


# ---------------------------------------------------------------------------- the labelled subset
def dataset_labels(ds: Dataset) -> torch.Tensor:
    """Return the int64 labels of a dataset (read from ``.labels`` when it has them, else item by item)."""
    labels = getattr(ds, "labels", None)
    if labels is not None:
        return torch.as_tensor(labels, dtype=torch.int64)
    return torch.tensor([int(ds[i][1]) for i in range(len(ds))], dtype=torch.int64)


def balanced_subset(
    labels: torch.Tensor, per_class: int, *, seed: int, classes: tuple[str, ...] | list[str] = ()
) -> torch.Tensor:
    """Return the sorted indices of ``per_class`` images of every class, chosen by a permutation seeded by ``seed``.

    Each class takes its first ``per_class`` members in the order of one seeded permutation
    of all indices, so smaller subsets of the same seed are nested in larger ones. ValueError
    naming the largest possible value when a class has fewer images.
    """
    labels = torch.as_tensor(labels, dtype=torch.int64)
    if per_class < 1:
        raise ValueError(f"labels per class must be at least 1; got {per_class}")
    num_classes = max(len(classes), int(labels.max()) + 1 if len(labels) else 0)
    counts = torch.bincount(labels, minlength=num_classes)
    smallest = int(counts.argmin())
    if per_class > int(counts[smallest]):
        name = classes[smallest] if smallest < len(classes) else str(smallest)
        raise ValueError(
            f"{per_class} labels per class is more than the smallest class of the training split holds "
            f"(class {name!r}: {int(counts[smallest])} images); use at most {int(counts[smallest])}"
        )
    g = torch.Generator().manual_seed(mix_seed(seed, _LABELLED_STREAM))
    order = torch.randperm(len(labels), generator=g)
    ranked = labels[order]
    chosen = [order[ranked == c][:per_class] for c in range(num_classes)]
    return torch.cat(chosen).sort().values


def _take(ds: Dataset, idx: torch.Tensor) -> Dataset:
    """Return the items ``idx`` of ``ds`` as a dataset of the same kind where possible (in-memory stays cacheable)."""
    if isinstance(ds, TensorImageDataset):
        return TensorImageDataset(ds.images[idx], ds.labels[idx], num_classes=ds.num_classes, name=ds.name)
    if isinstance(ds, ImageFolderDataset):
        out = copy.copy(ds)
        out.files, out.labels, out._bad = [ds.files[i] for i in idx.tolist()], ds.labels[idx], set()
        return out
    return Subset(ds, idx.tolist())


# ---------------------------------------------------------------------------- augmentation
class RandomMagnitudeRandAugment(v2.RandAugment):
    """RandAugment whose magnitude is drawn uniformly for each operation (FixMatch's "RA", Sohn et al. 2020 §2.3).

    torchvision's operations and ranges, except translation: at most 30% of the side, as in
    FixMatch's table of operations (torchvision's 45% moves a digit out of the frame).
    """

    _AUGMENTATION_SPACE = {
        **v2.RandAugment._AUGMENTATION_SPACE,
        "TranslateX": (lambda num_bins, height, width: torch.linspace(0.0, 0.3 * width, num_bins), True),
        "TranslateY": (lambda num_bins, height, width: torch.linspace(0.0, 0.3 * height, num_bins), True),
    }

    def forward(self, *inputs: Any) -> Any:
        n, out = self.num_ops, inputs if len(inputs) > 1 else inputs[0]
        try:
            self.num_ops = 1
            for _ in range(n):
                self.magnitude = int(torch.randint(self.num_magnitude_bins, ()))
                out = super().forward(out)
        finally:
            self.num_ops = n
        return out


class Cutout(nn.Module):
    """Set a square of ``size`` x the image side to 0 (the mean after normalisation) at a uniformly drawn centre.

    DeVries & Taylor 2017 (arXiv:1708.04552): the square may reach past the border and is clipped.
    """

    def __init__(self, size: float = 0.5) -> None:
        super().__init__()
        self.size = size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        side = max(1, round(self.size * min(h, w)))
        cy, cx = (int(v) for v in (torch.randint(h, ()), torch.randint(w, ())))
        top, left = max(0, cy - side // 2), max(0, cx - side // 2)
        x = x.clone()
        x[..., top : min(h, cy - side // 2 + side), left : min(w, cx - side // 2 + side)] = 0
        return x

    def extra_repr(self) -> str:
        return f"size={self.size}"


def weak_strong_transforms(
    aug: AugmentConfig, info: Any, *, size: tuple[int, int], in_chans: int, resize: bool
) -> tuple[Pipeline, Pipeline]:
    """Return FixMatch's (weak, strong) pipelines: flip (if ``aug.hflip``) + translate; then + RandAugment + Cutout.

    Translation is a random crop after reflect-padding by 1/8 of the side (FixMatch's 4 px at
    32x32), or ``aug.crop_padding`` if larger. Both share the static part (resize, channels).
    """
    pad = max(aug.crop_padding, max(1, round(min(size) / 8)))
    base = AugmentConfig(crop_padding=pad, hflip=aug.hflip)
    kw = dict(size=size, in_chans=in_chans, train=True, resize=resize)
    weak = build_transforms(base, info, **kw)
    strong = build_transforms(
        AugmentConfig(crop_padding=pad, hflip=aug.hflip, policy="randaugment"), info, **kw
    )
    steps = [
        RandomMagnitudeRandAugment() if isinstance(t, v2.RandAugment) else t
        for t in strong.dynamic.transforms
    ]
    return weak, Pipeline(strong.static, v2.Compose([*steps, Cutout(0.5)]))


class _Views(Dataset):
    """Unlabelled images as (V, C, H, W) stacks of differently augmented views, label -1 (the true label is never read)."""

    def __init__(self, base: Dataset, static: v2.Compose, views: list[v2.Compose]) -> None:
        self.images = TransformedDataset(
            base, Pipeline(static, None)
        )  # static part cached for in-memory sets
        self.views = views

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, key: tuple[int, int]) -> tuple[torch.Tensor, int]:
        index, seed = key
        x, _ = self.images[index]
        out = []
        for v, view in enumerate(self.views):
            with seeded(mix_seed(seed, v)):
                out.append(view(x))
        return torch.stack(out), -1


# ---------------------------------------------------------------------------- losses and schedules
def fixmatch_loss(
    weak_logits: torch.Tensor, strong_logits: torch.Tensor, *, threshold: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Return (mean over the batch of mask * CE(strong, argmax weak), mask) with mask = max softmax(weak) >= threshold.

    The weak logits are a target only (no gradient flows through them).
    """
    probs = weak_logits.detach().float().softmax(1)
    confidence, pseudo = probs.max(1)
    mask = (confidence >= threshold).float()
    loss = (F.cross_entropy(strong_logits.float(), pseudo, reduction="none") * mask).mean()
    return loss, mask


def pseudo_label_loss(logits: torch.Tensor, *, threshold: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Return (mean over the batch of mask * CE(logits, own argmax), mask): Lee 2013 with a confidence threshold."""
    return fixmatch_loss(logits, logits, threshold=threshold)


def consistency_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor) -> torch.Tensor:
    """Return the mean over images and classes of (softmax(student) - softmax(teacher))², the teacher a constant."""
    return F.mse_loss(student_logits.float().softmax(1), teacher_logits.detach().float().softmax(1))


def linear_rampup(t: float, length: float) -> float:
    """Return min(1, t / length) (1 when length is 0): Lee 2013's alpha(t) / alpha_f with T1 = 0, T2 = length."""
    return 1.0 if length <= 0 else min(1.0, max(0.0, t / length))


def sigmoid_rampup(t: float, length: float) -> float:
    """Return exp(-5 (1 - T)²) with T = clip(t / length, 0, 1) (1 when length is 0): Laine & Aila 2017's ramp-up."""
    if length <= 0:
        return 1.0
    phase = 1.0 - min(1.0, max(0.0, t / length))
    return math.exp(-5.0 * phase * phase)


class MeanTeacher:
    """The teacher of Mean Teacher: an EMA of the student's parameters with decay min(1 - 1/(step + 1), decay).

    Buffers (BatchNorm statistics) are the teacher's own, updated by its forward passes in
    training mode, as in Tarvainen & Valpola's code. ``step`` returns the optimizer step about to complete.
    The interface is the trainer's weight average (``module``, ``update``, ``state_dict``).
    """

    def __init__(self, model: nn.Module, decay: float, *, step: Callable[[], int]) -> None:
        self.decay, self.step = decay, step
        self.module = copy.deepcopy(model)
        for p in self.module.parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        alpha = min(1.0 - 1.0 / (self.step() + 1), self.decay)
        for t, s in zip(self.module.parameters(), model.parameters()):
            t.mul_(alpha).add_(s.detach(), alpha=1.0 - alpha)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return self.module.state_dict()

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.module.load_state_dict(state)


def _logits(out: Any) -> torch.Tensor:
    return out[0] if isinstance(out, (tuple, list)) else out


def _rows(out: Any, rows: slice) -> Any:
    return type(out)(o[rows] for o in out) if isinstance(out, (tuple, list)) else out[rows]


# ---------------------------------------------------------------------------- the trainer
class SemiTrainer(Trainer):
    """The Trainer on a labelled subset of ``semi.labels_per_class`` per class, plus the unlabelled rest (semi.method)."""

    handles_semi = True

    def _build_data(self, train_base: Any, test_base: Any) -> None:
        cfg, s = self.cfg, self.cfg.semi
        if not s.labels_per_class:
            raise ConfigError("semi-supervised training needs semi.labels_per_class (--labels-per-class N)")
        labels = dataset_labels(train_base)
        idx = balanced_subset(labels, s.labels_per_class, seed=cfg.seed, classes=self.info.classes)
        rest = torch.ones(len(labels), dtype=torch.bool)
        rest[idx] = False
        self.labelled_indices = idx
        labelled, unlabelled = _take(train_base, idx), _take(train_base, rest.nonzero().flatten())
        self.num_labelled, self.num_unlabelled = len(idx), len(unlabelled)
        super()._build_data(labelled, test_base)  # the supervised baseline: the labelled images only
        if s.method == "none":
            return
        if not len(unlabelled):
            raise ConfigError(
                f"{s.labels_per_class} labels per class label the whole training split "
                f"({len(labels):,} images): nothing is left unlabelled; use fewer labels per class"
            )
        weak, strong = weak_strong_transforms(
            cfg.augment,
            self.info,
            size=self.size,
            in_chans=self.model.in_chans,
            resize=self.info.size != self.size,
        )
        second = strong.dynamic if s.method == "fixmatch" else weak.dynamic  # mean teacher: two weak views
        self.train_tf, self.strong_tf = weak, strong
        self.labelled_set = TransformedDataset(labelled, weak)
        views = [weak.dynamic] if s.method == "pseudo-label" else [weak.dynamic, second]
        self.train_set = _Views(unlabelled, weak.static, views)
        r, w = self.dist.rank, self.dist.world_size
        self.train_sampler = EpochSampler(len(unlabelled), seed=cfg.seed, shuffle=True, rank=r, world_size=w)
        self.loader_batch = s.unlabelled_ratio * self.local_batch
        self.train_loader = make_loader(
            self.train_set, self.train_sampler, batch_size=self.loader_batch,
            num_workers=cfg.data.num_workers, pin_memory=self.device.type == "cuda",
        )  # fmt: skip
        self.batches_per_epoch = math.ceil(self.train_sampler.per_rank() / self.loader_batch)
        self.steps_per_epoch = math.ceil(self.batches_per_epoch / cfg.optim.accum_steps)
        self._orders: dict[int, torch.Tensor] = {}

    def _build_optimizer(self, *, finetuning: bool) -> None:
        super()._build_optimizer(finetuning=finetuning)
        if self.cfg.semi.method == "mean-teacher":
            self.ema = MeanTeacher(self.model, self.cfg.semi.ema_decay, step=lambda: self.global_step)

    # ------------------------------------------------------------------ one step
    def _labelled_batch(self, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Return this rank's labelled images and labels of global batch ``batch`` (stream positions batch·B + rank·b ...)."""
        n, seed = len(self.labelled_set), self.cfg.seed
        start = batch * self.cfg.data.batch_size + self.dist.rank * self.local_batch
        keys = []
        for p in range(start, start + self.local_batch):
            k, offset = divmod(p, n)  # pass k over the labelled set, position in its permutation
            if k not in self._orders:
                self._orders = {j: o for j, o in self._orders.items() if j >= k - 1}
                g = torch.Generator().manual_seed(mix_seed(seed, k, _LABELLED_STREAM))
                self._orders[k] = torch.randperm(n, generator=g)
            i = int(self._orders[k][offset])
            keys.append((i, mix_seed(seed, k, i, _LABELLED_STREAM)))
        items = [self.labelled_set[key] for key in keys]
        return torch.stack([x for x, _ in items]), torch.tensor([y for _, y in items], dtype=torch.int64)

    def _train_batch(
        self, model: nn.Module, images: torch.Tensor, labels: torch.Tensor, *, sync: bool
    ) -> dict:
        cfg, s = self.cfg, self.cfg.semi
        if s.method == "none":
            return super()._train_batch(model, images, labels, sync=sync)
        x_l, y_l = self._labelled_batch(self.global_batch)
        nl, nu = len(x_l), len(images)
        views = images.to(self.device, non_blocking=True).unbind(1)  # V x (nu, C, H, W)
        x_l, y_l = x_l.to(self.device, non_blocking=True), y_l.to(self.device, non_blocking=True)
        step_seed = mix_seed(cfg.seed, self.dist.rank, self.global_batch)  # dropout: resumable, as in Trainer
        torch.random.default_generator.manual_seed(step_seed)
        if self.device.type == "cuda":
            torch.cuda.manual_seed(step_seed)
        t = self.global_step / self.steps_per_epoch  # epochs done, fractional: the ramps' clock
        student = [x_l, views[0]] + ([views[1]] if s.method == "fixmatch" else [])
        x = torch.cat(student)
        if cfg.model.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        no_sync = self.ddp is not None and not sync
        with self.ddp.no_sync() if no_sync else contextlib.nullcontext():
            with autocast(self.device, cfg.amp):
                out = model(x)  # one batch for labelled and unlabelled images: shared BatchNorm statistics
                supervised = self._loss(_rows(out, slice(0, nl)), y_l, x_l)
                logits = _logits(out)
                if s.method == "fixmatch":
                    unsup, mask = fixmatch_loss(
                        logits[nl : nl + nu], logits[nl + nu :], threshold=s.threshold
                    )
                    weight = s.weight
                elif s.method == "pseudo-label":
                    unsup, mask = pseudo_label_loss(logits[nl:], threshold=s.threshold)
                    weight = s.weight * linear_rampup(t, s.rampup_epochs)
                else:
                    with torch.no_grad():
                        self.ema.module.train()  # the teacher's own dropout and BatchNorm noise
                        teacher = _logits(self.ema.module(views[1]))
                    unsup, mask = consistency_loss(logits[nl:], teacher), torch.ones(nu, device=self.device)
                    weight = s.weight * sigmoid_rampup(t, s.rampup_epochs)
                loss = supervised + weight * unsup
            value = self._mean_loss(loss)
            self.scaler.scale(loss / cfg.optim.accum_steps).backward()
        sums = self.sums
        sums["loss"] += float(loss.detach()) * nl
        sums["correct"] += float((logits[:nl].detach().argmax(1) == y_l).sum())
        sums["seen"] += nl
        sums["unlabelled_loss"] += float(unsup.detach()) * nu
        sums["confident"] += float(mask.sum())
        sums["unlabelled"] += nu
        sums["weight"] = weight
        self.batch_in_epoch += 1
        self.global_batch += 1
        return {"loss": float(value), "acc": 100.0 * sums["correct"] / max(1.0, sums["seen"])}

    # ------------------------------------------------------------------ records and the header
    def _new_sums(self) -> dict[str, float]:
        return {
            **super()._new_sums(),
            "unlabelled_loss": 0.0,
            "confident": 0.0,
            "unlabelled": 0.0,
            "weight": 0.0,
        }

    def _epoch_extras(self) -> dict[str, Any]:
        if self.cfg.semi.method == "none":
            return {}
        keys = ("seen", "unlabelled_loss", "confident", "unlabelled")
        sums = distributed.all_reduce_sum(torch.tensor([self.sums[k] for k in keys], dtype=torch.float64))
        seen, u_loss, confident, unlabelled = sums.tolist()
        seconds = max(1e-9, self.epoch_time.elapsed)
        out = {
            "train_unlabelled_loss": u_loss / max(1.0, unlabelled),
            "train_unlabelled_weight": self.sums["weight"],
            "images_per_second": (seen + unlabelled) / seconds,  # labelled + unlabelled images
        }
        if self.cfg.semi.method != "mean-teacher":  # % of unlabelled images whose pseudo-label was used
            out["train_confident"] = 100.0 * confident / max(1.0, unlabelled)
        return out

    def _epoch_note(self, record: dict[str, Any]) -> str:
        m = self.cfg.semi.method
        if m == "none":
            return ""
        conf = f" confident {record['train_confident']:.0f}%" if m != "mean-teacher" else ""
        return f"  unlabelled loss {record['train_unlabelled_loss']:.3g} x{record['train_unlabelled_weight']:.3g}{conf}"

    def _describe(self) -> None:
        super()._describe()
        c, s = self.cfg, self.cfg.semi
        who = {
            "fixmatch": "Sohn et al. 2020",
            "pseudo-label": "Lee 2013",
            "mean-teacher": "Tarvainen & Valpola 2017",
        }
        total = self.num_labelled + self.num_unlabelled
        subset = (
            f"{self.num_labelled:,} labelled ({s.labels_per_class} per class, seed {c.seed}) of {total:,}"
        )
        if s.method == "none":
            self.log(
                f"  labels    {subset}: supervised on them only, the other {self.num_unlabelled:,} unused"
            )
            return
        per_step = f"{self.cfg.data.batch_size} labelled + {s.unlabelled_ratio * self.cfg.data.batch_size} unlabelled"
        self.log(
            f"  semi      {s.method} ({who[s.method]}): {subset}, {self.num_unlabelled:,} unlabelled "
            f"(labels unused); {per_step} per step; an epoch is one pass over the unlabelled images"
        )
        extra = {
            "fixmatch": f"threshold {s.threshold:g}, lambda_u {s.weight:g}; strong view: {describe(self.strong_tf)}; "
            "of augment.*, only hflip and crop_padding apply",
            "pseudo-label": f"threshold {s.threshold:g}, weight {s.weight:g} ramped linearly over {s.rampup_epochs:g} "
            "epochs; of augment.*, only hflip and crop_padding apply",
            "mean-teacher": f"teacher EMA decay {s.ema_decay:g}, consistency weight {s.weight:g} "
            f"(sigmoid ramp-up over {s.rampup_epochs:g} epochs); the teacher is reported as 'ema'; of augment.*, "
            "only hflip and crop_padding apply",
        }[s.method]
        self.log(f"            {extra}")
