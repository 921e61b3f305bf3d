"""GoogLeNet (Inception v1) — Szegedy, Liu, Jia, Sermanet, Reed, Anguelov, Erhan, Vanhoucke &
Rabinovich, "Going Deeper with Convolutions", CVPR 2015, arXiv:1409.4842; and Inception v3 —
Szegedy, Vanhoucke, Ioffe, Shlens & Wojna, "Rethinking the Inception Architecture for Computer
Vision", CVPR 2016, arXiv:1512.00567.

An Inception module runs 1x1, 3x3 and 5x5 convolutions and a max-pool side by side and
concatenates them; 1x1 "reduce" convolutions in front of the large kernels keep the cost
low, so the 22-layer network has 12x fewer parameters than AlexNet. Auxiliary classifiers on
intermediate modules add gradient signal to the lower layers during training. Inception v3
factorises the large kernels (5x5 into two 3x3, nxn into 1xn then nx1), reduces the grid
with parallel stride-2 branches and keeps one auxiliary classifier.

Both follow torchvision's layout, so its state_dicts load as they are. Where that layout
differs from the papers:

- BatchNorm (eps 1e-3) after every convolution: GoogLeNet predates BatchNorm, torchvision's
  model (ported from TF-slim) adds it; ``batch_norm=False`` builds the BN-free network.
- GoogLeNet's "5x5" branch uses a 3x3 kernel (torchvision issue #906, kept for its weights);
  ``paper_5x5=True`` gives Table 1's 5x5 (+380,928 parameters). The pool before 5a is 2x2/2
  (Table 1: 3x3/2); the auxiliary heads pool adaptively to 4x4 (the paper's 5x5/3 average
  pool gives the same 4x4 grid at 224x224); the final dropout is the paper's 40% (torchvision 20%).
- Inception v3 is the released TF model: its stem (1x1 to 80, 3x3 to 192, then a pool) and
  the 5x5 branch of the 35x35 modules differ from Table 1 and Fig. 5 of the paper.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..registry import register_model
from ._base import LineageModel, is_tracing

__all__ = [
    "ConvBnAct",
    "InceptionModule",
    "InceptionAux",
    "GoogLeNet",
    "Conv",
    "InceptionV3Block",
    "InceptionV3Aux",
    "InceptionV3",
    "tf_input_transform",
    "GOOGLENET_TABLE",
    "INCEPTION_V3_LAYOUT",
]

Layer = Callable[..., nn.Module]
BatchNorm = functools.partial(nn.BatchNorm2d, eps=1e-3)  # TF's epsilon, as in the ported weights
ReLU = functools.partial(nn.ReLU, inplace=True)


def tf_input_transform(x: torch.Tensor) -> torch.Tensor:
    """Return ImageNet-normalised ``(raw - mean) / std`` as ``(raw - 0.5) / 0.5``, the TF weights' input."""
    mean = x.new_tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = x.new_tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    return x * (std / 0.5) + (mean - 0.5) / 0.5


class ConvBnAct(nn.Module):
    """Conv2d → norm → activation with torchvision's ``conv`` / ``bn`` keys (its BasicConv2d).

    ``norm_layer=None`` gives a biased convolution and no normalisation (the 2014 network).
    """

    def __init__(
        self,
        in_chs: int,
        out_chs: int,
        kernel_size: int | tuple[int, int],
        stride: int = 1,
        padding: int | tuple[int, int] = 0,
        *,
        norm_layer: Layer | None = BatchNorm,
        act_layer: Layer = ReLU,
    ) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_chs, out_chs, kernel_size, stride, padding, bias=norm_layer is None)
        self.bn = norm_layer(out_chs) if norm_layer is not None else nn.Identity()
        self.act = act_layer()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(self.conv(x)))


