"""The profiler: exact per-layer shapes, parameters, MACs, FLOPs, memory and receptive field.

``profile(model_or_name, input_size=(C, H, W))`` runs the model once in inference mode
under a ``TorchDispatchMode`` that sees every aten operator, so functional calls that no
module wraps (``x + identity``, ``torch.cat``, ``F.relu``, attention) are counted like
layers, and a module called twice is counted twice. Module hooks name each operator
after the innermost module running it: the operators of a leaf module (Conv2d, ReLU,
...) form one row, and an operator called directly in a composite module's ``forward``
forms a row of its own, named ``path.op``. Registry names are built and run on the
``meta`` device, so no memory is allocated and no arithmetic is done: profiling
VGG-19 or ViT-L/16 takes milliseconds of compute. Counting rules: ``counting.py``;
receptive-field rules: ``receptive.py``; the result and its tables: ``report.py``.
"""

from __future__ import annotations

import math
import numbers
import warnings
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn as nn
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten
from torch.utils.weak import WeakTensorKeyDictionary

from .counting import SDPA_OPS, op_cost
from .receptive import RF
from .report import LayerRow, Profile

__all__ = ["LayerRow", "Profile", "profile", "InputSizeError"]

# operators that never form a row: aliasing, copies and bookkeeping
_SKIP_ROW = {"detach", "clone", "_unsafe_view", "contiguous", "_to_copy", "empty", "lift_fresh", "alias", "copy_",
             "empty_like", "lift_fresh_copy", "new_empty", "_local_scalar_dense", "unbind", "split_with_sizes",
             "split", "chunk", "empty_strided"}  # fmt: skip
_PAD_OPS = {"constant_pad_nd", "reflection_pad2d", "replication_pad2d", "pad"}
_WINDOW_OPS = {"max_pool2d", "max_pool2d_with_indices", "avg_pool2d", "max_pool3d_with_indices", "avg_pool3d"}
_ADAPTIVE_OPS = {"_adaptive_avg_pool2d", "adaptive_avg_pool2d", "adaptive_max_pool2d"}
_REDUCE_OPS = {"mean", "sum", "amax", "var", "std", "var_mean", "max", "min", "logsumexp"}
_LEAF_TYPES: tuple[type, ...] = (nn.MultiheadAttention,)


class InputSizeError(ValueError):
    """An input the model cannot take: names the layer where the shape first fails and what it needed."""


# ------------------------------------------------------------------------------------ tracing
class _Call:
    """Accumulates the operators of one leaf-module call."""

    def __init__(self, name: str, module: nn.Module, inp: Any) -> None:
        self.name, self.module = name, module
        self.input_shape = tuple(inp.shape) if isinstance(inp, torch.Tensor) else ()
        self.macs = self.flops = 0


