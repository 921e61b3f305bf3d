"""Each self-supervised loss against a value worked out by hand on tiny tensors; the queue and the EMA updates."""

from __future__ import annotations

import math
import types

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from lightly.loss import DINOLoss, NTXentLoss

from cnnlineage.ssl.mae import mae_loss, patchify, random_masking, sincos_pos_embed
from cnnlineage.ssl.methods import KeyQueue, MoCo, byol_loss, info_nce
from cnnlineage.ssl.pretrain import PretrainTrainer


def _cos(a, b):
    return sum(x * y for x, y in zip(a, b)) / math.sqrt(sum(x * x for x in a) * sum(y * y for y in b))


def _nt_xent_by_hand(z0, z1, t):
    """Loop over the 2N anchors: -log(exp(s_pos/t) / sum over the other 2N - 1 views of exp(s/t)), averaged."""
    views = [list(v) for v in z0] + [list(v) for v in z1]
    n, total = len(z0), 0.0
    for i, anchor in enumerate(views):
        pair = i + n if i < n else i - n
        others = [j for j in range(2 * n) if j != i]
        denom = sum(math.exp(_cos(anchor, views[j]) / t) for j in others)
        total += -math.log(math.exp(_cos(anchor, views[pair]) / t) / denom)
    return total / (2 * n)


def test_nt_xent_closed_form_and_by_hand():
    # identical views of two orthogonal images, t = 1: each anchor has its pair at cos 1 and two others at cos 0
    e = torch.eye(2)
    assert NTXentLoss(temperature=1.0)(e, e.clone()).item() == pytest.approx(
        math.log(1 + 2 / math.e), abs=1e-6
    )
    z0 = torch.tensor([[1.0, 2.0, 0.0], [0.5, -1.0, 1.0], [0.0, 1.0, 3.0]])
    z1 = torch.tensor([[1.0, 1.5, 0.5], [1.0, -1.0, 0.0], [-1.0, 0.5, 2.0]])
    got = NTXentLoss(temperature=0.5)(z0, z1).item()
    assert got == pytest.approx(_nt_xent_by_hand(z0.tolist(), z1.tolist(), 0.5), abs=1e-5)


def test_info_nce_with_a_queue():
    q = torch.tensor([[1.0, 0.0]])
    k = torch.tensor([[1.0, 0.0]])
    queue = torch.tensor([[0.0, 1.0], [-1.0, 0.0]])
    loss, logits = info_nce(q, k, queue, 0.5)
    # logits [1, 0, -1] / 0.5 = [2, 0, -2]; the positive is column 0
    assert logits.tolist() == [[2.0, 0.0, -2.0]]
    assert loss.item() == pytest.approx(-math.log(math.exp(2) / (math.exp(2) + 1 + math.exp(-2))), abs=1e-6)


def test_byol_normalised_mse():
    p = torch.tensor([[1.0, 0.0], [3.0, 4.0], [1.0, 1.0]])
    z = torch.tensor([[0.0, 1.0], [6.0, 8.0], [2.0, 0.0]])
    # 2 - 2cos: orthogonal 2, parallel 0, 45 degrees 2 - sqrt(2)
    assert byol_loss(p, z).item() == pytest.approx((2 + 0 + (2 - math.sqrt(2))) / 3, abs=1e-6)


def test_dino_loss_with_centring_and_the_centre_update():
    t_temp, s_temp, m = 0.5, 0.25, 0.9
    loss_fn = DINOLoss(output_dim=3, warmup_teacher_temp=t_temp, teacher_temp=t_temp, student_temp=s_temp,
                       center_momentum=m)  # fmt: skip
    centre = [0.2, -0.1, 0.3]
    loss_fn.center.copy_(torch.tensor(centre).view(1, 1, 3))
    teacher = [torch.tensor([[1.0, 0.0, 2.0]]), torch.tensor([[0.5, 1.5, -1.0]])]  # two global views, batch 1
    student = [
        torch.tensor([[0.3, 0.1, 0.0]]),
        torch.tensor([[1.0, -1.0, 0.5]]),
        torch.tensor([[0.0, 2.0, 1.0]]),
    ]

    def softmax(v):
        e = [math.exp(x) for x in v]
        return [x / sum(e) for x in e]

    terms = []
    for i, t in enumerate(teacher):  # teacher view i against every student view j != i
        pt = softmax([(a - c) / t_temp for a, c in zip(t[0].tolist(), centre)])  # centred, sharpened
        for j, s in enumerate(student):
            if j != i:
                ps = softmax([a / s_temp for a in s[0].tolist()])
                terms.append(-sum(a * math.log(b) for a, b in zip(pt, ps)))
    got = loss_fn(teacher, student, teacher_temp=t_temp).item()
    assert got == pytest.approx(sum(terms) / len(terms), abs=1e-6)
    mean = [(a + b) / 2 for a, b in zip(teacher[0][0].tolist(), teacher[1][0].tolist())]
    expected_centre = [m * c + (1 - m) * x for c, x in zip(centre, mean)]
    assert loss_fn.center.view(-1).tolist() == pytest.approx(expected_centre, abs=1e-6)


