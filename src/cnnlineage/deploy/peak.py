"""Measure this machine's dense matrix-multiply (GEMM) peak, the yardstick for achieved GFLOP/s.

A large square ``torch.mm`` is the best case for every BLAS (MKL, oneDNN, OpenBLAS,
cuBLAS): ``2·n³`` floating-point operations with ``n²`` data, so its rate is what the
hardware can actually sustain through PyTorch here, in this process, with these threads.
"""

from __future__ import annotations

import time

import torch

__all__ = ["bf16_supported", "measure_peak"]


def bf16_supported(device: str = "cpu") -> bool:
    """Return True when bf16 matrix multiplies run natively (AVX512-BF16/AMX on CPU, Ampere+ on CUDA)."""
    if device.startswith("cuda"):
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def measure_peak(
    *,
    dtype: torch.dtype = torch.float32,
    sizes: tuple[int, ...] = (512, 1024, 2048),
    reps: int = 5,
    device: str = "cpu",
    clock: str = "wall",
) -> dict:
    """Return {"dtype", "gflops", "size", "by_size", "threads", "clock"}: the best GEMM rate over ``sizes`` (n x n @ n x n)."""
    timer = time.process_time if clock == "cpu" else time.perf_counter  # cpu: as `bench --clock cpu`
    by_size = {}
    for n in sizes:
        a = torch.randn(n, n, device=device).to(dtype)
        b = torch.randn(n, n, device=device).to(dtype)
        torch.mm(a, b)  # warm-up: thread pool, packing buffers
        _sync(device)
        ts = []
        for _ in range(reps):
            t = timer()
            torch.mm(a, b)
            _sync(device)
            ts.append(timer() - t)
        by_size[n] = 2 * n**3 / min(ts) / 1e9  # a peak: the best repetition (others lost time to noise)
    best = max(by_size, key=by_size.get)
    return {
        "dtype": str(dtype).replace("torch.", ""),
        "gflops": by_size[best],
        "size": best,
        "by_size": by_size,
        "threads": torch.get_num_threads(),
        "clock": clock,
    }
