"""Building blocks used by two or more families. Blocks take ``norm_layer`` / ``act_layer`` as arguments."""

from .conv_norm_act import ConvNormAct, same_padding
from .drop_path import DropPath, drop_path
from .eca import EfficientChannelAttention, eca_kernel_size
from .helpers import make_divisible
from .norm import LayerNorm2d
from .se import SqueezeExcite

__all__ = [
    "ConvNormAct",
    "DropPath",
    "EfficientChannelAttention",
    "LayerNorm2d",
    "SqueezeExcite",
    "drop_path",
    "eca_kernel_size",
    "make_divisible",
    "same_padding",
]
