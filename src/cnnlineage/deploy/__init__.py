"""Ship what you train: export (ONNX, TorchScript, exported program), fast inference backends, BatchNorm folding, bench.

- :func:`load_source`: a registered name or a training checkpoint → model and metadata.
- :func:`export_model`: verified export with the metadata inference needs embedded.
- :func:`prepare`: eager, channels-last, ``torch.compile``, ONNX Runtime or ``auto``.
- :func:`evaluate_file`, :func:`predict_files`: ``.onnx`` files and checkpoints on any backend.
- :func:`fold_batchnorm`: BatchNorm folded into the preceding convolution or linear layer.
- :func:`bench`, :func:`measure_peak`: latency, throughput, achieved GFLOP/s against the
  measured GEMM peak.

The heavy lifting is done by torch.export / torch.onnx with onnxscript (export), ONNX
Runtime (inference), and torch inductor (``compile``).
"""

from .backends import BACKENDS, choose_backend, prepare
from .export import FORMATS, ExportResult, export_model
from .inference import evaluate_file, load_runner, predict_files
from .source import load_source

__all__ = [
    "BACKENDS",
    "FORMATS",
    "ExportResult",
    "choose_backend",
    "evaluate_file",
    "export_model",
    "load_runner",
    "load_source",
    "predict_files",
    "prepare",
]
