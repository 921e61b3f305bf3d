"""Export every registered model (or one per family) to ONNX at its smallest input and verify it with ONNX Runtime.

    python benchmarks/bench_export_all.py [--per-family] [--format onnx] [--out export_all.json]

Prints one line per model: verified max abs difference, tolerance and seconds, or the
reason the export fails. Models are built with 10 classes at their smallest input (fixed-size
models at their only input), so every export runs in seconds on a laptop CPU.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch

from cnnlineage.common import atomic_write_text
from cnnlineage.deploy import export_model, load_source
from cnnlineage.registry import list_models, model_info


def smallest_input(model: torch.nn.Module) -> list[int]:
    """Return the smallest (C, H, W) the model takes."""
    if model.fixed_size:
        return list(model.input_size)
    m = model.size_multiple
    h, w = (-(-s // m) * m for s in model.min_size)
    return [model.input_size[0], h, w]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--per-family", action="store_true", help="only the smallest model of each family")
    ap.add_argument("--format", default="onnx", choices=["onnx", "torchscript", "exported-program"])
    ap.add_argument("--out", default=None, help="write the results as JSON")
    args = ap.parse_args()
    torch.set_num_threads(1)
    names = list_models()
    if args.per_family:
        best: dict[str, str] = {}
        for n in names:
            c = model_info(n)
            if c.family not in best or c.ref_params < model_info(best[c.family]).ref_params:
                best[c.family] = n
        names = sorted(best.values(), key=lambda n: model_info(n).family)
    rows = []
    t_all = time.perf_counter()
    with tempfile.TemporaryDirectory() as d:
        for n in names:
            model, meta = load_source(n, num_classes=10)
            meta["input_size"] = smallest_input(model)
            try:
                r = export_model(model, meta=meta, out=Path(d) / "m", format=args.format)
                row = {
                    "model": n,
                    "ok": True,
                    "diff": r.max_abs_diff,
                    "tol": r.tolerance,
                    "s": round(r.seconds, 1),
                }
            except ValueError as e:
                row = {"model": n, "ok": False, "error": str(e)}
            row["input"] = "x".join(map(str, meta["input_size"]))
            rows.append(row)
            status = (
                f"ok  diff {row['diff']:.1e} <= {row['tol']:.0e}  {row['s']}s" if row["ok"] else row["error"]
            )
            print(f"{n:28s} {row['input']:10s} {status}", flush=True)
    ok = sum(r["ok"] for r in rows)
    print(
        f"{ok}/{len(rows)} models export to {args.format} and verify; {time.perf_counter() - t_all:.0f}s in all"
    )
    if args.out:
        atomic_write_text(args.out, json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
