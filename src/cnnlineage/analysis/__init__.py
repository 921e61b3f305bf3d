"""The analyzer: exact per-layer cost, memory and receptive field, and the analytic calculators."""

from .profiler import InputSizeError, LayerRow, Profile, profile

__all__ = ["InputSizeError", "LayerRow", "Profile", "profile"]
