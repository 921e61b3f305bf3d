"""Xception — Chollet, "Xception: Deep Learning with Depthwise Separable Convolutions",
CVPR 2017, arXiv:1610.02357.

Inception modules taken to their extreme: if cross-channel and spatial correlations can be
mapped separately, every Inception tower can be replaced by a depthwise separable
convolution, a k×k convolution applied to each channel on its own followed by a 1×1
convolution across channels. Xception has 36 convolutional layers (two plain 3×3 in the
stem, 34 separable) in 14 modules, all but the first and last with linear residual
connections (Fig. 5): an entry flow (down to 19×19 with 728 channels), a middle flow of
eight identical modules and an exit flow.

As in the paper's Keras implementation there is no nonlinearity between the depthwise and
the pointwise step (best in the paper's experiment on an intermediate activation), and
every separable convolution is followed by batch normalisation. Module names are our own
(stem, entry_flow, middle_flow, exit_flow); ``remap_timm`` renames timm's
``legacy_xception`` (the Keras port) to them.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import torch
import torch.nn as nn

from ..layers.conv_norm_act import ConvNormAct
from ..registry import register_model
from ._base import LineageModel

__all__ = ["SeparableConv2d", "XceptionBlock", "Xception"]


class SeparableConv2d(nn.Module):
    """Return pointwise(depthwise(x)): a k×k convolution per channel, then a 1×1 across channels, no bias.

    Parameters: in·k² + in·out, against in·out·k² for a full convolution.
    """

    def __init__(
        self,
        in_chs: int,
        out_chs: int,
        kernel_size: int = 3,
        stride: int = 1,
        padding: int = 1,
        dilation: int = 1,
    ) -> None:
        super().__init__()
        self.depthwise = nn.Conv2d(
            in_chs, in_chs, kernel_size, stride, padding, dilation=dilation, groups=in_chs, bias=False
        )
        self.pointwise = nn.Conv2d(in_chs, out_chs, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise(self.depthwise(x))


class XceptionBlock(nn.Module):
    """Return rep(x) + skip(x): ``reps`` × [ReLU, SeparableConv3×3, BN], an optional 3×3/2 max-pool,
    and a residual that is the identity or, where width or stride change, a 1×1 strided conv + BN (Fig. 5).

    ``start_with_act=False`` drops the leading ReLU (the first entry-flow block follows the
    stem's ReLU); ``grow_first`` says whether the first (True) or the last separable conv
    changes the width (the exit-flow block keeps 728 until its last conv).
    """

    def __init__(
        self,
        in_chs: int,
        out_chs: int,
        reps: int,
        stride: int = 1,
        *,
        start_with_act: bool = True,
        grow_first: bool = True,
        norm_layer: Callable[[int], nn.Module] = nn.BatchNorm2d,
        act_layer: Callable[..., nn.Module] = nn.ReLU,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for i in range(reps):
            if grow_first:
                c_in, c_out = (in_chs if i == 0 else out_chs), out_chs
            else:
                c_in, c_out = in_chs, (in_chs if i < reps - 1 else out_chs)
            if i > 0 or start_with_act:
                # the first ReLU must not overwrite x: the residual still needs it
                layers.append(act_layer(inplace=i > 0))
            layers += [SeparableConv2d(c_in, c_out, 3, padding=1), norm_layer(c_out)]
        if stride != 1:
            layers.append(nn.MaxPool2d(3, stride, padding=1))
        self.rep = nn.Sequential(*layers)
        if in_chs != out_chs or stride != 1:
            self.skip = ConvNormAct(in_chs, out_chs, 1, stride, norm_layer=norm_layer, act_layer=None)
        else:
            self.skip = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.rep(x) + self.skip(x)


# Fig. 5, one row per module: in, out, separable convs, stride, starts with ReLU, grows first
ENTRY_FLOW = (
    (64, 128, 2, 2, False, True),
    (128, 256, 2, 2, True, True),
    (256, 728, 2, 2, True, True),
)
MIDDLE_FLOW = ((728, 728, 3, 1, True, True),) * 8  # "repeated eight times"
EXIT_FLOW = ((728, 1024, 2, 2, True, False),)
STEM_WIDTHS = (32, 64)  # two plain 3×3 convolutions, the first with stride 2, both unpadded
EXIT_WIDTHS = (1536, 2048)  # two separable convolutions + ReLU after the last module


class Xception(LineageModel):
    """Xception: stem → entry flow (3 modules) → middle flow (8) → exit flow (1 + 2 sep. convs) → fc."""

    def __init__(
        self,
        *,
        num_classes: int = 1000,
        in_chans: int = 3,
        drop_rate: float = 0.5,
        norm_layer: Callable[[int], nn.Module] = nn.BatchNorm2d,
        act_layer: Callable[..., nn.Module] = nn.ReLU,
    ) -> None:
        # Two unpadded 3×3 convs, the first strided: 7 → 3 → 1 is the smallest input; every
        # later stride-2 step (max-pool and 1×1 skip alike) maps H to ceil(H / 2).
        super().__init__(
            in_chans=in_chans, num_classes=num_classes, input_size=(in_chans, 299, 299), min_size=7
        )
        c1, c2 = STEM_WIDTHS
        self.stem = nn.Sequential(
            ConvNormAct(
                in_chans, c1, 3, 2, padding=0, norm_layer=norm_layer, act_layer=act_layer
            ),  # 299 → 149
            ConvNormAct(c1, c2, 3, 1, padding=0, norm_layer=norm_layer, act_layer=act_layer),  # 149 → 147
        )

        def flow(table: tuple[tuple[int, int, int, int, bool, bool], ...]) -> list[nn.Module]:
            return [
                XceptionBlock(
                    i, o, r, s, start_with_act=a, grow_first=g, norm_layer=norm_layer, act_layer=act_layer
                )
                for i, o, r, s, a, g in table
            ]

        self.entry_flow = nn.Sequential(*flow(ENTRY_FLOW))  # 147 → 74 → 37 → 19
        self.middle_flow = nn.Sequential(*flow(MIDDLE_FLOW))
        exit_layers = flow(EXIT_FLOW)  # 19 → 10
        chs = EXIT_FLOW[-1][1]
        for width in EXIT_WIDTHS:
            exit_layers.append(
                nn.Sequential(
                    SeparableConv2d(chs, width, 3, padding=1), norm_layer(width), act_layer(inplace=True)
                )
            )
            chs = width
        self.exit_flow = nn.Sequential(*exit_layers)
        self.num_features = chs

        self.feature_info = [
            dict(module="stem", num_chs=c2, reduction=2),
            *(
                dict(module=f"entry_flow.{i}", num_chs=row[1], reduction=2 ** (i + 2))
                for i, row in enumerate(ENTRY_FLOW)
            ),
            dict(module="middle_flow", num_chs=MIDDLE_FLOW[-1][1], reduction=16),
            dict(module="exit_flow", num_chs=chs, reduction=32),
        ]

        self.global_pool = nn.AdaptiveAvgPool2d(1)
        # dropout 0.5 before the logistic regression layer on ImageNet ("Regularization configuration")
        self.drop = nn.Dropout(drop_rate)
        self.fc = nn.Linear(chs, num_classes) if num_classes > 0 else nn.Identity()
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        x = self.entry_flow(x)
        x = self.middle_flow(x)
        return self.exit_flow(x)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = self.drop(torch.flatten(self.global_pool(x), 1))  # (B, 2048)
        return x if pre_logits else self.fc(x)

    def get_classifier(self) -> nn.Module:
        return self.fc

    def reset_classifier(self, num_classes: int) -> None:
        self.num_classes = num_classes
        self.fc = nn.Linear(self.num_features, num_classes) if num_classes > 0 else nn.Identity()

    def remap_timm(self, state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Return timm's ``legacy_xception`` state_dict under our module names.

        timm (after the Keras port) numbers the modules ``block1``-``block12``, names the
        stem ``conv1/bn1/conv2/bn2`` and the last two separable convs ``conv3/bn3/conv4/bn4``,
        the depthwise step ``conv1`` and the residual ``skip``/``skipbn``.
        """
        n_entry, n_middle = len(ENTRY_FLOW), len(MIDDLE_FLOW)

        def block(m: re.Match) -> str:
            i = int(m.group(1)) - 1
            if i < n_entry:
                return f"entry_flow.{i}."
            if i < n_entry + n_middle:
                return f"middle_flow.{i - n_entry}."
            return f"exit_flow.{i - n_entry - n_middle}."

        n_exit = len(EXIT_FLOW)
        rules: list[tuple[str, str | Callable[[re.Match], str]]] = [
            (r"^conv([12])\.", lambda m: f"stem.{int(m.group(1)) - 1}.0."),
            (r"^bn([12])\.", lambda m: f"stem.{int(m.group(1)) - 1}.1."),
            (r"^conv([34])\.", lambda m: f"exit_flow.{n_exit + int(m.group(1)) - 3}.0."),
            (r"^bn([34])\.", lambda m: f"exit_flow.{n_exit + int(m.group(1)) - 3}.1."),
            (r"^block(\d+)\.", block),
            (r"\.skip\.", ".skip.0."),
            (r"\.skipbn\.", ".skip.1."),
            (r"\.conv1\.weight$", ".depthwise.weight"),  # separable conv's depthwise step
        ]
        out = {}
        for key, value in state_dict.items():
            for pattern, repl in rules:
                key = re.sub(pattern, repl, key)
            out[key] = value
        return out


@register_model(
    family="xception",
    year=2016,
    paper="Xception: Deep Learning with Depthwise Separable Convolutions",
    authors=("Chollet",),
    venue="CVPR",
    venue_year=2017,
    arxiv="1610.02357",
    key_idea="Replace Inception modules by depthwise separable convolutions with residual connections.",
    input_size=(3, 299, 299),
    ref_params=22_855_952,
    ref_params_source="Chollet 2017, Table 3 (22,855,952); equal to timm legacy_xception",
    ref_top1=79.0,
    ref_top1_kind="paper",
    ref_top1_source="Chollet 2017, Table 1 (single crop, single model)",
    timm="legacy_xception",
    notes="Inputs normalised to [-1, 1] (mean = std = 0.5) for the timm weights. Trained with SGD, "
    "weight decay 1e-5 and dropout 0.5 before the classifier (drop_rate).",
)
def xception(*, num_classes: int = 1000, in_chans: int = 3, drop_rate: float = 0.5) -> Xception:
    """Return Xception for 299×299 inputs (entry, middle ×8 and exit flows)."""
    return Xception(num_classes=num_classes, in_chans=in_chans, drop_rate=drop_rate)