class _InceptionNet(LineageModel):
    """What both networks share: named layers run in order, auxiliary heads tapped on named
    outputs in training, and a pool → dropout → FC head.

    Subclasses fill ``_order`` (layer names), ``_aux_taps`` (layer name → head name) and
    ``num_features``, and build ``avgpool``, ``dropout`` and ``fc``. In training mode
    ``forward`` returns ``(logits, *aux)``, the auxiliary logits deepest first.
    """

    aux_min_size = 0  # smallest H, W the auxiliary heads take in training

    def _check_transform_input(self, transform_input: bool) -> None:
        if transform_input and self.in_chans != 3:
            raise ValueError(f"transform_input needs 3 input channels, got in_chans={self.in_chans}")
        self.transform_input = transform_input

    def _features(self, x: torch.Tensor, with_aux: bool) -> tuple[torch.Tensor, list[torch.Tensor]]:
        if self.transform_input:
            x = tf_input_transform(x)
        aux = []
        for name in self._order:
            x = getattr(self, name)(x)
            if with_aux and name in self._aux_taps:
                aux.insert(0, getattr(self, self._aux_taps[name])(x))  # deepest first
        return x, aux

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self._features(x, with_aux=False)[0]

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = self.dropout(torch.flatten(self.avgpool(x), 1))  # (B, num_features)
        return x if pre_logits else self.fc(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, ...]:
        with_aux = self.training and bool(self._aux_taps)
        if not is_tracing():
            self.check_input(x)
            if with_aux and min(x.shape[-2:]) < self.aux_min_size:
                raise ValueError(
                    f"{self.model_name or type(self).__name__} in training mode needs inputs of at least "
                    f"{self.aux_min_size}x{self.aux_min_size} for its auxiliary classifier; got "
                    f"{x.shape[-2]}x{x.shape[-1]} (use eval mode or aux_logits=False for smaller inputs)"
                )
        x, aux = self._features(x, with_aux)
        logits = self.forward_head(x)
        return (logits, *aux) if with_aux else logits

    def get_classifier(self) -> nn.Module:
        return self.fc

    def reset_classifier(self, num_classes: int) -> None:
        self.num_classes = num_classes
        self.fc = nn.Linear(self.num_features, num_classes) if num_classes > 0 else nn.Identity()
        for head in self._aux_taps.values():
            getattr(self, head).reset_classifier(num_classes)


# ---------------------------------------------------------------------------- GoogLeNet


