"""SimCLR, MoCo v2, BYOL and DINO around any registered network; lightly supplies heads, losses and EMA.

Each method is a module that holds the registered network as ``backbone`` (the network a
pre-training checkpoint hands on, see :mod:`cnnlineage.ssl`) next to its own heads, and
whose ``forward(views)`` returns ``(loss, pretext accuracy)``. The network is used only
through the model contract, ``forward_head(forward_features(x), pre_logits=True)``, so
every registered model works; its classifier is frozen (pre-training never uses it).

- SimCLR (Chen, Kornblith, Norouzi & Hinton, ICML 2020, arXiv:2002.05709): two views,
  projection MLP, NT-Xent over the 2N views of the batch; lightly's ``NTXentLoss`` with
  ``gather_distributed=True`` takes every process's views as negatives.
- MoCo v2 (He et al., CVPR 2020, arXiv:1911.05722; Chen, Fan, Girshick & He 2020,
  arXiv:2003.04297): a query encoder, a momentum key encoder, a FIFO queue of keys as
  negatives and InfoNCE (Eq. 1), the MLP head of v2 (given batch norm, as MoCo v3's, when
  the network has none: a BN-free LeNet otherwise squeezes every key into one direction;
  measured on mnist5k, k-NN probe 81.5 % without, 88.2 % with). The queue and InfoNCE are written
  here: lightly's memory bank is a non-persistent buffer (not in the state_dict, so a
  resumed run would start from a fresh queue) and drops the keys that overrun its end
  instead of wrapping. Keys are gathered from every process before they are enqueued,
  and under DDP the key encoder sees a batch shuffled across processes ("shuffling BN", §3.3).
- BYOL (Grill et al., NeurIPS 2020, arXiv:2006.07733): online network with projector and
  predictor, an EMA target network, the normalised MSE 2 - 2 cos(q, z') of Eq. 2,
  symmetrised (both views through both networks), the EMA rate cosine-scheduled to 1 (§3.2).
- DINO (Caron et al., ICCV 2021, arXiv:2104.14294): student and EMA teacher with lightly's
  ``DINOProjectionHead`` and ``DINOLoss`` (teacher centring and sharpening, Eq. 1 and
  §3.1); the teacher sees the two global crops, the student every crop. As in the paper
  the teacher is the network evaluated, so here it is ``backbone`` and the student is
  ``student``. The head has batch norm on a CNN (the authors' ``--use_bn_in_head``; without
  it a small CNN's outputs start too alike and centring flattens them to uniform) and none
  on a ViT (the paper's BN-free system). Not reproduced: the last-layer freeze of the first
  epoch and the weight-decay schedule of the authors' code (optimizer and schedule are the
  trainer's).

lightly's ``update_momentum`` does every EMA update and ``cosine_schedule`` the BYOL/DINO
momentum; MAE (ViT only) is in :mod:`cnnlineage.ssl.mae`.
"""

from __future__ import annotations

import copy
import warnings

import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F
from lightly.loss import DINOLoss, NTXentLoss
from lightly.models.modules.heads import (
    BYOLPredictionHead,
    BYOLProjectionHead,
    DINOProjectionHead,
    MoCoProjectionHead,
    SimCLRProjectionHead,
)
from lightly.models.utils import (
    batch_shuffle_distributed,
    batch_unshuffle_distributed,
    concat_all_gather,
    deactivate_requires_grad,
    update_momentum,
)

__all__ = [
    "BYOL",
    "DINO",
    "KeyQueue",
    "MoCo",
    "SSLMethod",
    "SimCLR",
    "byol_loss",
    "embed",
    "feature_dim",
    "freeze_unused",
    "info_nce",
]


