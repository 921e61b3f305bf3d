"""Counting rules: multiply-accumulates and floating-point operations of each aten operator.

Definitions (the same in the docs and in ``cnnlineage summary --help``):

- **MACs** are the multiply-accumulates of convolutions, linear layers and matrix
  products, attention included: ``aten.convolution`` counts
  ``N·C_out·H_out·W_out · (C_in/groups)·k_h·k_w`` (dilation changes nothing, only
  where the kernel reads), ``mm``/``addmm`` count ``M·N·K``, ``bmm``/``baddbmm``
  ``B·M·N·K``, and ``scaled_dot_product_attention`` counts both products,
  ``B·H·L·S·(E + E_v)`` (q·kᵀ and attention·v).
- **FLOPs** are ``2 × MACs`` plus the element-wise work, by these rules:
  bias additions 1 per output element; activations (ReLU, GELU, SiLU, sigmoid, tanh,
  hard-swish, ...) and element-wise arithmetic (add, mul, div, ...) 1 per output
  element; BatchNorm in inference 2 per element (a folded scale and shift);
  LayerNorm / GroupNorm / InstanceNorm 5 per element (mean, variance, normalise,
  scale, shift); softmax 3 per element (exponential, sum, division) and attention's
  scaling 1 per score; max/average pooling ``k_h·k_w`` per output element; adaptive
  and global pooling and means 1 per input element. Concatenation, padding, indexing
  and copies move data and count 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from math import prod

import torch

__all__ = ["op_cost", "MATMUL_OPS", "ZERO_COST_OPS", "SDPA_OPS"]

# operators whose cost is zero by definition (data movement, creation, bookkeeping)
ZERO_COST_OPS = {
    "cat", "stack", "constant_pad_nd", "reflection_pad2d", "replication_pad2d", "pad", "index_select",
    "gather", "index", "clone", "copy_", "_to_copy", "contiguous", "empty", "empty_like", "zeros", "zeros_like",
    "ones", "ones_like", "full", "full_like", "fill_", "zero_", "lift_fresh", "lift_fresh_copy", "scalar_tensor",
    "arange", "masked_fill", "where", "roll", "flip", "repeat", "embedding", "select_scatter", "slice_scatter",
    "new_empty", "new_zeros", "new_ones", "bernoulli_", "native_dropout", "_unsafe_view", "channel_shuffle",
    "native_channel_shuffle", "pixel_shuffle", "split_with_sizes", "unbind", "upsample_nearest2d",
}  # fmt: skip

MATMUL_OPS = {"mm", "addmm", "bmm", "baddbmm", "addbmm", "matmul", "dot", "mv", "addmv"}

SDPA_OPS = {
    "scaled_dot_product_attention",
    "_scaled_dot_product_flash_attention_for_cpu",
    "_scaled_dot_product_flash_attention",
    "_scaled_dot_product_efficient_attention",
    "_scaled_dot_product_cudnn_attention",
    "_scaled_dot_product_attention_math",
}

ACTIVATIONS = {
    "relu", "relu_", "relu6", "hardtanh", "hardtanh_", "gelu", "gelu_", "silu", "silu_", "sigmoid", "sigmoid_",
    "tanh", "tanh_", "hardswish", "hardswish_", "hardsigmoid", "hardsigmoid_", "leaky_relu", "leaky_relu_",
    "elu", "elu_", "mish", "mish_", "softplus", "prelu", "_prelu_kernel", "threshold", "clamp", "clamp_",
    "clamp_min", "clamp_min_", "clamp_max", "clamp_max_", "erf", "exp", "log", "sqrt", "rsqrt", "pow", "abs",
    "neg", "reciprocal", "sign",
}  # fmt: skip

ARITHMETIC = {
    "add", "add_", "sub", "sub_", "rsub", "mul", "mul_", "div", "div_", "addcmul", "addcmul_", "addcdiv",
    "maximum", "minimum", "lerp", "lerp_", "square",
}  # fmt: skip

POOL_KERNEL_OPS = {"max_pool2d", "max_pool2d_with_indices", "avg_pool2d", "max_pool3d_with_indices", "avg_pool3d",
                   "max_pool1d", "avg_pool1d"}  # fmt: skip
GLOBAL_REDUCE_OPS = {"_adaptive_avg_pool2d", "adaptive_avg_pool2d", "adaptive_max_pool2d", "mean", "sum", "amax",
                     "_adaptive_avg_pool3d", "var", "std", "var_mean", "max", "min", "logsumexp"}  # fmt: skip
NORM_OPS = {"native_layer_norm", "native_group_norm", "layer_norm", "group_norm", "instance_norm", "_fused_rms_norm",
            "rms_norm"}  # fmt: skip
BN_OPS = {"native_batch_norm", "_native_batch_norm_legit_no_training", "_native_batch_norm_legit", "batch_norm",
          "cudnn_batch_norm", "_batch_norm_impl_index", "_native_batch_norm_legit_functional"}  # fmt: skip
SOFTMAX_OPS = {"_softmax", "softmax", "_safe_softmax", "_log_softmax", "log_softmax"}


def _numel(t: object) -> int:
    return t.numel() if isinstance(t, torch.Tensor) else 0


def _first_tensor(xs: Sequence[object]) -> torch.Tensor | None:
    for x in xs:
        if isinstance(x, torch.Tensor):
            return x
        if isinstance(x, (list, tuple)):
            t = _first_tensor(x)
            if t is not None:
                return t
    return None


def _pair(v: object, n: int = 2) -> tuple[int, ...]:
    if isinstance(v, int):
        return (v,) * n
    v = tuple(v)  # type: ignore[arg-type]
    return v * n if len(v) == 1 else v


def op_cost(name: str, args: Sequence[object], kwargs: dict, out: object) -> tuple[int, int, bool]:
    """Return ``(macs, flops, known)`` for one aten operator call; ``known`` is False for operators without a rule."""
    out_t = _first_tensor([out])
    out_n = _numel(out_t)
    if name in ("convolution", "_convolution", "conv2d", "cudnn_convolution", "mkldnn_convolution"):
        x, w = args[0], args[1]
        bias = args[2] if len(args) > 2 else None
        transposed = bool(args[6]) if len(args) > 6 else False
        groups = int(args[8]) if len(args) > 8 else 1
        kernel = prod(w.shape[2:])
        if transposed:  # each input element is spread over C_out/groups · k outputs
            macs = _numel(x) * (w.shape[1]) * kernel
        else:
            macs = out_n * (w.shape[1]) * kernel
        del groups  # already in w.shape[1] = C_in / groups
        flops = 2 * macs + (out_n if isinstance(bias, torch.Tensor) else 0)
        return macs, flops, True
    if name in ("mm", "matmul", "dot", "mv"):
        k = args[0].shape[-1]
        macs = out_n * k
        return macs, 2 * macs, True
    if name in ("addmm", "addmv"):
        a = args[1]
        macs = out_n * a.shape[-1]
        return macs, 2 * macs + out_n, True
    if name == "bmm":
        macs = out_n * args[0].shape[-1]
        return macs, 2 * macs, True
    if name in ("baddbmm", "addbmm"):
        macs = out_n * args[1].shape[-1]
        return macs, 2 * macs + out_n, True
    if name in SDPA_OPS:
        q, k, v = args[0], args[1], args[2]
        lead = prod(q.shape[:-2])
        l_q, e = q.shape[-2], q.shape[-1]
        s, e_v = k.shape[-2], v.shape[-1]
        scores = lead * l_q * s
        macs = scores * (e + e_v)
        return macs, 2 * macs + 4 * scores, True  # softmax 3/score + scaling 1/score
    if name in BN_OPS:
        return 0, 2 * _numel(args[0]), True
    if name in NORM_OPS:
        return 0, 5 * _numel(args[0]), True
    if name in SOFTMAX_OPS:
        return 0, 3 * out_n, True
    if name in ACTIVATIONS or name in ARITHMETIC:
        return 0, out_n, True
    if name in POOL_KERNEL_OPS:
        kernel = args[1] if len(args) > 1 else kwargs.get("kernel_size")
        k = prod(_pair(kernel, 3 if name.endswith("3d") or name.endswith("3d_with_indices") else 2))
        return 0, out_n * k, True
    if name in GLOBAL_REDUCE_OPS:
        return 0, _numel(args[0]), True
    if name in ZERO_COST_OPS:
        return 0, 0, True
    return 0, 0, False