class _Tracer(TorchDispatchMode):
    """Sees every aten operator: costs, rows, receptive fields and tensor lifetimes."""

    def __init__(self, names: dict[nn.Module, str], input_hw: tuple[int, int], elem_size: int,
                 batch: int = 1, params: Sequence[nn.Parameter] = ()) -> None:  # fmt: skip
        super().__init__()
        self.names, self.input_hw, self.elem, self.batch = names, input_hw, elem_size, batch
        # parameters by storage: a functional operator's row counts those it reads that no row has counted yet
        self.param_numel = {_storage_key(p): p.numel() for p in params}
        self.counted: set[int] = set()
        self.stack: list[nn.Module] = []
        self.calls: list[_Call] = []  # open leaf calls
        self.rows: list[LayerRow] = []
        self.rf: WeakTensorKeyDictionary = WeakTensorKeyDictionary()
        self.storage: WeakTensorKeyDictionary = WeakTensorKeyDictionary()
        self.born: list[int] = []  # storage id -> op index created
        self.last: list[int] = []  # storage id -> op index of last use
        self.nbytes: list[int] = []
        self.step = 0
        self.uncounted: set[str] = set()
        self.in_sdpa = 0
        self.macs_by_op: dict[str, int] = {}

    # -- storage lifetimes
    def new_storage(self, t: torch.Tensor) -> None:
        self.storage[t] = len(self.born)
        self.born.append(self.step)
        self.last.append(self.step)
        self.nbytes.append(t.numel() * self.elem)

    def peak(self) -> int:
        events: list[tuple[int, int]] = []
        for b, l, n in zip(self.born, self.last, self.nbytes):
            events += [(b, n), (l + 1, -n)]
        events.sort(key=lambda e: (e[0], e[1]))
        live = peak = 0
        for _, n in events:
            live += n
            peak = max(peak, live)
        return peak

    # -- module hooks
    def pre_hook(self, module: nn.Module, args: tuple) -> None:
        if module not in self.names:
            return
        self.stack.append(module)
        if _is_leaf(module):
            self.calls.append(_Call(self.names[module], module, args[0] if args else None))

    def post_hook(self, module: nn.Module, args: tuple, out: Any) -> None:
        if module not in self.names or not self.stack or self.stack[-1] is not module:
            return
        self.stack.pop()
        if _is_leaf(module) and self.calls and self.calls[-1].module is module:
            call = self.calls.pop()
            t = _first_tensor(out)
            info = self.rf.get(t) if t is not None else None
            self.counted.update(_storage_key(p) for p in module.parameters())
            self.rows.append(_row(call.name, type(module).__name__, call.input_shape, t, self.elem,
                                  sum(p.numel() for p in module.parameters()), call.macs, call.flops, info,
                                  self.input_hw))  # fmt: skip

    # -- operators
    def record(self, name: str, args: Sequence, kwargs: dict, out: Any, view: bool = False) -> None:
        view = view or _is_alias(name)
        macs, flops, known = (0, 0, True) if view else op_cost(name, args, kwargs, out)
        if not known:
            self.uncounted.add(name)
        if macs:
            self.macs_by_op[name] = self.macs_by_op.get(name, 0) + macs
        in_tensors = [a for a in tree_flatten((args, kwargs))[0] if isinstance(a, torch.Tensor)]
        out_tensors = [o for o in tree_flatten(out)[0] if isinstance(o, torch.Tensor)]
        self._track_storage(name, in_tensors, out_tensors, view)
        info = self._propagate(name, args, kwargs, in_tensors, out_tensors, view)
        if info is not None:
            for o in out_tensors:
                self.rf[o] = info
        self.step += 1
        if self.calls and self.stack and self.stack[-1] is self.calls[-1].module:
            self.calls[-1].macs += macs
            self.calls[-1].flops += flops
        elif not view and name not in _SKIP_ROW:
            parent = self.names[self.stack[-1]] if self.stack else ""
            inp = in_tensors[0] if in_tensors else None
            out_t = out_tensors[0] if out_tensors else None
            shape = None
            if (
                name in ("mm", "addmm")
                and out_t is not None
                and out_t.dim() == 2
                and out_t.shape[0] != self.batch
            ):
                # a linear layer on tokens runs on (B·N, D): show it per image, (B, N, D), as its input was
                shape = (self.batch, out_t.shape[0] // self.batch, out_t.shape[1])
            self.rows.append(_row(f"{parent}.{name}" if parent else name, name,
                                  tuple(inp.shape) if inp is not None else (), out_t,
                                  self.elem, self._own_params(in_tensors), macs, flops, info, self.input_hw,
                                  out_shape=shape))  # fmt: skip

    def _own_params(self, tensors: list[torch.Tensor]) -> int:
        """Return the parameters among ``tensors`` (or viewed by them) that no row has counted yet, and count them."""
        n = 0
        for t in tensors:
            key = _storage_key(t)
            if key in self.param_numel and key not in self.counted:
                self.counted.add(key)
                n += self.param_numel[key]
        return n

    def _track_storage(
        self, name: str, ins: list[torch.Tensor], outs: list[torch.Tensor], view: bool
    ) -> None:
        for t in ins:
            sid = self.storage.get(t)
            if sid is not None:
                self.last[sid] = self.step
        aliasing = view or name in _SKIP_ROW - {"clone", "_to_copy", "contiguous", "copy_"}
        for o in outs:
            if o in self.storage:
                continue
            src = next((self.storage.get(t) for t in ins if t in self.storage), None)
            if aliasing:
                if src is not None:  # a view of an activation shares its memory
                    self.storage[o] = src
                # a view of a parameter or constant is not an activation: not tracked
            else:
                self.new_storage(o)

    def _propagate(self, name: str, args: Sequence, kwargs: dict, ins: list[torch.Tensor],
                   outs: list[torch.Tensor], view: bool) -> RF | None:  # fmt: skip
        infos = [self.rf[t] for t in ins if t in self.rf]
        if not infos or not outs:
            return None
        x = next(t for t in ins if t in self.rf)
        info = self.rf[x]
        out = outs[0]
        if name in SDPA_OPS or name in ("bmm", "baddbmm", "matmul"):
            return info.make_global(self.input_hw)  # attention mixes all tokens
        if name in ("convolution", "_convolution") and x.dim() == 4 and not info.context:
            w = args[1]
            return info.window(tuple(w.shape[-2:]), _pair(args[3]), _pair(args[4]), _pair(args[5]))
        if name in _WINDOW_OPS and not info.context:
            k = _last2(args[1])
            s = _last2(args[2]) if len(args) > 2 and args[2] else k
            p = _last2(args[3]) if len(args) > 3 else (0, 0)
            d = _last2(args[4]) if name.startswith("max") and len(args) > 4 else (1, 1)
            return info.window(k, s, p, d)
        if name in _ADAPTIVE_OPS and not info.context:
            in_hw, out_hw = tuple(x.shape[-2:]), tuple(out.shape[-2:])
            if out_hw == in_hw:
                return info
            if out_hw == (1, 1):
                return info.make_global(self.input_hw)
            k = tuple(math.ceil(i / o) + (1 if i % o else 0) for i, o in zip(in_hw, out_hw))
            s = tuple(max(i // o, 1) for i, o in zip(in_hw, out_hw))
            return info.window(k, s, (0, 0))  # type: ignore[arg-type]
        if name in _PAD_OPS and x.dim() >= 3 and not info.context:
            pad = list(args[1]) + [0, 0, 0, 0]
            left, top = pad[0], pad[2]
            start = (info.start[0] - top * info.j[0], info.start[1] - left * info.j[1])
            return RF(info.r, info.j, start, info.is_global, info.feat)
        if name in _REDUCE_OPS or name in ("_softmax", "softmax", "_safe_softmax", "_log_softmax"):
            dims = args[1] if len(args) > 1 else kwargs.get("dim")
            if _mixes_positions(x, dims, info):
                return info.make_global(self.input_hw)
            return info
        if name in ("native_group_norm", "group_norm") and x.dim() == 4 and x.shape[-1] * x.shape[-2] > 1:
            return info.make_global(self.input_hw)  # statistics over the whole map
        if name in ("mm", "addmm"):
            mat = args[1] if name == "addmm" else args[0]
            feat = info.feat if info.feat is not None else mat.shape[-1]
            return info.make_global(self.input_hw) if mat.shape[-1] > feat else info
        if view or name in _SKIP_ROW:
            if x.dim() == 4 and out.dim() < 4 and not info.context:
                # rows of per-position features: the last axis when only leading axes merge
                # (channels-last, as in ConvNeXt's Linear layers), else the channel axis
                return info.flattened(x.shape[-1] if out.shape[-1] == x.shape[-1] else x.shape[1])
            return info
        if len(infos) > 1:
            return RF.union(infos, self.input_hw)
        return info

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001
        kwargs = kwargs or {}
        out = _meta_shortcut(func.overloadpacket.__name__, args)
        if out is None:
            out = func(*args, **kwargs)
        if not self.in_sdpa:
            ret = func._schema.returns
            alias = ret[0].alias_info if ret else None
            self.record(
                func.overloadpacket.__name__, args, kwargs, out, alias is not None and not alias.is_write
            )
        return out


_SAME_SHAPE = {"relu", "relu6", "hardtanh", "gelu", "silu", "sigmoid", "tanh", "hardswish", "hardsigmoid",
               "leaky_relu", "elu", "mish"}  # fmt: skip
_BINARY = {"add", "sub", "mul", "div"}
_BN_META = {"native_batch_norm", "_native_batch_norm_legit_no_training"}


def _meta_shortcut(name: str, args: Sequence) -> Any:
    """Return the output of a shape-preserving operator on meta tensors without running its meta kernel.

    PyTorch computes many meta outputs in Python (BatchNorm, broadcasting element-wise
    ops), which makes very deep networks slow to profile; the output of these is just
    an empty tensor of a known shape. Returns None where the real kernel must run.
    """
    x = args[0] if args else None
    if not isinstance(x, torch.Tensor) or not x.is_meta:
        return None
    base = name.rstrip("_")
    inplace = name.endswith("_") and base != name
    if base in _SAME_SHAPE and (len(args) == 1 or base in ("hardtanh", "leaky_relu", "elu", "gelu")):
        return x if inplace else torch.empty_like(x)
    if base in _BINARY and len(args) == 2:
        y = args[1]
        if isinstance(y, torch.Tensor):
            if y.dtype != x.dtype or not y.is_meta:
                return None
            shape = torch.broadcast_shapes(x.shape, y.shape)
        elif isinstance(y, (int, float)) and not isinstance(y, bool) and x.is_floating_point():
            shape = x.shape
        else:
            return None
        if inplace:
            return x if shape == x.shape else None
        return torch.empty_like(x) if shape == x.shape else x.new_empty(shape)
    if name in _BN_META and not (len(args) > 5 and args[5] is True and name == "native_batch_norm"):
        return torch.empty_like(x), x.new_empty(0), x.new_empty(0)
    return None


class _AttentionMode(TorchFunctionMode):
    """Counts ``F.scaled_dot_product_attention`` as one operator, whatever kernel it dispatches to."""

    def __init__(self, tracer: _Tracer) -> None:
        super().__init__()
        self.tracer = tracer

    def __torch_function__(self, func, types, args=(), kwargs=None):  # noqa: ANN001
        kwargs = kwargs or {}
        if func is torch.nn.functional.scaled_dot_product_attention and not self.tracer.in_sdpa:
            self.tracer.in_sdpa += 1
            try:
                out = func(*args, **kwargs)
            finally:
                self.tracer.in_sdpa -= 1
            self.tracer.record("scaled_dot_product_attention", args, kwargs, out)
            return out
        return func(*args, **kwargs)


def _is_leaf(m: nn.Module) -> bool:
    return isinstance(m, _LEAF_TYPES) or next(m.children(), None) is None


def _is_alias(name: str) -> bool:
    return name in {"view", "_unsafe_view", "reshape", "flatten", "permute", "transpose", "t", "expand", "squeeze",
                    "unsqueeze", "select", "slice", "narrow", "as_strided", "unfold", "view_as", "expand_as",
                    "alias", "detach", "split", "chunk", "unbind", "split_with_sizes", "movedim", "diagonal",
                    "numpy_T", "_reshape_alias", "unflatten", "as_strided_"}  # fmt: skip


def _mixes_positions(x: torch.Tensor, dims: Any, info: RF) -> bool:
    if dims is None:
        return True
    dims = [dims] if isinstance(dims, int) else list(dims)
    dims = [d % x.dim() for d in dims]
    if x.dim() == 4:
        return any(d >= 2 for d in dims) and x.shape[-1] * x.shape[-2] > 1
    if x.dim() == 3 and info.feat is not None:
        return 1 in dims and x.shape[1] > 1
    return False


def _pair(v: Any) -> tuple[int, int]:
    if isinstance(v, int):
        return (v, v)
    v = tuple(v)
    return (v[0], v[0]) if len(v) == 1 else (v[-2], v[-1])


def _last2(v: Any) -> tuple[int, int]:
    return _pair(v)


def _first_tensor(out: Any) -> torch.Tensor | None:
    for o in tree_flatten(out)[0]:
        if isinstance(o, torch.Tensor):
            return o
    return None


def _square(hw: tuple[int, int]) -> int | tuple[int, int]:
    return hw[0] if hw[0] == hw[1] else (hw[0], hw[1])


def _storage_key(t: torch.Tensor) -> int:
    """Return an identifier of the memory ``t`` views (its storage), the same for a parameter and its views."""
    try:
        return t.untyped_storage()._cdata
    except (RuntimeError, NotImplementedError):  # a tensor without storage (some subclasses)
        return id(t)


def _row(name: str, typ: str, in_shape: tuple, out: torch.Tensor | None, elem: int, params: int, macs: int,
         flops: int, info: RF | None, input_hw: tuple[int, int] = (0, 0), out_shape: tuple | None = None,
         ) -> LayerRow:  # fmt: skip
    if out_shape is None:
        out_shape = tuple(out.shape) if out is not None else ()
    return LayerRow(
        name=name, type=typ, input_shape=in_shape, output_shape=out_shape,
        params=params, macs=macs, flops=flops, activation_bytes=out.numel() * elem if out is not None else 0,
        receptive_field=(_square(input_hw) if info.is_global else info.size()) if info else None,
        jump=info.jump() if info else None, start=info.first() if info else None,
        global_rf=bool(info and info.is_global), local_rf=info.size() if info and not info.context else None,
        depth=name.count(".") + 1,
    )  # fmt: skip


# ------------------------------------------------------------------------------------ entry point
def profile(
    model_or_name: nn.Module | str,
    input_size: Sequence[int] | None = None,
    batch_size: int = 1,
    dtype: torch.dtype = torch.float32,
    *,
    device: str | torch.device | None = None,
) -> Profile:
    """Return the :class:`Profile` of a model (an ``nn.Module`` or a registered name) on one input.

    ``input_size`` is (C, H, W), default the model's own. Registered names are built on the
    ``meta`` device (no memory, no arithmetic); a module you pass runs where it lives,
    unless ``device="meta"``. An input the model cannot take raises :class:`InputSizeError`
    naming the layer where the shape first fails.
    """
    from ..models._base import LineageModel, input_checks_disabled

    if device is not None:
        _check_device(device)
    if isinstance(model_or_name, str):
        from ..registry import create_model

        name = model_or_name
        dev = torch.device(device or "meta")
        try:
            with dev:
                model = create_model(name)
        except (NotImplementedError, RuntimeError):  # a builder that needs real tensors
            dev = torch.device("cpu")
            model = create_model(name)
    else:
        model = model_or_name
        name = getattr(model, "model_name", "") or type(model).__name__
        dev = torch.device(device) if device else _device_of(model)
    if input_size is None:
        if not hasattr(model, "input_size"):
            raise ValueError(f"{name} has no default input size: pass input_size=(C, H, W)")
        input_size = model.input_size
    given = input_size
    if (
        isinstance(given, (str, bytes))
        or not isinstance(given, Sequence)
        or len(given) != 3
        or not all(isinstance(v, numbers.Integral) and not isinstance(v, bool) and v >= 1 for v in given)
    ):
        raise ValueError(f"input_size must be (C, H, W) of three positive integers, got {given!r}")
    input_size = tuple(int(v) for v in given)
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise ValueError(f"dtype must be a floating-point torch.dtype (e.g. torch.float16), got {dtype!r}")
    in_chans = getattr(model, "in_chans", None)
    if isinstance(model, LineageModel) and input_size[0] != in_chans:  # the real problem comes first
        c, h, w = input_size
        raise InputSizeError(
            f"{name} takes {in_chans}-channel input{' (grey images)' if in_chans == 1 else ''}, "
            f"got {c} channel(s) in {c}x{h}x{w}; try {in_chans}x{h}x{w}"
        )

    was_training = model.training
    model = model.to(device=dev, dtype=dtype) if dev.type == "meta" or dtype != torch.float32 else model
    model.eval()
    x = torch.zeros((batch_size, *input_size), dtype=dtype, device=dev)
    check_error = None
    if isinstance(model, LineageModel):
        try:
            model.check_input(x)
        except ValueError as e:
            check_error = e
        if check_error is not None and model.fixed_size:  # one size only: the layer detail adds nothing
            model.train(was_training)
            raise InputSizeError(str(check_error))
    elem = torch.empty((), dtype=dtype).element_size()
    try:
        try:
            with input_checks_disabled():
                tracer, method = _run(model, x, elem), "dispatch"
        except _LayerFailure:
            if not (dev.type == "meta" and isinstance(model_or_name, str) and check_error is None):
                raise
            # the input fits but something needs real tensors (e.g. .item()): run on the CPU instead
            from ..registry import create_model

            model = create_model(model_or_name).to(dtype=dtype).eval()
            x = torch.zeros((batch_size, *input_size), dtype=dtype)
            with input_checks_disabled():
                tracer, method = _run(model, x, elem), "dispatch"
    except _LayerFailure as f:
        raise InputSizeError(_explain(name, input_size, f, check_error)) from f.error
    except Exception as e:  # noqa: BLE001 - anything the operator-level tracer cannot run
        warnings.warn(
            f"{name}: operator-level tracing failed ({type(e).__name__}: {e}); profiling leaf modules only. "
            "Functional operations not wrapped in modules (additions, concatenations, attention, F.* calls) "
            "are NOT counted.",
            stacklevel=2,
        )
        tracer, method = _run_modules(model, x, elem), "module"
    finally:
        model.train(was_training)
    if check_error is not None:  # ran, but the model itself says no (e.g. a fixed-size model)
        raise InputSizeError(str(check_error))

    # the profiled network is the inference one: training-only heads (GoogLeNet's auxiliary classifiers) are left out
    aux = {
        id(p)
        for n in getattr(model, "training_only_modules", ())
        for p in model.get_submodule(n).parameters()
    }
    params = [p for p in {id(p): p for p in model.parameters()}.values() if id(p) not in aux]
    total_params = sum(p.numel() for p in params)
    return Profile(
        model_name=name, input_size=input_size, batch_size=batch_size, dtype=str(dtype).replace("torch.", ""),
        rows=tracer.rows, total_params=total_params,
        trainable_params=sum(p.numel() for p in params if p.requires_grad),
        total_macs=sum(r.macs for r in tracer.rows), total_flops=sum(r.flops for r in tracer.rows),
        param_bytes=total_params * elem, activation_bytes=sum(r.activation_bytes for r in tracer.rows),
        peak_activation_bytes=tracer.peak(), method=method, uncounted=sorted(tracer.uncounted),
        macs_by_op=dict(getattr(tracer, "macs_by_op", {})),
    )  # fmt: skip


def _check_device(device: str | torch.device) -> None:
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as e:
        raise ValueError(f"device must be 'cpu', 'meta', 'cuda' or 'cuda:N', got {device!r} ({e})") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"device {device!r} asked for, but CUDA is not available here; use device='cpu' or 'meta'"
        )
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise ValueError(
            f"device {device!r} asked for, but only {torch.cuda.device_count()} CUDA device(s) exist"
        )


def _device_of(model: nn.Module) -> torch.device:
    p = next(model.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


class _LayerFailure(Exception):
    def __init__(self, path: str, module: nn.Module | None, input_shape: tuple, error: Exception) -> None:
        super().__init__(str(error))
        self.path, self.module, self.input_shape, self.error = path, module, input_shape, error


def _hooks(tracer: Any) -> list[Any]:
    from torch.nn.modules import module as mm

    return [
        mm.register_module_forward_pre_hook(tracer.pre_hook),
        mm.register_module_forward_hook(tracer.post_hook),
    ]


def _run(model: nn.Module, x: torch.Tensor, elem: int) -> _Tracer:
    names = {m: n for n, m in model.named_modules()}
    tracer = _Tracer(names, tuple(x.shape[-2:]), elem, batch=x.shape[0], params=list(model.parameters()))
    handles = _hooks(tracer)
    try:
        with torch.no_grad(), _AttentionMode(tracer), tracer:
            tracer.new_storage(x)
            tracer.rf[x] = RF()
            try:
                out = model(x)
            except (RuntimeError, ValueError, IndexError) as e:
                leaf = tracer.stack[-1] if tracer.stack else None
                call = tracer.calls[-1] if tracer.calls else None
                raise _LayerFailure(names.get(leaf, ""), leaf, call.input_shape if call else (), e) from e
        for t in tree_flatten(out)[0]:
            sid = tracer.storage.get(t) if isinstance(t, torch.Tensor) else None
            if sid is not None:
                tracer.last[sid] = tracer.step
    finally:
        for h in handles:
            h.remove()
    return tracer


def _explain(name: str, size: tuple, f: _LayerFailure, check_error: Exception | None) -> str:
    c, h, w = size
    m = f.module
    where = f"layer '{f.path}' ({type(m).__name__})" if m is not None else "the model"
    got = f"received {'x'.join(map(str, f.input_shape[1:]))}" if f.input_shape else "failed"
    need = ""
    k = getattr(m, "kernel_size", None)
    if k is not None:
        kh, kw = _pair(k)
        ph, pw = _pair(getattr(m, "padding", 0)) if not isinstance(getattr(m, "padding", 0), str) else (0, 0)
        dh, dw = _pair(getattr(m, "dilation", 1))
        need = (f" but needs at least {(kh - 1) * dh + 1 - 2 * ph}x{(kw - 1) * dw + 1 - 2 * pw} spatial input "
                f"(kernel {kh}x{kw}, padding {ph}x{pw})")  # fmt: skip
    elif isinstance(m, nn.Linear):
        need = f" but needs {m.in_features} input features"
    msg = (
        f"{name} cannot take input {c}x{h}x{w}: {where} {got}{need} ({f.error.__class__.__name__}: {f.error})"
    )
    if check_error is not None:
        msg += f". The model's own check: {check_error}"
    return msg


# ------------------------------------------------------------------------------------ fallback
class _ModuleTracer:
    """Module-level fallback: leaf modules only, costs from the module type."""

    def __init__(self, names: dict[nn.Module, str], elem: int) -> None:
        self.names, self.elem = names, elem
        self.rows: list[LayerRow] = []
        self.uncounted: set[str] = set()
        self.inputs: dict[int, tuple] = {}

    def pre_hook(self, module: nn.Module, args: tuple) -> None:
        if module in self.names and _is_leaf(module) and args and isinstance(args[0], torch.Tensor):
            self.inputs[id(module)] = tuple(args[0].shape)

    def post_hook(self, module: nn.Module, args: tuple, out: Any) -> None:
        if module not in self.names or not _is_leaf(module):
            return
        x = args[0] if args else None
        o = _first_tensor(out)
        macs, flops = _module_cost(module, x, o)
        if macs == flops == 0 and not isinstance(module, (nn.Identity, nn.Dropout, nn.Flatten)):
            self.uncounted.add(type(module).__name__)
        self.rows.append(_row(self.names[module], type(module).__name__, self.inputs.pop(id(module), ()), o,
                              self.elem, sum(p.numel() for p in module.parameters()), macs, flops, None))  # fmt: skip

    def peak(self) -> int:
        return max((r.activation_bytes for r in self.rows), default=0)


def _module_cost(m: nn.Module, x: Any, o: torch.Tensor | None) -> tuple[int, int]:
    if o is None:
        return 0, 0
    n = o.numel()
    if isinstance(m, nn.Conv2d):
        macs = n * (m.in_channels // m.groups) * m.kernel_size[0] * m.kernel_size[1]
        return macs, 2 * macs + (n if m.bias is not None else 0)
    if isinstance(m, nn.Linear):
        macs = n * m.in_features
        return macs, 2 * macs + (n if m.bias is not None else 0)
    if isinstance(m, nn.modules.batchnorm._BatchNorm):
        return 0, 2 * n
    if isinstance(m, (nn.LayerNorm, nn.GroupNorm)):
        return 0, 5 * n
    if isinstance(m, (nn.MaxPool2d, nn.AvgPool2d)):
        kh, kw = _pair(m.kernel_size)
        return 0, n * kh * kw
    if isinstance(m, (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)) and isinstance(x, torch.Tensor):
        return 0, x.numel()
    if isinstance(m, (nn.ReLU, nn.ReLU6, nn.GELU, nn.SiLU, nn.Sigmoid, nn.Tanh, nn.Hardswish, nn.Hardsigmoid,
                      nn.LeakyReLU, nn.ELU, nn.Hardtanh)):  # fmt: skip
        return 0, n
    return 0, 0


def _run_modules(model: nn.Module, x: torch.Tensor, elem: int) -> _ModuleTracer:
    from ..models._base import input_checks_disabled

    tracer = _ModuleTracer({m: n for n, m in model.named_modules()}, elem)
    handles = _hooks(tracer)
    try:
        with torch.no_grad(), input_checks_disabled():
            model(x)
    finally:
        for h in handles:
            h.remove()
    return tracer