class InceptionModule(nn.Module):
    """Return the concatenation of 1x1, 1x1→3x3, 1x1→5x5 and 3x3 max-pool→1x1 branches (Fig. 2b)."""

    def __init__(
        self,
        in_chs: int,
        ch1x1: int,
        ch3x3red: int,
        ch3x3: int,
        ch5x5red: int,
        ch5x5: int,
        pool_proj: int,
        *,
        conv_block: Layer = ConvBnAct,
        kernel_5x5: int = 3,  # 3 in torchvision's layout, 5 in the paper
    ) -> None:
        super().__init__()
        k5 = kernel_5x5
        self.branch1 = conv_block(in_chs, ch1x1, 1)
        self.branch2 = nn.Sequential(
            conv_block(in_chs, ch3x3red, 1), conv_block(ch3x3red, ch3x3, 3, padding=1)
        )
        self.branch3 = nn.Sequential(
            conv_block(in_chs, ch5x5red, 1), conv_block(ch5x5red, ch5x5, k5, padding=k5 // 2)
        )
        self.branch4 = nn.Sequential(
            nn.MaxPool2d(3, 1, padding=1, ceil_mode=True), conv_block(in_chs, pool_proj, 1)
        )
        self.out_chs = ch1x1 + ch3x3 + ch5x5 + pool_proj

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branches = (self.branch1, self.branch2, self.branch3, self.branch4)
        return torch.cat([b(x) for b in branches], dim=1)  # (B, out_chs, H, W)


class InceptionAux(nn.Module):
    """GoogLeNet's auxiliary classifier: 4x4 average pool, 1x1 conv to 128, FC 1024, 70% dropout, FC (§5)."""

    def __init__(
        self, in_chs: int, num_classes: int, *, conv_block: Layer = ConvBnAct, drop_rate: float = 0.7
    ) -> None:
        super().__init__()
        self.conv = conv_block(in_chs, 128, 1)
        self.fc1 = nn.Linear(128 * 4 * 4, 1024)
        self.fc2 = nn.Linear(1024, num_classes) if num_classes > 0 else nn.Identity()
        self.dropout = nn.Dropout(drop_rate)

    def reset_classifier(self, num_classes: int) -> None:
        self.fc2 = nn.Linear(1024, num_classes) if num_classes > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(F.adaptive_avg_pool2d(x, 4))  # (B, 128, 4, 4)
        x = self.dropout(F.relu(self.fc1(torch.flatten(x, 1)), inplace=True))  # (B, 1024)
        return self.fc2(x)


# Table 1 of the paper, one row per Inception module (output = #1x1 + #3x3 + #5x5 + pool proj).
# name, #1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj
GOOGLENET_TABLE: tuple[tuple[str, int, int, int, int, int, int], ...] = (
    ("inception3a", 64, 96, 128, 16, 32, 32),      # 256, 28x28
    ("inception3b", 128, 128, 192, 32, 96, 64),    # 480
    ("inception4a", 192, 96, 208, 16, 48, 64),     # 512, 14x14
    ("inception4b", 160, 112, 224, 24, 64, 64),    # 512
    ("inception4c", 128, 128, 256, 24, 64, 64),    # 512
    ("inception4d", 112, 144, 288, 32, 64, 64),    # 528
    ("inception4e", 256, 160, 320, 32, 128, 128),  # 832
    ("inception5a", 256, 160, 320, 32, 128, 128),  # 832, 7x7
    ("inception5b", 384, 192, 384, 48, 128, 128),  # 1024
)  # fmt: skip
_GOOGLENET_POOLS = {"inception4a": ("maxpool3", 3), "inception5a": ("maxpool4", 2)}  # stride-2 pool before
_GOOGLENET_AUX = {"inception4a": "aux1", "inception4d": "aux2"}  # §5: heads on the outputs of 4a and 4d


class GoogLeNet(_InceptionNet):
    """GoogLeNet: a stem, nine Inception modules, global average pooling and one linear layer.

    In training mode ``forward`` returns ``(logits, aux2_logits, aux1_logits)`` (torchvision's
    order), in eval mode ``logits``; the trainer weights each auxiliary loss by ``aux_loss_weight``.
    """

    def __init__(
        self,
        *,
        num_classes: int = 1000,
        in_chans: int = 3,
        aux_logits: bool = True,
        transform_input: bool = False,
        paper_5x5: bool = False,
        drop_rate: float = 0.4,
        aux_drop_rate: float = 0.7,
        norm_layer: Layer | None = BatchNorm,
        act_layer: Layer = ReLU,
    ) -> None:
        # 15x15 is the smallest input that maxpool3 does not reduce to nothing (as torchvision's min_size)
        super().__init__(in_chans=in_chans, num_classes=num_classes, input_size=(3, 224, 224), min_size=15)
        self._check_transform_input(transform_input)
        self.aux_loss_weight = 0.3  # §5: "the losses of the auxiliary classifiers were weighted by 0.3"
        conv = functools.partial(ConvBnAct, norm_layer=norm_layer, act_layer=act_layer)

        self.conv1 = conv(in_chans, 64, 7, stride=2, padding=3)  # 224 → 112
        self.maxpool1 = nn.MaxPool2d(3, stride=2, ceil_mode=True)  # → 56
        self.conv2 = conv(64, 64, 1)
        self.conv3 = conv(64, 192, 3, padding=1)
        self.maxpool2 = nn.MaxPool2d(3, stride=2, ceil_mode=True)  # → 28
        self._order = ["conv1", "maxpool1", "conv2", "conv3", "maxpool2"]
        chs, aux_in = 192, {}
        for name, *spec in GOOGLENET_TABLE:
            if name in _GOOGLENET_POOLS:
                pool_name, k = _GOOGLENET_POOLS[name]
                self.add_module(pool_name, nn.MaxPool2d(k, stride=2, ceil_mode=True))
                self._order.append(pool_name)
            block = InceptionModule(chs, *spec, conv_block=conv, kernel_5x5=5 if paper_5x5 else 3)
            self.add_module(name, block)
            self._order.append(name)
            chs = aux_in[name] = block.out_chs
        self._aux_taps = dict(_GOOGLENET_AUX) if aux_logits else {}
        self.aux1: InceptionAux | None = None
        self.aux2: InceptionAux | None = None
        aux_head = functools.partial(
            InceptionAux, num_classes=num_classes, conv_block=conv, drop_rate=aux_drop_rate
        )
        for tap, head in self._aux_taps.items():
            setattr(self, head, aux_head(aux_in[tap]))
        self.training_only_modules = tuple(self._aux_taps.values())
        self.num_features = chs
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(drop_rate)
        self.fc = nn.Linear(chs, num_classes) if num_classes > 0 else nn.Identity()
        self.feature_info = [
            dict(module="conv1", num_chs=64, reduction=2),
            dict(module="conv3", num_chs=192, reduction=4),
            dict(module="inception3b", num_chs=480, reduction=8),
            dict(module="inception4e", num_chs=832, reduction=16),
            dict(module="inception5b", num_chs=1024, reduction=32),
        ]
        # No scheme in the paper. torchvision's: normal, std 0.01 (its ±2 truncation never bites).
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.normal_(m.weight, std=0.01)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)


