"""Run an int8 directory from ``cnnlineage quantize`` wherever a model is accepted (eval, predict, bench).

The directory (``quantized.json`` + ``model.int8.pt2`` or ``model.int8.onnx``, see
:mod:`cnnlineage.compress.quantize`) carries the source checkpoint's metadata, so it needs
nothing else. Its program fixes the runtime: a PT2E program is read back with
``torch.export.load`` and compiled again by inductor with freezing (``--backend compile``,
the default; ``eager`` runs the saved graph as it is, the reference int8 arithmetic), an
ONNX Runtime int8 model (QOperator or QDQ) runs on ONNX Runtime. torch inductor and ONNX Runtime do the heavy
lifting.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

__all__ = ["Int8Model", "int8_backend", "is_int8_dir"]

# The backends an int8 program can run on, per quantization method; the first is the default.
_RUNTIMES = {"pt2e": ("compile", "eager"), "onnxruntime": ("onnxruntime",)}


def is_int8_dir(path: str | Path) -> bool:
    """Return True for a directory written by ``cnnlineage quantize`` (it holds quantized.json)."""
    return Path(path).is_dir() and (Path(path) / "quantized.json").is_file()


def int8_backend(path: str | Path, method: str, backend: str | None) -> str:
    """Return the backend an int8 model of ``method`` runs on for ``--backend``; ValueError where it cannot."""
    runtimes = _RUNTIMES[method]
    if backend in (None, "auto"):
        return runtimes[0]
    if backend not in runtimes:
        what = "a torchao PT2E program" if method == "pt2e" else "an ONNX Runtime int8 model"
        runs = " or ".join(f"--backend {r}" for r in runtimes)
        raise ValueError(
            f"{path} is an int8 model from `cnnlineage quantize` ({what}): it runs on {runs} "
            f"(default {runtimes[0]}), not --backend {backend}"
        )
    return backend


class Int8Model(nn.Module):
    """An int8 directory behind ``forward(x) -> logits`` on CPU; ``meta`` as :func:`load_source`'s, plus ``int8``."""

    def __init__(
        self, directory: str | Path, *, backend: str | None = None, threads: int | None = None
    ) -> None:
        super().__init__()
        from ..compress.quantize import load_quantized
        from .meta import checkpoint_metadata

        self.dir = Path(directory)
        q = load_quantized(self.dir, compile=False, threads=threads or torch.get_num_threads())
        self.backend = int8_backend(self.dir, q.method, backend)
        if self.backend == "compile":
            from ..compress.quantize import _compile

            q.fn = _compile(q.fn)
        self._q = q  # not a submodule: the exported graph refuses .eval()/.train()
        self.meta: dict[str, Any] = checkpoint_metadata(q.meta, source=str(self.dir.resolve()))
        self.meta["model_name"] = f"{q.meta['model_name']} (int8, {q.method})"
        self.meta["int8"] = {"method": q.method, "file": q.info["file"], "architecture": q.meta["model_name"]}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._q(x.detach().float().cpu().contiguous())

    def float_twin(self) -> nn.Module:
        """Return the fp32 architecture on the meta device (for FLOP counts), pruned widths included."""
        from ..models._resize import apply_structure
        from ..registry import create_model
        from ..train.config import config_from_dict

        m = self._q.meta
        cfg = config_from_dict(m["config"])
        with torch.device("meta"):
            model = create_model(
                m["model_name"],
                num_classes=m["num_classes"],
                in_chans=m["in_chans"],
                **dict(cfg.model.kwargs),
            )
            apply_structure(model, cfg.model.pruned)
        return model.eval()
