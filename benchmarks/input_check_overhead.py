"""Cost of the input check in every forward: ``model(x)`` against the bare ``forward_head(forward_features(x))``.

The check (``LineageModel.check_input``: type, floating-point dtype, rank, channels,
size) runs once per forward outside tracing; a dtype mismatch between input and weights
is examined only when the forward has already failed, inside ``except``. This times both
calls on the same model and input, alternating (checked, bare, checked, ...), and reports
the median of the repeats and their difference, for a model whose forward is tiny
(lenet5, batch 1: the worst case for a fixed per-call cost) and a small CIFAR ResNet.

    python benchmarks/input_check_overhead.py
    python benchmarks/input_check_overhead.py --models lenet5 --repeats 21 --calls 2000
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

import cnnlineage


def _time(fn, x: torch.Tensor, calls: int) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        fn(x)
    return (time.perf_counter() - start) / calls


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--models", nargs="+", default=["lenet5", "resnet20"])
    parser.add_argument("--repeats", type=int, default=11)
    parser.add_argument("--calls", type=int, default=500)
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"{'model':10s} {'checked us':>11s} {'bare us':>9s} {'difference us':>14s} {'relative':>9s}")
    for name in args.models:
        model = cnnlineage.create_model(name).eval()
        x = torch.randn(1, *model.input_size)

        def bare(t: torch.Tensor, m=model) -> torch.Tensor:
            return m.forward_head(m.forward_features(t))

        with torch.no_grad():
            for fn in (model, bare):  # warm-up
                _time(fn, x, args.calls // 5)
            checked, plain = [], []
            for _ in range(args.repeats):
                checked.append(_time(model, x, args.calls))
                plain.append(_time(bare, x, args.calls))
        c, b = statistics.median(checked) * 1e6, statistics.median(plain) * 1e6
        print(f"{name:10s} {c:11.1f} {b:9.1f} {c - b:14.2f} {(c - b) / b:9.2%}")
    x = torch.randn(1, 1, 32, 32)
    n = 200_000
    start = time.perf_counter()
    for _ in range(n):
        x.is_floating_point()
    print(
        f"the dtype test alone (x.is_floating_point()): {(time.perf_counter() - start) / n * 1e9:.0f} ns per call"
    )


if __name__ == "__main__":
    main()
