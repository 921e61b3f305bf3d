"""Small arithmetic helpers shared by several families."""

from __future__ import annotations

__all__ = ["make_divisible"]


def make_divisible(
    value: float, divisor: int = 8, min_value: int | None = None, round_limit: float = 0.9
) -> int:
    """Return ``value`` rounded to the nearest multiple of ``divisor``, never below ``round_limit * value``.

    This is the channel rounding of MobileNet v2/v3, EfficientNet and RegNet: widths
    scaled by a multiplier stay hardware-friendly and never shrink by more than 10%.
    """
    min_value = min_value or divisor
    new_value = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if new_value < round_limit * value:
        new_value += divisor
    return new_value
