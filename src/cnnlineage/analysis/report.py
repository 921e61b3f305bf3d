"""The profile's result: one row per leaf operation, the totals, and their tables (text, Markdown, CSV, JSON)."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["LayerRow", "Profile"]


@dataclass
class LayerRow:
    """One leaf operation: a leaf module's call, or a functional operator."""

    name: str  # qualified module path, or "path.op" for a functional operator
    type: str  # module class (Conv2d) or operator (add, cat)
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    params: int  # parameters of the module; for a functional operator, the parameters it reads that no earlier row counted
    macs: int
    flops: int
    activation_bytes: int  # bytes of the output tensor in the profiled dtype
    receptive_field: int | tuple[int, int] | None  # input pixels one output unit sees
    jump: int | float | tuple[float, float] | None  # effective stride in input pixels
    start: float | tuple[float, float] | None  # input coordinate of the centre of the first unit
    global_rf: bool = (
        False  # the unit sees the whole input (global pooling, attention, SE gates, dense layers)
    )
    local_rf: int | tuple[int, int] | None = None  # field through convolution and pooling paths alone
    depth: int = 0  # module depth (number of dots in the path + 1)

    def to_dict(self) -> dict[str, Any]:
        """Return the row as a JSON-serialisable dict."""
        d = asdict(self)
        d["input_shape"], d["output_shape"] = list(self.input_shape), list(self.output_shape)
        return d