def embed(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Return the pooled pre-logits features (B, D) of a registered network."""
    return net.forward_head(net.forward_features(x), pre_logits=True).flatten(1)


@torch.no_grad()
def feature_dim(net: nn.Module, size: tuple[int, int]) -> int:
    """Return the width of ``net``'s pre-logits features for inputs of ``size`` (one dummy pass in eval mode)."""
    was_training = net.training
    net.eval()
    try:
        p = next(net.parameters())
        x = torch.zeros(2, net.in_chans, *size, device=p.device, dtype=p.dtype)
        return int(embed(net, x).shape[1])
    finally:
        net.train(was_training)


def freeze_unused(net: nn.Module) -> None:
    """Stop gradients to the parts pre-training never runs: the classifier and training-only heads."""
    parts = [net.get_classifier()] + [net.get_submodule(n) for n in getattr(net, "training_only_modules", ())]
    for part in parts:
        deactivate_requires_grad(part)


def _gather(x: torch.Tensor) -> tuple[torch.Tensor, int]:
    """Return (``x`` from every process concatenated in rank order, this process's row offset), without gradient."""
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        return concat_all_gather(x.contiguous()), dist.get_rank() * len(x)
    return x, 0


def _frozen_copy(module: nn.Module) -> nn.Module:
    """Return a deep copy of ``module`` that takes no gradient (a momentum encoder's starting point)."""
    twin = copy.deepcopy(module)
    deactivate_requires_grad(twin)
    return twin


class SSLMethod(nn.Module):
    """A registered network as ``backbone`` plus a method's heads; ``forward(views)`` returns (loss, accuracy)."""

    method = ""
    momentum_schedule = "none"  # "constant" (MoCo), "cosine" to 1 (BYOL, DINO) or "none"

    def __init__(self, backbone: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone
        freeze_unused(backbone)

    @property
    def in_chans(self) -> int:
        return self.backbone.in_chans

    @torch.no_grad()
    def momentum_update(self, m: float) -> None:
        """Move the momentum networks towards the trained ones with rate ``m`` (no-op without them)."""


# ---------------------------------------------------------------------------- SimCLR
@torch.no_grad()
def _pair_accuracy(z0: torch.Tensor, z1: torch.Tensor) -> torch.Tensor:
    """Return the fraction of the 2N views whose most similar other view (over all processes) is their pair."""
    z0, z1 = F.normalize(z0.float(), dim=1), F.normalize(z1.float(), dim=1)
    a0, offset = _gather(z0)
    a1, _ = _gather(z1)
    every, n, m = torch.cat([a0, a1]), len(z0), len(a0)
    rows = torch.arange(n, device=z0.device) + offset
    hits = 0.0
    for z, own, pair in ((z0, rows, rows + m), (z1, rows + m, rows)):
        sim = z @ every.T  # (n, 2m)
        sim[torch.arange(n), own] = -float("inf")
        hits += float((sim.argmax(1) == pair).float().sum())
    return torch.tensor(hits / (2 * n))


class SimCLR(SSLMethod):
    """SimCLR: NT-Xent between the projections of two views, negatives from every process."""

    method = "simclr"

    def __init__(
        self, backbone: nn.Module, *, feature_dim: int, hidden_dim: int, proj_dim: int, temperature: float
    ) -> None:
        super().__init__(backbone)
        self.projection = SimCLRProjectionHead(feature_dim, hidden_dim, proj_dim)  # Linear-BN-ReLU-Linear-BN
        self.criterion = NTXentLoss(temperature=temperature, gather_distributed=True)

    def forward(self, views: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        z = self.projection(embed(self.backbone, torch.cat(views[:2])))  # both views in one pass: (2B, d)
        z0, z1 = z.float().chunk(2)
        return self.criterion(z0, z1), _pair_accuracy(z0, z1)


# ---------------------------------------------------------------------------- MoCo v2
def info_nce(
    q: torch.Tensor, k: torch.Tensor, queue: torch.Tensor, temperature: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Return (InfoNCE loss, logits (N, 1 + K)): the positive key against the queue's K negatives (MoCo Eq. 1).

    ``q`` and ``k`` are L2-normalised (N, d), ``queue`` (K, d); the loss is the cross-entropy
    of ``[q·k, q·queue] / temperature`` with the positive in column 0.
    """
    positive = (q * k).sum(dim=1, keepdim=True)  # (N, 1)
    negative = q @ queue.T  # (N, K)
    logits = torch.cat([positive, negative], dim=1) / temperature
    labels = torch.zeros(len(q), dtype=torch.long, device=q.device)
    return F.cross_entropy(logits, labels), logits


class KeyQueue(nn.Module):
    """MoCo's dictionary: a FIFO queue of K keys (a buffer, so it is saved and resumed with the model)."""

    def __init__(self, size: int, dim: int) -> None:
        super().__init__()
        # random unit keys to start with, as the reference implementation
        self.register_buffer("keys", F.normalize(torch.randn(size, dim), dim=1))  # (K, d)
        self.register_buffer("ptr", torch.zeros((), dtype=torch.long))  # where the next key goes

    @torch.no_grad()
    def enqueue(self, keys: torch.Tensor) -> None:
        """Replace the oldest keys by ``keys`` (N, d), wrapping round the end; only the last K if N > K."""
        size = len(self.keys)
        keys = keys.detach()[-size:]
        slots = (torch.arange(len(keys), device=self.keys.device) + int(self.ptr)) % size
        self.keys[slots] = keys.to(self.keys.dtype)
        self.ptr.fill_((int(self.ptr) + len(keys)) % size)


class MoCo(SSLMethod):
    """MoCo v2: query encoder + MLP head, momentum key encoder, queue of negatives, InfoNCE."""

    method = "moco"
    momentum_schedule = "constant"  # m = 0.999 in the paper, fixed

    def __init__(
        self,
        backbone: nn.Module,
        *,
        feature_dim: int,
        hidden_dim: int,
        proj_dim: int,
        temperature: float,
        queue_size: int,
    ) -> None:
        super().__init__(backbone)
        # v2's 2-layer MLP; with batch norm (v3's) only when the network has none of its own
        bn = not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in backbone.modules())
        self.projection = MoCoProjectionHead(feature_dim, hidden_dim, proj_dim, batch_norm=bn)
        self.key_backbone = _frozen_copy(backbone)
        self.key_projection = _frozen_copy(self.projection)
        self.queue = KeyQueue(queue_size, proj_dim)
        self.temperature = temperature

    @torch.no_grad()
    def momentum_update(self, m: float) -> None:
        update_momentum(self.backbone, self.key_backbone, m)
        update_momentum(self.projection, self.key_projection, m)

    @torch.no_grad()
    def _keys(self, x: torch.Tensor) -> torch.Tensor:
        shuffle = dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1
        if shuffle:  # shuffling BN (§3.3): the key batch's statistics mix every process's images
            x, order = batch_shuffle_distributed(x)
        k = self.key_projection(embed(self.key_backbone, x))
        if shuffle:
            k = batch_unshuffle_distributed(k, order)
        return F.normalize(k.float(), dim=1)

    def forward(self, views: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        q = F.normalize(self.projection(embed(self.backbone, views[0])).float(), dim=1)
        k = self._keys(views[1])
        loss, logits = info_nce(
            q, k, self.queue.keys.clone(), self.temperature
        )  # a copy: enqueue is in place
        self.queue.enqueue(_gather(k)[0])  # every process's keys, in rank order
        return loss, (logits.detach().argmax(1) == 0).float().mean()


# ---------------------------------------------------------------------------- BYOL
def byol_loss(p: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """Return BYOL's normalised MSE, mean over the batch of ||p/|p| - z/|z|||² = 2 - 2 cos(p, z) (Eq. 2)."""
    return (F.normalize(p.float(), dim=1) - F.normalize(z.float(), dim=1)).pow(2).sum(dim=1).mean()


@torch.no_grad()
def _retrieval_accuracy(p: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """Return the fraction of predictions whose most similar target (over all processes) is their own."""
    p, z = F.normalize(p.float(), dim=1), F.normalize(z.float(), dim=1)
    every, offset = _gather(z)
    own = torch.arange(len(p), device=p.device) + offset
    return ((p @ every.T).argmax(1) == own).float().mean()


class BYOL(SSLMethod):
    """BYOL: online network + projector + predictor regresses the EMA target's projection of the other view."""

    method = "byol"
    momentum_schedule = "cosine"  # tau = 1 - (1 - tau_base)(cos(pi k / K) + 1) / 2

    def __init__(self, backbone: nn.Module, *, feature_dim: int, hidden_dim: int, proj_dim: int) -> None:
        super().__init__(backbone)
        self.projection = BYOLProjectionHead(feature_dim, hidden_dim, proj_dim)
        self.prediction = BYOLPredictionHead(proj_dim, hidden_dim, proj_dim)
        self.target_backbone = _frozen_copy(backbone)
        self.target_projection = _frozen_copy(self.projection)

    @torch.no_grad()
    def momentum_update(self, m: float) -> None:
        update_momentum(self.backbone, self.target_backbone, m)
        update_momentum(self.projection, self.target_projection, m)

    def forward(self, views: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.cat(views[:2])
        p0, p1 = self.prediction(self.projection(embed(self.backbone, x))).float().chunk(2)
        with torch.no_grad():
            z0, z1 = self.target_projection(embed(self.target_backbone, x)).float().chunk(2)
        loss = byol_loss(p0, z1) + byol_loss(p1, z0)  # L + L~, the symmetrised loss
        acc = (_retrieval_accuracy(p0, z1) + _retrieval_accuracy(p1, z0)) / 2
        return loss, acc


# ---------------------------------------------------------------------------- DINO
def _dino_head(
    feature_dim: int, hidden_dim: int, bottleneck: int, out_dim: int, *, batch_norm: bool
) -> DINOProjectionHead:
    with warnings.catch_warnings():  # lightly builds the last layer with the deprecated nn.utils.weight_norm
        warnings.simplefilter("ignore", FutureWarning)
        return DINOProjectionHead(feature_dim, hidden_dim, bottleneck, out_dim, batch_norm=batch_norm)


class DINO(SSLMethod):
    """DINO: a student matches the centred, sharpened teacher over crops; the teacher (``backbone``) is its EMA."""

    method = "dino"
    momentum_schedule = "cosine"  # 0.996 -> 1 in the paper

    def __init__(
        self,
        backbone: nn.Module,
        *,
        feature_dim: int,
        hidden_dim: int,
        bottleneck_dim: int,
        out_dim: int,
        teacher_temp: float,
        center_momentum: float,
        student_temp: float = 0.1,
        batch_norm: bool = True,
    ) -> None:
        teacher = _frozen_copy(backbone)
        super().__init__(teacher)
        self.student = backbone
        freeze_unused(backbone)
        head = (feature_dim, hidden_dim, bottleneck_dim, out_dim)
        self.student_head = _dino_head(*head, batch_norm=batch_norm)
        # weight-normalised layers cannot be deep-copied: build the teacher head and copy the weights in
        self.teacher_head = _dino_head(*head, batch_norm=batch_norm)
        self.teacher_head.load_state_dict(self.student_head.state_dict())
        deactivate_requires_grad(self.teacher_head)
        self.teacher_temp = teacher_temp
        self.criterion = DINOLoss(
            output_dim=out_dim,
            warmup_teacher_temp=teacher_temp,
            teacher_temp=teacher_temp,
            student_temp=student_temp,
            center_momentum=center_momentum,
        )

    @torch.no_grad()
    def momentum_update(self, m: float) -> None:
        update_momentum(self.student, self.backbone, m)
        update_momentum(self.student_head, self.teacher_head, m)

    def forward(self, views: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        global_views, local_views = torch.cat(views[:2]), views[2:]
        with torch.no_grad():
            teacher = list(self.teacher_head(embed(self.backbone, global_views)).float().chunk(2))
        student = list(self.student_head(embed(self.student, global_views)).float().chunk(2))
        if local_views:  # one pass for all local crops (they share a size)
            out = self.student_head(embed(self.student, torch.cat(local_views))).float()
            student += list(out.chunk(len(local_views)))
        loss = self.criterion(teacher, student, teacher_temp=self.teacher_temp)
        with torch.no_grad():  # how often the student's prototype is the teacher's, over cross-view pairs
            t = torch.stack([o.argmax(1) for o in teacher])  # (2, B)
            s = torch.stack([o.argmax(1) for o in student])  # (V, B)
            agree = (t[:, None] == s[None]).float().mean(2)  # (2, V)
            agree.fill_diagonal_(0)
            acc = agree.sum() / (agree.numel() - 2)
        return loss, acc
