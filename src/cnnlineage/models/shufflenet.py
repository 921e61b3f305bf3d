"""ShuffleNet v1 and v2.

ShuffleNet — Zhang, Zhou, Lin & Sun, "ShuffleNet: An Extremely Efficient Convolutional
Neural Network for Mobile Devices", CVPR 2018, arXiv:1707.01083. In tiny networks the
dense 1×1 convolutions of a bottleneck cost most of the compute, so ShuffleNet makes them
group convolutions; to let information cross between groups, a *channel shuffle* after
the first one hands every group of the next layer one channel of every group before it.

ShuffleNet V2 — Ma, Zhang, Zheng & Sun, "ShuffleNet V2: Practical Guidelines for Efficient
CNN Architecture Design", ECCV 2018, arXiv:1807.11164. FLOPs are not speed: memory access
and fragmentation matter too. Guided by four rules (equal channel widths, few groups,
little fragmentation, few element-wise operations), each unit splits its channels in two,
leaves one half untouched, passes the other through 1×1 → depthwise 3×3 → 1×1 (no groups),
concatenates and shuffles. Module names are torchvision's, so its state_dicts load as they are.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn as nn

from ..layers.conv_norm_act import ConvNormAct
from ..registry import register_model
from ._base import LineageModel

__all__ = ["channel_shuffle", "ShuffleV1Unit", "ShuffleNetV1", "ShuffleV2Unit", "ShuffleNetV2"]


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    """Return ``x`` with channels seen as (groups, n), transposed to (n, groups) and flattened (§3.1, Fig 1c).

    Channel ``j·n + i`` (the i-th of group j) moves to position ``i·groups + j``.
    """
    b, c, h, w = x.shape
    x = x.view(b, groups, c // groups, h, w)  # (B, g, n, H, W)
    x = x.transpose(1, 2).contiguous()  # (B, n, g, H, W)
    return x.view(b, c, h, w)


# --------------------------------------------------------------------------- ShuffleNet v1
class ShuffleV1Unit(nn.Module):
    """ShuffleNet unit (Fig. 2b/c): GConv1×1-BN-ReLU, shuffle, DWConv3×3-BN, GConv1×1-BN, add/concat, ReLU.

    At stride 1 the branch is added to the input; at stride 2 the shortcut is a 3×3/2
    average pool and the branch, which then makes ``out_chs - in_chs`` maps, is
    concatenated to it. The bottleneck is a quarter of ``out_chs`` (§3.3).
    ``group_first=False`` makes the first 1×1 dense: the paper does so in the very first
    unit of Stage 2, whose 24 input channels are too few to split.
    """

    def __init__(
        self,
        in_chs: int,
        out_chs: int,
        stride: int,
        groups: int,
        *,
        group_first: bool = True,
        norm_layer: Callable[[int], nn.Module] = nn.BatchNorm2d,
        act_layer: Callable[..., nn.Module] = nn.ReLU,
    ) -> None:
        super().__init__()
        if stride not in (1, 2):
            raise ValueError(f"ShuffleNet units have stride 1 or 2, got {stride}")
        if stride == 1 and in_chs != out_chs:
            raise ValueError(
                f"a stride-1 unit adds its input, so in_chs must equal out_chs; got {in_chs}, {out_chs}"
            )
        mid_chs = out_chs // 4
        branch_chs = out_chs - in_chs if stride == 2 else out_chs
        self.groups = groups
        self.stride = stride
        self.conv1 = ConvNormAct(
            in_chs,
            mid_chs,
            1,
            groups=groups if group_first else 1,
            norm_layer=norm_layer,
            act_layer=act_layer,
        )
        # no ReLU after the depthwise conv: "we do not use ReLU after depthwise convolution" (§3.2)
        self.conv2 = ConvNormAct(
            mid_chs, mid_chs, 3, stride, groups=mid_chs, norm_layer=norm_layer, act_layer=None
        )
        self.conv3 = ConvNormAct(mid_chs, branch_chs, 1, groups=groups, norm_layer=norm_layer, act_layer=None)
        self.shortcut = nn.AvgPool2d(3, stride=2, padding=1) if stride == 2 else nn.Identity()
        self.act = act_layer(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = channel_shuffle(self.conv1(x), self.groups)
        y = self.conv3(self.conv2(y))
        if self.stride == 2:
            out = torch.cat((self.shortcut(x), y), dim=1)  # (B, in_chs + branch_chs, H/2, W/2)
        else:
            out = x + y
        return self.act(out)


# Table 1: output channels of Stages 2-4 at 1× for each number of groups g (bottleneck = 1/4 of them).
V1_STAGE_WIDTHS: dict[int, tuple[int, int, int]] = {
    1: (144, 288, 576),
    2: (200, 400, 800),
    3: (240, 480, 960),
    4: (272, 544, 1088),
    8: (384, 768, 1536),
}
V1_STAGE_REPEATS = (4, 8, 4)  # one stride-2 unit, then 3, 7, 3 stride-1 units
V1_STEM_WIDTH = 24


class ShuffleNetV1(LineageModel):
    """ShuffleNet v1: Conv3×3/2 (24) → MaxPool3×3/2 → Stages 2-4 of ShuffleNet units → global pool → fc."""

    def __init__(
        self,
        *,
        groups: int = 3,
        num_classes: int = 1000,
        in_chans: int = 3,
        norm_layer: Callable[[int], nn.Module] = nn.BatchNorm2d,
        act_layer: Callable[..., nn.Module] = nn.ReLU,
    ) -> None:
        if groups not in V1_STAGE_WIDTHS:
            raise ValueError(
                f"ShuffleNet v1 is defined for groups in {sorted(V1_STAGE_WIDTHS)}, got {groups}"
            )
        # every layer is padded and maps H to ceil(H / stride): any size works
        super().__init__(
            in_chans=in_chans, num_classes=num_classes, input_size=(in_chans, 224, 224), min_size=1
        )
        self.groups = groups
        self.conv1 = ConvNormAct(in_chans, V1_STEM_WIDTH, 3, 2, norm_layer=norm_layer, act_layer=act_layer)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        self.feature_info = [dict(module="maxpool", num_chs=V1_STEM_WIDTH, reduction=4)]
        chs, red = V1_STEM_WIDTH, 4
        for s, (width, repeats) in enumerate(zip(V1_STAGE_WIDTHS[groups], V1_STAGE_REPEATS)):
            units = [
                ShuffleV1Unit(
                    chs if i == 0 else width,
                    width,
                    2 if i == 0 else 1,
                    groups,
                    group_first=not (s == 0 and i == 0),
                    norm_layer=norm_layer,
                    act_layer=act_layer,
                )
                for i in range(repeats)
            ]
            setattr(self, f"stage{s + 2}", nn.Sequential(*units))
            chs, red = width, red * 2
            self.feature_info.append(dict(module=f"stage{s + 2}", num_chs=chs, reduction=red))
        self.num_features = chs
        self.global_pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(chs, num_classes) if num_classes > 0 else nn.Identity()

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.conv1(x))
        return self.stage4(self.stage3(self.stage2(x)))

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = torch.flatten(self.global_pool(x), 1)  # (B, C)
        return x if pre_logits else self.fc(x)

    def get_classifier(self) -> nn.Module:
        return self.fc

    def reset_classifier(self, num_classes: int) -> None:
        self.num_classes = num_classes
        self.fc = nn.Linear(self.num_features, num_classes) if num_classes > 0 else nn.Identity()


# --------------------------------------------------------------------------- ShuffleNet v2
class ShuffleV2Unit(nn.Module):
    """ShuffleNet V2 unit (Fig. 3c/d): split, transform one half, concatenate, shuffle with 2 groups.

    At stride 1 the input is split into two halves and only the second passes ``branch2``
    (1×1-BN-ReLU, DW3×3-BN, 1×1-BN-ReLU). At stride 2 there is no split: both branches see
    the whole input, ``branch1`` being DW3×3/2-BN, 1×1-BN-ReLU, and the output doubles the
    channels. Layers sit in flat Sequentials at torchvision's indices.
    """

    def __init__(
        self,
        in_chs: int,
        out_chs: int,
        stride: int,
        *,
        norm_layer: Callable[[int], nn.Module] = nn.BatchNorm2d,
        act_layer: Callable[..., nn.Module] = nn.ReLU,
    ) -> None:
        super().__init__()
        if stride not in (1, 2):
            raise ValueError(f"ShuffleNet V2 units have stride 1 or 2, got {stride}")
        branch_chs = out_chs // 2
        if stride == 1 and in_chs != 2 * branch_chs:
            raise ValueError(
                f"a stride-1 unit keeps its width: in_chs must be {2 * branch_chs}, got {in_chs}"
            )
        self.stride = stride

        def dw(c: int) -> nn.Conv2d:
            return nn.Conv2d(c, c, 3, stride, 1, groups=c, bias=False)

        def pw(c_in: int, c_out: int) -> nn.Conv2d:
            return nn.Conv2d(c_in, c_out, 1, bias=False)

        if stride == 2:
            self.branch1 = nn.Sequential(
                dw(in_chs),
                norm_layer(in_chs),
                pw(in_chs, branch_chs),
                norm_layer(branch_chs),
                act_layer(inplace=True),
            )
        else:
            self.branch1 = nn.Sequential()
        self.branch2 = nn.Sequential(
            pw(in_chs if stride == 2 else branch_chs, branch_chs),
            norm_layer(branch_chs),
            act_layer(inplace=True),
            dw(branch_chs),
            norm_layer(branch_chs),
            pw(branch_chs, branch_chs),
            norm_layer(branch_chs),
            act_layer(inplace=True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride == 1:
            x1, x2 = x.chunk(2, dim=1)  # channel split (§4): two (B, C/2, H, W) halves
            out = torch.cat((x1, self.branch2(x2)), dim=1)
        else:
            out = torch.cat((self.branch1(x), self.branch2(x)), dim=1)
        return channel_shuffle(out, 2)


# Table 5: output channels of Conv1, Stages 2-4 and Conv5 per width multiplier.
V2_WIDTHS: dict[str, tuple[int, int, int, int, int]] = {
    "0.5": (24, 48, 96, 192, 1024),
    "1.0": (24, 116, 232, 464, 1024),
    "1.5": (24, 176, 352, 704, 1024),
    "2.0": (24, 244, 488, 976, 2048),
}
V2_STAGE_REPEATS = (4, 8, 4)


class ShuffleNetV2(LineageModel):
    """ShuffleNet V2: Conv3×3/2 → MaxPool3×3/2 → Stages 2-4 → Conv1×1 → global pool → fc (Table 5)."""

    def __init__(
        self,
        *,
        widths: tuple[int, int, int, int, int] = V2_WIDTHS["1.0"],
        repeats: tuple[int, int, int] = V2_STAGE_REPEATS,
        num_classes: int = 1000,
        in_chans: int = 3,
        norm_layer: Callable[[int], nn.Module] = nn.BatchNorm2d,
        act_layer: Callable[..., nn.Module] = nn.ReLU,
    ) -> None:
        if len(widths) != 5 or len(repeats) != 3:
            raise ValueError(f"expected 5 widths and 3 stage repeats, got {widths} and {repeats}")
        super().__init__(
            in_chans=in_chans, num_classes=num_classes, input_size=(in_chans, 224, 224), min_size=1
        )
        self.conv1 = ConvNormAct(in_chans, widths[0], 3, 2, norm_layer=norm_layer, act_layer=act_layer)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        self.feature_info = [dict(module="maxpool", num_chs=widths[0], reduction=4)]
        self.stage2: nn.Sequential
        self.stage3: nn.Sequential
        self.stage4: nn.Sequential
        chs, red = widths[0], 4
        for s, (width, n) in enumerate(zip(widths[1:4], repeats)):
            units = [
                ShuffleV2Unit(
                    chs if i == 0 else width,
                    width,
                    2 if i == 0 else 1,
                    norm_layer=norm_layer,
                    act_layer=act_layer,
                )
                for i in range(n)
            ]
            setattr(self, f"stage{s + 2}", nn.Sequential(*units))
            chs, red = width, red * 2
            self.feature_info.append(dict(module=f"stage{s + 2}", num_chs=chs, reduction=red))
        self.conv5 = ConvNormAct(chs, widths[4], 1, norm_layer=norm_layer, act_layer=act_layer)
        self.feature_info.append(dict(module="conv5", num_chs=widths[4], reduction=red))
        self.num_features = widths[4]
        self.global_pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(widths[4], num_classes) if num_classes > 0 else nn.Identity()

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.conv1(x))
        x = self.stage4(self.stage3(self.stage2(x)))
        return self.conv5(x)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = torch.flatten(self.global_pool(x), 1)  # (B, C)
        return x if pre_logits else self.fc(x)

    def get_classifier(self) -> nn.Module:
        return self.fc

    def reset_classifier(self, num_classes: int) -> None:
        self.num_classes = num_classes
        self.fc = nn.Linear(self.num_features, num_classes) if num_classes > 0 else nn.Identity()


# --------------------------------------------------------------------------- builders
_V1 = dict(
    family="shufflenet",
    year=2017,
    paper="ShuffleNet: An Extremely Efficient Convolutional Neural Network for Mobile Devices",
    authors=("Zhang", "Zhou", "Lin", "Sun"),
    venue="CVPR",
    venue_year=2018,
    arxiv="1707.01083",
    input_size=(3, 224, 224),
)
_V2 = dict(
    family="shufflenet",
    year=2018,
    paper="ShuffleNet V2: Practical Guidelines for Efficient CNN Architecture Design",
    authors=("Ma", "Zhang", "Zheng", "Sun"),
    venue="ECCV",
    venue_year=2018,
    arxiv="1807.11164",
    input_size=(3, 224, 224),
    key_idea="Channel split instead of group convolutions: equal widths, fewer memory accesses, real speed.",
    ref_top1_kind="recipe",
    ref_top1_source="torchvision IMAGENET1K_V1 weights metadata (acc@1)",
)


@register_model(
    **_V1,
    key_idea="Pointwise group convolutions made to mix by a channel shuffle: 140 MFLOPs at ImageNet scale.",
    ref_params=1_865_728,
    ref_params_source="hand count (tests/models/test_shufflenet.py); equals osmr/imgclsmob shufflenet_g3_w1",
    ref_top1=67.4,
    ref_top1_kind="paper",
    ref_top1_source="Zhang et al. 2018, Table 2: 32.6% top-1 error for ShuffleNet 1x, g=3",
    notes="1x width, g=3: Stages 2-4 output 240-480-960 channels, about 140 MFLOPs at 224x224. The first "
    "pointwise layer of Stage 2 is a dense 1x1 convolution, as in the paper.",
)
def shufflenet_v1_g3(*, num_classes: int = 1000, in_chans: int = 3) -> ShuffleNetV1:
    """Return ShuffleNet 1× with g = 3 groups."""
    return ShuffleNetV1(groups=3, num_classes=num_classes, in_chans=in_chans)


@register_model(
    **_V2,
    ref_params=1_366_792,
    ref_params_source="torchvision ShuffleNet_V2_X0_5_Weights meta num_params",
    ref_top1=60.552,
    torchvision="shufflenet_v2_x0_5",
)
def shufflenet_v2_x0_5(*, num_classes: int = 1000, in_chans: int = 3) -> ShuffleNetV2:
    """Return ShuffleNet V2 0.5× (Stages 48-96-192, 41 MFLOPs)."""
    return ShuffleNetV2(widths=V2_WIDTHS["0.5"], num_classes=num_classes, in_chans=in_chans)


@register_model(
    **_V2,
    ref_params=2_278_604,
    ref_params_source="torchvision ShuffleNet_V2_X1_0_Weights meta num_params",
    ref_top1=69.362,
    torchvision="shufflenet_v2_x1_0",
)
def shufflenet_v2_x1_0(*, num_classes: int = 1000, in_chans: int = 3) -> ShuffleNetV2:
    """Return ShuffleNet V2 1× (Stages 116-232-464, 146 MFLOPs)."""
    return ShuffleNetV2(widths=V2_WIDTHS["1.0"], num_classes=num_classes, in_chans=in_chans)


@register_model(
    **_V2,
    ref_params=3_503_624,
    ref_params_source="torchvision ShuffleNet_V2_X1_5_Weights meta num_params",
    ref_top1=72.996,
    torchvision="shufflenet_v2_x1_5",
)
def shufflenet_v2_x1_5(*, num_classes: int = 1000, in_chans: int = 3) -> ShuffleNetV2:
    """Return ShuffleNet V2 1.5× (Stages 176-352-704, 299 MFLOPs)."""
    return ShuffleNetV2(widths=V2_WIDTHS["1.5"], num_classes=num_classes, in_chans=in_chans)


@register_model(
    **_V2,
    ref_params=7_393_996,
    ref_params_source="torchvision ShuffleNet_V2_X2_0_Weights meta num_params",
    ref_top1=76.23,
    torchvision="shufflenet_v2_x2_0",
)
def shufflenet_v2_x2_0(*, num_classes: int = 1000, in_chans: int = 3) -> ShuffleNetV2:
    """Return ShuffleNet V2 2× (Stages 244-488-976, Conv5 2048, 591 MFLOPs)."""
    return ShuffleNetV2(widths=V2_WIDTHS["2.0"], num_classes=num_classes, in_chans=in_chans)