@dataclass
class Profile:
    """The result of :func:`profile`: rows in execution order and the totals."""

    model_name: str
    input_size: tuple[int, int, int]
    batch_size: int
    dtype: str
    rows: list[LayerRow]
    total_params: int
    trainable_params: int
    total_macs: int
    total_flops: int
    param_bytes: int
    activation_bytes: int  # sum of all rows' outputs
    peak_activation_bytes: int  # inference, each tensor freed after its last use
    method: str = "dispatch"  # "dispatch" (every operator) or "module" (fallback: leaf modules only)
    uncounted: list[str] = field(default_factory=list)  # operators without a counting rule (cost 0)
    macs_by_op: dict[str, int] = field(
        default_factory=dict
    )  # MACs per aten operator (convolution, addmm, ...)

    def training_memory_bytes(self, optimizer: str = "adam") -> int:
        """Return an estimate of training memory: weights, gradients, optimizer state and saved activations.

        Optimizer state is two tensors per parameter for Adam/AdamW, one for SGD with
        momentum, none for plain SGD. Saved activations are estimated by the sum of all
        layer outputs (backward keeps most of them).
        """
        states = {"adam": 2, "adamw": 2, "sgd": 1, "momentum": 1, "none": 0, "rmsprop": 1, "adagrad": 1}
        if optimizer.lower() not in states:
            raise ValueError(f"optimizer must be one of {sorted(states)}, got {optimizer!r}")
        return self.param_bytes * (2 + states[optimizer.lower()]) + self.activation_bytes

    @property
    def training_bytes(self) -> int:
        """Training memory estimate with Adam (see :meth:`training_memory_bytes`)."""
        return self.training_memory_bytes("adam")

    @property
    def receptive_field(self) -> int | tuple[int, int] | None:
        """Return the local receptive field of the deepest spatial layer (before global pooling).

        Paths through global summaries (SE gates, attention) are left out: they make every
        unit see the whole input, and the rows say so with ``global_rf``.
        """
        spatial = [r for r in self.rows if r.local_rf is not None and len(r.output_shape) == 4]
        return spatial[-1].local_rf if spatial else None

    def grouped(self, depth: int) -> list[LayerRow]:
        """Return rows merged by module path truncated to ``depth`` levels (execution order of first call)."""
        groups: dict[str, list[LayerRow]] = {}
        for r in self.rows:
            key = ".".join(r.name.split(".")[:depth])
            groups.setdefault(key, []).append(r)
        out = []
        for key, rs in groups.items():
            last = rs[-1]
            out.append(LayerRow(
                name=key, type=rs[0].type if len(rs) == 1 else f"{len(rs)} ops", input_shape=rs[0].input_shape,
                output_shape=last.output_shape, params=sum(r.params for r in rs), macs=sum(r.macs for r in rs),
                flops=sum(r.flops for r in rs), activation_bytes=sum(r.activation_bytes for r in rs),
                receptive_field=last.receptive_field, jump=last.jump, start=last.start, global_rf=last.global_rf,
                depth=min(depth, last.depth),
            ))  # fmt: skip
        return out

    def totals(self) -> dict[str, Any]:
        """Return the totals as a dict."""
        return dict(
            model=self.model_name, input_size=list(self.input_size), batch_size=self.batch_size, dtype=self.dtype,
            total_params=self.total_params, trainable_params=self.trainable_params, total_macs=self.total_macs,
            total_flops=self.total_flops, param_bytes=self.param_bytes, activation_bytes=self.activation_bytes,
            peak_activation_bytes=self.peak_activation_bytes, training_bytes_adam=self.training_bytes,
            receptive_field=self.receptive_field, method=self.method, uncounted=self.uncounted,
        )  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        """Return totals and rows as a JSON-serialisable dict."""
        return {**self.totals(), "rows": [r.to_dict() for r in self.rows]}

    def to_json(self) -> str:
        """Return :meth:`to_dict` as JSON text."""
        return json.dumps(self.to_dict(), indent=2)

    _COLUMNS = (
        "name",
        "type",
        "output_shape",
        "params",
        "macs",
        "flops",
        "activation_bytes",
        "receptive_field",
        "jump",
    )

    def _cells(self, r: LayerRow) -> list[str]:
        rf = "global" if r.global_rf else ("" if r.receptive_field is None else _fmt_pair(r.receptive_field))
        return [r.name or "(input)", r.type, "x".join(map(str, r.output_shape[1:])), f"{r.params:,}", f"{r.macs:,}",
                f"{r.flops:,}", f"{r.activation_bytes:,}", rf, "" if r.jump is None else _fmt_pair(r.jump)]  # fmt: skip

    def to_markdown(self, depth: int | None = None) -> str:
        """Return the per-layer table and the totals as Markdown."""
        rows = self.grouped(depth) if depth else self.rows
        lines = ["| " + " | ".join(self._COLUMNS) + " |", "|" + "---|" * len(self._COLUMNS)]
        lines += ["| " + " | ".join(self._cells(r)) + " |" for r in rows]
        lines.append("")
        lines += [f"- **{k}**: {_fmt_total(k, v)}" for k, v in self.totals().items()]
        return "\n".join(lines)

    def to_csv(self, depth: int | None = None) -> str:
        """Return the per-layer rows as CSV (all fields)."""
        rows = self.grouped(depth) if depth else self.rows
        buf = io.StringIO()
        names = [f.name for f in LayerRow.__dataclass_fields__.values()]  # type: ignore[attr-defined]
        w = csv.DictWriter(buf, fieldnames=names)
        w.writeheader()
        for r in rows:
            d = r.to_dict()
            d["input_shape"] = "x".join(map(str, r.input_shape))
            d["output_shape"] = "x".join(map(str, r.output_shape))
            w.writerow(d)
        return buf.getvalue()

    def to_table(self, depth: int | None = None) -> str:
        """Return the per-layer table as aligned plain text, with the totals."""
        from ..common import format_table, human_count

        rows = self.grouped(depth) if depth else self.rows
        body = format_table([self._cells(r) for r in rows], self._COLUMNS, "lllrrrrrr")
        c, h, w = self.input_size
        tail = [
            f"input {self.batch_size}x{c}x{h}x{w} {self.dtype}; counted at the {self.method} level",
            f"params {self.total_params:,} ({human_count(self.total_params)}), trainable {self.trainable_params:,}",
            f"MACs {self.total_macs:,} ({self.total_macs / 1e9:.3f} G)   FLOPs {self.total_flops:,}"
            f" ({self.total_flops / 1e9:.3f} G)",
            f"param memory {_mb(self.param_bytes)}   activations (sum of outputs) {_mb(self.activation_bytes)}"
            f"   peak activations {_mb(self.peak_activation_bytes)}   training estimate (Adam) {_mb(self.training_bytes)}",
            f"receptive field of the last spatial layer: {self.receptive_field}",
        ]
        if self.uncounted:
            tail.append(f"operators without a counting rule (counted as 0): {', '.join(self.uncounted)}")
        return body + "\n\n" + "\n".join(tail)


def _fmt_pair(v: Any) -> str:
    if isinstance(v, tuple):
        return "x".join(_fmt_num(x) for x in v)
    return _fmt_num(v)


def _fmt_num(v: Any) -> str:
    return str(int(v)) if isinstance(v, (int, float)) and float(v).is_integer() else f"{v:.2f}"


def _fmt_total(key: str, v: Any) -> str:
    return f"{v:,}" if isinstance(v, int) and not isinstance(v, bool) else str(v)


def _mb(n: int) -> str:
    return f"{n / 2**20:.2f} MiB"
