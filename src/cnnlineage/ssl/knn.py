"""Frozen features and the weighted k-NN classifier used to follow self-supervised training.

The k-NN probe is Wu et al.'s (CVPR 2018, "Unsupervised feature learning via
non-parametric instance discrimination", §3.4), as DINO and MoCo evaluate: features are
L2-normalised, each test image takes its k most cosine-similar training images, and each
neighbour votes for its class with weight exp(similarity / T), T = 0.07. Written here
because it is a dozen lines of tensor code with no library that does exactly this.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = ["extract_features", "knn_predict"]


@torch.no_grad()
def extract_features(
    model: nn.Module,
    batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
    *,
    device: torch.device | str = "cpu",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Return (features (N, D), labels (N,)) of the pooled pre-logits features, in eval mode.

    Uses the model contract: ``forward_head(forward_features(x), pre_logits=True)``.
    """
    was_training = model.training
    model.eval()
    feats, labels = [], []
    try:
        for x, y in batches:
            f = model.forward_head(model.forward_features(x.to(device)), pre_logits=True)
            feats.append(f.flatten(1).float().cpu())
            labels.append(torch.as_tensor(y).cpu())
    finally:
        model.train(was_training)
    if not feats:
        raise ValueError("no images to extract features from: the data set is empty")
    return torch.cat(feats), torch.cat(labels)


@torch.no_grad()
def knn_predict(
    train_feats: torch.Tensor,
    train_labels: torch.Tensor,
    test_feats: torch.Tensor,
    *,
    num_classes: int,
    k: int = 20,
    temperature: float = 0.07,
    chunk: int = 1024,
) -> torch.Tensor:
    """Return the weighted k-NN class scores (M, num_classes) of ``test_feats`` against the training bank."""
    if len(train_feats) == 0:
        raise ValueError("the k-NN probe needs at least one training feature")
    k = min(k, len(train_feats))
    bank = F.normalize(train_feats.float(), dim=1)
    scores = []
    for start in range(0, len(test_feats), chunk):
        q = F.normalize(test_feats[start : start + chunk].float(), dim=1)
        sim, idx = (q @ bank.T).topk(k, dim=1)  # (m, k)
        weight = (sim / temperature).exp()
        votes = torch.zeros(len(q), num_classes)
        votes.scatter_add_(1, train_labels[idx], weight)
        scores.append(votes)
    return torch.cat(scores)