def test_mae_loss_on_normalised_masked_patches():
    target = torch.tensor([[[1.0, 2.0, 3.0, 4.0], [0.0, 0.0, 5.0, 5.0]]])  # (B=1, N=2 patches, 4 values)
    pred = torch.tensor([[[0.0, 0.0, 0.0, 0.0], [100.0, 100.0, 100.0, 100.0]]])
    mask = torch.tensor([[1.0, 0.0]])  # only patch 0 is masked: patch 1's large error does not count
    # patch 0: mean 2.5, unbiased var 5/3; predicting 0 costs mean((x - 2.5)^2) / (var + 1e-6) = 1.25 / (5/3 + 1e-6)
    expected = 1.25 / (5 / 3 + 1e-6)
    assert mae_loss(pred, target, mask).item() == pytest.approx(expected, abs=1e-6)
    # without normalisation: the raw MSE of patch 0, (1 + 4 + 9 + 16) / 4
    assert mae_loss(pred, target, mask, norm_pix=False).item() == pytest.approx(7.5)


def test_patchify_and_masking_layout():
    images = torch.arange(2 * 4 * 4, dtype=torch.float32).view(1, 2, 4, 4)  # 2 channels, 2x2 patches of 2
    rows = patchify(images, 2)
    assert rows.shape == (1, 4, 8)
    # patch (0, 1): rows 0-1, columns 2-3, channels last: c0 then c1 for each pixel
    assert rows[0, 1].tolist() == [2.0, 18.0, 3.0, 19.0, 6.0, 22.0, 7.0, 23.0]
    tokens = torch.arange(10, dtype=torch.float32).view(1, 10, 1).repeat(3, 1, 2)
    visible, mask, ids_restore, _ = random_masking(tokens, 0.75)
    assert visible.shape == (3, 2, 2) and mask.sum(1).tolist() == [8.0, 8.0, 8.0]
    for b in range(3):  # the visible tokens are exactly the unmasked positions
        assert sorted(visible[b, :, 0].long().tolist()) == torch.nonzero(mask[b] == 0).view(-1).tolist()
    pos = sincos_pos_embed(8, (2, 3))
    assert pos.shape == (1, 7, 8) and pos[0, 0].abs().sum() == 0
    assert pos[0, 1, :2].tolist() == [0.0, 0.0] and pos[0, 1, 2:4].tolist() == [
        1.0,
        1.0,
    ]  # x = 0: sin 0, cos 0


def test_queue_is_fifo_and_wraps():
    q = KeyQueue(5, 2)
    keys = torch.arange(14, dtype=torch.float32).view(7, 2)  # key i = (2i, 2i + 1)
    q.enqueue(keys[:3])
    assert q.keys[:3].tolist() == keys[:3].tolist() and int(q.ptr) == 3
    q.enqueue(keys[3:6])  # slots 3, 4, then wrap to 0: the oldest key (0) goes first
    assert q.keys.tolist() == keys[[5, 1, 2, 3, 4]].tolist() and int(q.ptr) == 1
    q.enqueue(keys)  # more keys than slots: the last five, from slot 1
    assert q.keys.tolist() == keys[[6, 2, 3, 4, 5]].tolist() and int(q.ptr) == 1
    assert "keys" in q.state_dict() and "ptr" in q.state_dict()  # saved with the model: resumed exactly


class _Tiny(nn.Module):
    in_chans = 1

    def __init__(self):
        super().__init__()
        self.body, self.fc = nn.Linear(4, 3), nn.Linear(3, 2)

    def forward_features(self, x):
        return self.body(x.flatten(1))

    def forward_head(self, x, pre_logits=False):
        return x if pre_logits else self.fc(x)

    def get_classifier(self):
        return self.fc


def test_ema_update_and_frozen_parts():
    moco = MoCo(_Tiny(), feature_dim=3, hidden_dim=5, proj_dim=2, temperature=0.2, queue_size=8)
    assert not any(p.requires_grad for p in moco.key_backbone.parameters())
    assert not moco.backbone.fc.weight.requires_grad  # the classifier is never trained by pre-training
    with torch.no_grad():
        moco.backbone.body.weight.add_(1.0)
    online, key = moco.backbone.body.weight.clone(), moco.key_backbone.body.weight.clone()
    moco.momentum_update(0.9)
    torch.testing.assert_close(moco.key_backbone.body.weight, 0.9 * key + 0.1 * online)
    loss, acc = moco([torch.randn(4, 1, 2, 2), torch.randn(4, 1, 2, 2)])
    assert int(moco.queue.ptr) == 4 and 0 <= float(acc) <= 1 and loss.requires_grad


def test_momentum_schedules():
    def at(schedule, step):
        ns = types.SimpleNamespace(
            cfg=types.SimpleNamespace(ssl=types.SimpleNamespace(momentum=0.99), epochs=2),
            model=types.SimpleNamespace(momentum_schedule=schedule),
            steps_per_epoch=5,
        )
        return PretrainTrainer.momentum_at(ns, step)

    assert at("constant", 7) == 0.99  # MoCo: fixed
    k, total = 3, 10  # BYOL: 1 - (1 - base)(cos(pi k / K) + 1) / 2, K the last step (lightly counts from 0)
    assert at("cosine", k) == pytest.approx(1 - 0.01 * (math.cos(math.pi * k / (total - 1)) + 1) / 2)
    assert at("cosine", 0) == pytest.approx(0.99) and at("cosine", total - 1) == 1.0


def test_nt_xent_gradient_is_finite_on_identical_views():
    z = F.normalize(torch.randn(4, 3), dim=1).requires_grad_()
    NTXentLoss(temperature=0.1)(z, z.detach().clone()).backward()
    assert torch.isfinite(z.grad).all()
