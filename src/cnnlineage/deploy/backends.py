"""Inference backends: eager, channels-last, ``torch.compile`` (inductor, frozen weights), ONNX Runtime, auto.

:func:`prepare` returns a module that computes the same logits as the model, faster where
the backend allows. ``auto`` times every backend that works for this model at this input
on this machine, keeps the fastest and caches the choice on disk, keyed by the machine
(CPU or GPU model, core count), the torch and onnxruntime versions, the threads, the
model and the input. torch (inductor) and ONNX Runtime do the heavy lifting.
"""

from __future__ import annotations

import copy
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from ..common import atomic_write_text
from .export import missing_package

__all__ = ["BACKENDS", "ChannelsLast", "cache_path", "choose_backend", "machine_key", "prepare"]

BACKENDS = ("eager", "channels_last", "compile", "onnxruntime")


class ChannelsLast(nn.Module):
    """Run ``model`` with NHWC weights and inputs (oneDNN / cuDNN prefer this layout for convolutions)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model.to(memory_format=torch.channels_last)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x.contiguous(memory_format=torch.channels_last))


def _check(backend: str) -> None:
    if backend not in (*BACKENDS, "auto"):
        raise ValueError(f"--backend must be one of {', '.join((*BACKENDS, 'auto'))}, got {backend!r}")


def prepare(
    model: nn.Module,
    backend: str,
    *,
    input_size: tuple[int, ...] | list[int],
    batch: int = 1,
    meta: dict[str, Any] | None = None,
    verbose: bool = False,
) -> nn.Module:
    """Return ``model`` (eval mode) wrapped to run on ``backend``; ``auto`` measures once and caches the choice."""
    _check(backend)
    model = model.eval()
    if backend == "auto":
        backend = choose_backend(model, input_size=input_size, batch=batch, meta=meta, verbose=verbose)
    if backend == "eager":
        return model
    if backend == "channels_last":
        return ChannelsLast(model)
    if backend == "compile":
        # Freezing folds weights (and BatchNorm) into constants for inference (inductor's freezing pass).
        return torch.compile(model, options={"freezing": True})
    return _to_onnxruntime(model, input_size=input_size, batch=batch, meta=meta)


def _to_onnxruntime(model: nn.Module, *, input_size, batch: int, meta: dict[str, Any] | None) -> nn.Module:
    from .export import export_model
    from .runtime import OnnxModel

    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        raise missing_package("onnxruntime", "the onnxruntime backend") from None
    name = getattr(model, "model_name", "") or type(model).__name__
    meta = {**(meta or {}), "model_name": name, "input_size": list(input_size)}
    meta.setdefault("class_names", [])
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "model.onnx"
        export_model(model, meta=meta, out=path, format="onnx", dynamic_batch=batch != 1)
        return OnnxModel(path.read_bytes(), require_metadata=False)


# ------------------------------------------------------------------------------- auto
def cache_path() -> Path:
    """Return the JSON file that caches ``auto`` choices ($CNNLINEAGE_CACHE or ~/.cache/cnnlineage)."""
    root = (
        os.environ.get("CNNLINEAGE_CACHE")
        or Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "cnnlineage"
    )
    return Path(root) / "backend_choice.json"


def machine_key() -> str:
    """Return what makes timings comparable: processor, cores, threads, torch and onnxruntime versions."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no-gpu"
    try:
        import onnxruntime

        ort = onnxruntime.__version__
    except ImportError:
        ort = "none"
    return (
        f"{cpu}|{os.cpu_count()} cores|{torch.get_num_threads()} threads|{gpu}|"
        f"torch {torch.__version__}|ort {ort}|py {sys.version_info[0]}.{sys.version_info[1]}"
    )


def _time(fn: nn.Module, x: torch.Tensor, reps: int) -> float:
    with torch.inference_mode():
        fn(x)  # warm-up (also compiles)
        ts = []
        for _ in range(reps):
            t = time.perf_counter()
            fn(x)
            ts.append(time.perf_counter() - t)
    return statistics.median(ts)


def choose_backend(
    model: nn.Module,
    *,
    input_size: tuple[int, ...] | list[int],
    batch: int = 1,
    meta: dict[str, Any] | None = None,
    candidates: tuple[str, ...] = BACKENDS,
    reps: int = 10,
    verbose: bool = True,
) -> str:
    """Return the fastest backend in ``candidates`` for this model and input, from the cache or measured now."""
    name = getattr(model, "model_name", "") or type(model).__name__
    classes = getattr(model, "num_classes", "")
    key = f"{machine_key()}|{name}/{classes}|{batch}x{'x'.join(map(str, input_size))}|{','.join(candidates)}"
    path = cache_path()
    try:
        cache = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        cache = {}
    if key in cache:
        choice = cache[key]["backend"]
        if verbose:
            print(f"backend auto: {choice} (cached in {path})", file=sys.stderr)
        return choice
    x = torch.randn(batch, *input_size)
    times: dict[str, float] = {}
    errors: dict[str, str] = {}
    for b in candidates:
        try:
            times[b] = _time(
                prepare(copy.deepcopy(model), b, input_size=input_size, batch=batch, meta=meta), x, reps
            )
        except Exception as e:  # noqa: BLE001 - a backend that does not work for this model is skipped
            errors[b] = f"{type(e).__name__}: {(str(e).splitlines() or [''])[0][:120]}"
    if not times:
        raise ValueError(f"no backend works for {name}: {errors}")
    choice = min(times, key=times.get)
    cache[key] = {
        "backend": choice,
        "median_ms": {b: round(t * 1e3, 3) for b, t in times.items()},
        "errors": errors,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(cache, indent=1))
    if verbose:
        shown = ", ".join(f"{b} {t * 1e3:.2f} ms" for b, t in sorted(times.items(), key=lambda kv: kv[1]))
        print(f"backend auto: {choice} (measured {shown}; cached in {path})", file=sys.stderr)
    return choice
