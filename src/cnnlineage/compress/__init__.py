"""Compression: int8 quantization (torchao PT2E, ONNX Runtime), structured and unstructured pruning
(Torch-Pruning, ``torch.nn.utils.prune``), and the report that sets them side by side.

Knowledge distillation is part of the trainer (``cnnlineage train STUDENT --distill TEACHER``,
:mod:`cnnlineage.train.distill`); the report reads its runs like any other checkpoint.
"""