# ---------------------------------------------------------------------------- Inception v3


@dataclass(frozen=True)
class Conv:
    """One conv-norm-act of an Inception-v3 branch, named as torchvision names it.

    Stride-1 convolutions keep the grid ("same" padding); stride-2 ones are unpadded.
    """

    name: str
    out_chs: int
    kernel: int | tuple[int, int]
    stride: int = 1

    @property
    def padding(self) -> tuple[int, int]:
        kh, kw = (self.kernel, self.kernel) if isinstance(self.kernel, int) else self.kernel
        return (kh // 2, kw // 2) if self.stride == 1 else (0, 0)


# A branch is a sequence of steps: a Conv, a 3x3 pool ("avg": stride 1, padded, keeps the
# grid; "max/2": stride 2, unpadded, reduces it), or a tuple of Convs applied to the same
# input and concatenated (Fig. 7's expanded filter bank: 1x3 and 3x1 side by side).
Step = Conv | str | tuple[Conv, ...]
Branch = tuple[Step, ...]


def _block_a(pool_chs: int) -> tuple[Branch, ...]:
    """35x35 module (Fig. 5; the released model keeps a 5x5 branch beside the double 3x3)."""
    return (
        (Conv("branch1x1", 64, 1),),
        (Conv("branch5x5_1", 48, 1), Conv("branch5x5_2", 64, 5)),
        (Conv("branch3x3dbl_1", 64, 1), Conv("branch3x3dbl_2", 96, 3), Conv("branch3x3dbl_3", 96, 3)),
        ("avg", Conv("branch_pool", pool_chs, 1)),
    )


def _block_b() -> tuple[Branch, ...]:
    """35 → 17 grid reduction: stride-2 convolution and pooling branches side by side (Fig. 10)."""
    return (
        (Conv("branch3x3", 384, 3, 2),),
        (Conv("branch3x3dbl_1", 64, 1), Conv("branch3x3dbl_2", 96, 3), Conv("branch3x3dbl_3", 96, 3, 2)),
        ("max/2",),
    )


def _block_c(c7: int) -> tuple[Branch, ...]:
    """17x17 module, 7x7 convolutions factorised into 1x7 and 7x1 (Fig. 6, n = 7)."""
    return (
        (Conv("branch1x1", 192, 1),),
        (Conv("branch7x7_1", c7, 1), Conv("branch7x7_2", c7, (1, 7)), Conv("branch7x7_3", 192, (7, 1))),
        (Conv("branch7x7dbl_1", c7, 1), Conv("branch7x7dbl_2", c7, (7, 1)),
         Conv("branch7x7dbl_3", c7, (1, 7)), Conv("branch7x7dbl_4", c7, (7, 1)),
         Conv("branch7x7dbl_5", 192, (1, 7))),
        ("avg", Conv("branch_pool", 192, 1)),
    )  # fmt: skip


def _block_d() -> tuple[Branch, ...]:
    """17 → 8 grid reduction."""
    return (
        (Conv("branch3x3_1", 192, 1), Conv("branch3x3_2", 320, 3, 2)),
        (Conv("branch7x7x3_1", 192, 1), Conv("branch7x7x3_2", 192, (1, 7)),
         Conv("branch7x7x3_3", 192, (7, 1)), Conv("branch7x7x3_4", 192, 3, 2)),
        ("max/2",),
    )  # fmt: skip


def _block_e() -> tuple[Branch, ...]:
    """8x8 module with expanded filter banks (Fig. 7)."""
    return (
        (Conv("branch1x1", 320, 1),),
        (Conv("branch3x3_1", 384, 1), (Conv("branch3x3_2a", 384, (1, 3)), Conv("branch3x3_2b", 384, (3, 1)))),
        (Conv("branch3x3dbl_1", 448, 1), Conv("branch3x3dbl_2", 384, 3),
         (Conv("branch3x3dbl_3a", 384, (1, 3)), Conv("branch3x3dbl_3b", 384, (3, 1)))),
        ("avg", Conv("branch_pool", 192, 1)),
    )  # fmt: skip


class InceptionV3Block(nn.Module):
    """Return the concatenation of parallel branches, each a sequence of convs, pools and filter banks."""

    def __init__(self, in_chs: int, branches: Sequence[Branch], *, conv_block: Layer = ConvBnAct) -> None:
        super().__init__()
        self.branches = tuple(branches)  # the plan; the convolutions are attributes named as torchvision's
        self.out_chs = 0
        for branch in self.branches:
            chs = in_chs
            for step in branch:
                if isinstance(step, str):
                    if step not in ("avg", "max/2"):
                        raise ValueError(f"pool step must be 'avg' or 'max/2', got {step!r}")
                    continue
                bank = step if isinstance(step, tuple) else (step,)
                for c in bank:
                    self.add_module(c.name, conv_block(chs, c.out_chs, c.kernel, c.stride, c.padding))
                chs = sum(c.out_chs for c in bank)
            self.out_chs += chs

    def _step(self, step: Step, x: torch.Tensor) -> torch.Tensor:
        if step == "avg":
            return F.avg_pool2d(x, 3, stride=1, padding=1)
        if step == "max/2":
            return F.max_pool2d(x, 3, stride=2)
        if isinstance(step, tuple):
            return torch.cat([getattr(self, c.name)(x) for c in step], dim=1)
        return getattr(self, step.name)(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outs = []
        for branch in self.branches:
            y = x
            for step in branch:
                y = self._step(step, y)
            outs.append(y)
        return torch.cat(outs, dim=1)  # (B, out_chs, H', W')


class InceptionV3Aux(nn.Module):
    """Inception v3's auxiliary classifier: 5x5/3 average pool, 1x1 conv to 128, 5x5 conv to 768, FC."""

    def __init__(self, in_chs: int, num_classes: int, *, conv_block: Layer = ConvBnAct) -> None:
        super().__init__()
        self.conv0 = conv_block(in_chs, 128, 1)
        self.conv1 = conv_block(128, 768, 5)
        self.fc = nn.Linear(768, num_classes) if num_classes > 0 else nn.Identity()

    def reset_classifier(self, num_classes: int) -> None:
        self.fc = nn.Linear(768, num_classes) if num_classes > 0 else nn.Identity()

    def _conv1(self, x: torch.Tensor) -> torch.Tensor:
        # A one-image training batch leaves one value per channel after this conv (1x1 maps), which
        # BatchNorm refuses (zero batch variance): normalise it with the running statistics instead.
        c, bn = self.conv1, self.conv1.bn
        if not self.training or is_tracing() or not isinstance(bn, nn.BatchNorm2d):
            return c(x)
        y = c.conv(x)
        if y.numel() == y.shape[1]:
            return c.act(F.batch_norm(y, bn.running_mean, bn.running_var, bn.weight, bn.bias, eps=bn.eps))
        return c.act(bn(y))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self._conv1(self.conv0(F.avg_pool2d(x, 5, stride=3)))  # 17x17 → 5x5 → (B, 768, 1, 1)
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


# The stem: name, out channels, kernel, stride, padding; a row without settings is a 3x3/2 max-pool.
INCEPTION_V3_STEM: tuple[tuple, ...] = (
    ("Conv2d_1a_3x3", 32, 3, 2, 0),   # 299 → 149
    ("Conv2d_2a_3x3", 32, 3, 1, 0),   # → 147
    ("Conv2d_2b_3x3", 64, 3, 1, 1),
    ("maxpool1",),                    # → 73
    ("Conv2d_3b_1x1", 80, 1, 1, 0),
    ("Conv2d_4a_3x3", 192, 3, 1, 0),  # → 71
    ("maxpool2",),                    # → 35
)  # fmt: skip
INCEPTION_V3_LAYOUT: tuple[tuple[str, tuple[Branch, ...]], ...] = (
    ("Mixed_5b", _block_a(32)),   # 35x35, 256 channels
    ("Mixed_5c", _block_a(64)),   # 288
    ("Mixed_5d", _block_a(64)),   # 288
    ("Mixed_6a", _block_b()),     # 17x17, 768
    ("Mixed_6b", _block_c(128)),  # 768
    ("Mixed_6c", _block_c(160)),
    ("Mixed_6d", _block_c(160)),
    ("Mixed_6e", _block_c(192)),  # 768, read by the auxiliary classifier
    ("Mixed_7a", _block_d()),     # 8x8, 1280
    ("Mixed_7b", _block_e()),     # 2048
    ("Mixed_7c", _block_e()),     # 2048
)  # fmt: skip


class InceptionV3(_InceptionNet):
    """Inception v3: a plain stem, eleven mixed modules with two grid reductions, pooling and one FC.

    In training mode ``forward`` returns ``(logits, aux_logits)``, in eval mode ``logits``.
    """

    # The auxiliary head needs a 17x17 grid after Mixed_6e (5x5/3 pool, then an unpadded 5x5
    # conv); tracing the strides back to the input gives 299x299.
    aux_min_size = 299

    def __init__(
        self,
        *,
        num_classes: int = 1000,
        in_chans: int = 3,
        aux_logits: bool = True,
        transform_input: bool = False,
        drop_rate: float = 0.5,
        norm_layer: Layer | None = BatchNorm,
        act_layer: Layer = ReLU,
    ) -> None:
        # 75x75 is the smallest input whose grid survives both reductions (torchvision's min_size)
        super().__init__(in_chans=in_chans, num_classes=num_classes, input_size=(3, 299, 299), min_size=75)
        self._check_transform_input(transform_input)
        self.aux_loss_weight = 0.4  # not in the paper: the weight of PyTorch's fine-tuning recipe
        conv = functools.partial(ConvBnAct, norm_layer=norm_layer, act_layer=act_layer)

        self._order: list[str] = []
        chs = in_chans
        for name, *spec in INCEPTION_V3_STEM:
            self.add_module(name, conv(chs, *spec) if spec else nn.MaxPool2d(3, stride=2))
            self._order.append(name)
            chs = spec[0] if spec else chs
        self._aux_taps = {"Mixed_6e": "AuxLogits"} if aux_logits else {}
        self.AuxLogits: InceptionV3Aux | None = None
        for name, branches in INCEPTION_V3_LAYOUT:
            block = InceptionV3Block(chs, branches, conv_block=conv)
            self.add_module(name, block)
            self._order.append(name)
            chs = block.out_chs
            if name in self._aux_taps:  # registered here for torchvision's key order
                self.AuxLogits = InceptionV3Aux(chs, num_classes, conv_block=conv)
        self.training_only_modules = tuple(self._aux_taps.values())
        self.num_features = chs
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(drop_rate)
        self.fc = nn.Linear(chs, num_classes) if num_classes > 0 else nn.Identity()
        self.feature_info = [
            dict(module="Conv2d_2b_3x3", num_chs=64, reduction=2),
            dict(module="Conv2d_4a_3x3", num_chs=192, reduction=4),
            dict(module="Mixed_5d", num_chs=288, reduction=8),
            dict(module="Mixed_6e", num_chs=768, reduction=16),
            dict(module="Mixed_7c", num_chs=2048, reduction=32),
        ]
        # torchvision's: normal, std 0.1 (its ±2 truncation never bites); aux 5x5 conv 0.01, aux FC 0.001.
        stds = {id(self.AuxLogits.conv1.conv): 0.01, id(self.AuxLogits.fc): 0.001} if self.AuxLogits else {}
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                std = stds.get(id(m), 0.1)
                nn.init.normal_(m.weight, std=std)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)


# ---------------------------------------------------------------------------- builders


@register_model(
    family="googlenet",
    year=2014,
    paper="Going Deeper with Convolutions",
    authors=("Szegedy", "Liu", "Jia", "Sermanet", "Reed", "Anguelov", "Erhan", "Vanhoucke", "Rabinovich"),
    venue="CVPR",
    venue_year=2015,
    arxiv="1409.4842",
    input_size=(3, 224, 224),
    key_idea="Inception modules: parallel 1x1/3x3/5x5/pool branches; 1x1 reductions keep 22 layers cheap.",
    ref_params=6_624_904,
    ref_params_source="torchvision GoogLeNet_Weights meta num_params (the inference network); training adds "
    "the two auxiliary heads, 3,188,968 (aux1) + 3,191,016 (aux2) by hand count",
    ref_params_train=13_004_888,
    ref_top1=69.778,
    ref_top1_kind="recipe",
    ref_top1_source="torchvision GoogLeNet_Weights.IMAGENET1K_V1 (ported from the original model)",
    torchvision="googlenet",
    notes="Both auxiliary classifiers (on 4a and 4d): train-mode forward returns (logits, aux2, aux1); "
    "aux_loss_weight = 0.3, the paper's weight (§5). BatchNorm after every conv and a 3x3 kernel in the "
    "'5x5' branch follow torchvision's layout (the paper has no BN; paper_5x5=True and batch_norm=False "
    "restore the paper). transform_input=True for torchvision's ported weights.",
)
def googlenet(
    *,
    num_classes: int = 1000,
    in_chans: int = 3,
    aux_logits: bool = True,
    transform_input: bool = False,
    paper_5x5: bool = False,
    batch_norm: bool = True,
    drop_rate: float = 0.4,
) -> GoogLeNet:
    """Return GoogLeNet (Inception v1) with torchvision's layout and both auxiliary classifiers."""
    norm_layer = BatchNorm if batch_norm else None
    return GoogLeNet(
        num_classes=num_classes,
        in_chans=in_chans,
        aux_logits=aux_logits,
        transform_input=transform_input,
        paper_5x5=paper_5x5,
        drop_rate=drop_rate,
        norm_layer=norm_layer,
    )


@register_model(
    family="googlenet",
    year=2015,
    paper="Rethinking the Inception Architecture for Computer Vision",
    authors=("Szegedy", "Vanhoucke", "Ioffe", "Shlens", "Wojna"),
    venue="CVPR",
    venue_year=2016,
    arxiv="1512.00567",
    input_size=(3, 299, 299),
    key_idea="Factorised convolutions (nxn into 1xn and nx1), parallel grid reduction, a BN auxiliary head.",
    ref_params=23_834_568,
    ref_params_source="torchvision inception_v3(aux_logits=False) parameter count (the inference network); "
    "training adds the auxiliary head: 27,161,264, torchvision Inception_V3_Weights meta num_params",
    ref_params_train=27_161_264,
    ref_top1=77.294,
    ref_top1_kind="recipe",
    ref_top1_source="torchvision Inception_V3_Weights.IMAGENET1K_V1 (ported from the TF model)",
    torchvision="inception_v3",
    notes="Auxiliary classifier on the 17x17 grid: train-mode forward returns (logits, aux) and needs inputs "
    ">= 299x299. aux_loss_weight = 0.4 as in PyTorch's fine-tuning recipe; the paper gives no weight. Eval "
    "mode runs from 75x75. transform_input=True for torchvision's ported weights.",
)
def inception_v3(
    *,
    num_classes: int = 1000,
    in_chans: int = 3,
    aux_logits: bool = True,
    transform_input: bool = False,
    drop_rate: float = 0.5,
) -> InceptionV3:
    """Return Inception v3 with torchvision's layout and its auxiliary classifier."""
    return InceptionV3(
        num_classes=num_classes,
        in_chans=in_chans,
        aux_logits=aux_logits,
        transform_input=transform_input,
        drop_rate=drop_rate,
    )
