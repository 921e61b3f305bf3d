"""torchao's PT2E int8 recipe on a captured graph: export, observe, convert, and say what stayed in float.

``torch.export`` captures the network as an ATen graph (a module it cannot capture is
named with the exporter's reason); torchao's ``prepare_pt2e`` with ``X86InductorQuantizer``
inserts observers where the quantizer has an int8 pattern, calibration batches feed them, and
``convert_pt2e`` writes quantize/dequantize pairs with int8 weights. :mod:`.quantize`
(post-training) and :mod:`.qat` (quantization-aware training) both build on these.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

import torch
import torch.nn as nn

__all__ = ["export_model", "float_layers_pt2e", "float_ops", "quantize_pt2e"]

COMPUTE_OPS = ("conv2d", "linear", "matmul", "bmm", "addmm", "mm")


def _batch_dim() -> dict[int, Any]:
    return {0: torch.export.Dim("batch", min=1, max=4096)}


def _failing_module(model: nn.Module, example: torch.Tensor) -> tuple[str, str]:
    """Return (module path, error) of the deepest submodule that torch.export cannot capture."""
    inputs: dict[str, tuple] = {}
    handles = [
        m.register_forward_hook(lambda mod, args, out, n=n: None if n in inputs else inputs.update({n: args}))
        for n, m in model.named_modules()
        if n
    ]
    try:
        with torch.no_grad():
            model(example)
    finally:
        for h in handles:
            h.remove()
    for name in sorted(inputs, key=lambda n: -n.count(".")):
        try:
            torch.export.export(model.get_submodule(name), inputs[name])
        except Exception as e:  # noqa: BLE001 - the exporter raises many kinds
            return name, str(e).strip().splitlines()[0]
    return "", ""


def export_model(model: nn.Module, example: torch.Tensor) -> torch.fx.GraphModule:
    """Return ``model`` captured by torch.export (dynamic batch); ValueError naming the module that cannot be."""
    model.eval()
    try:
        return torch.export.export(model, (example,), dynamic_shapes=(_batch_dim(),)).module()
    except Exception as e:  # noqa: BLE001
        name = getattr(model, "model_name", type(model).__name__)
        where, why = _failing_module(model, example)
        first = why or (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise ValueError(
            f"{name} cannot be captured by torch.export for PT2E quantization"
            f"{f' (module {where!r})' if where else ''}: {first}; try --method onnxruntime"
        ) from None


def _drop_unused(gm: torch.fx.GraphModule) -> None:
    """Delete parameters and buffers the converted graph no longer reads (the float weights)."""
    used = {n.target for n in gm.graph.nodes if n.op == "get_attr"}
    for name, _ in list(gm.named_parameters()) + list(gm.named_buffers()):
        if name not in used and not any(u.startswith(name + ".") for u in used):
            owner, _, attr = name.rpartition(".")
            mod = gm.get_submodule(owner) if owner else gm
            delattr(mod, attr)


def float_layers_pt2e(gm: torch.fx.GraphModule) -> list[dict[str, str]]:
    """Return [{"layer", "op", "why"}] for the conv/linear/matmul nodes of a converted graph that stayed in float."""
    out = []
    for node in gm.graph.nodes:
        if node.op != "call_function" or not any(op in str(node.target) for op in COMPUTE_OPS):
            continue
        producers = [a for a in node.args[:2] if isinstance(a, torch.fx.Node)]
        quantized = all("dequantize" in str(a.target) for a in producers)
        if not quantized:
            stack = node.meta.get("nn_module_stack") or {}
            layer = next(reversed(stack.values()))[0] if stack else node.name
            out.append(
                {
                    "layer": layer,
                    "op": str(node.target).split(".")[-2] if "." in str(node.target) else str(node.target),
                    "why": "X86InductorQuantizer has no int8 pattern for this op here (its input or weight "
                    "is not quantized), so it runs in fp32 between dequantize and quantize",
                }
            )
    return out


def float_ops(gm: torch.fx.GraphModule) -> dict[str, int]:
    """Return {op: count} of the ops that compute in fp32: none of their inputs is int8 (a dequantize) or an int8 op's output."""
    skip = ("quantize", "dequantize", "getitem", "_guards", "sym_size")

    def is_dq(n: Any) -> bool:
        return isinstance(n, torch.fx.Node) and "dequantize" in str(n.target)

    def is_int8_op(n: Any) -> bool:
        return isinstance(n, torch.fx.Node) and any(is_dq(a) for a in n.all_input_nodes)

    c: Counter[str] = Counter()
    for node in gm.graph.nodes:
        t = str(node.target)
        if node.op != "call_function" or any(s in t for s in skip):
            continue
        if any(is_dq(a) or is_int8_op(a) for a in node.all_input_nodes):
            continue  # int8 (or fused into the int8 op before it, like conv+relu)
        if node.users and all("quantize_per_tensor" in str(u.target) for u in node.users):
            continue  # float work that feeds the first quantize (e.g. padding of the input)
        c[t.replace("aten.", "").replace(".default", "")] += 1
    return dict(c)


def _calibrate(
    fn: Callable[[torch.Tensor], Any], batches: Iterable[tuple[torch.Tensor, torch.Tensor]]
) -> int:
    n = 0
    with torch.no_grad():
        for x, _ in batches:
            fn(x)
            n += len(x)
    if not n:
        raise ValueError("the calibration set is empty: the checkpoint's training split has no images")
    return n


def quantize_pt2e(
    model: nn.Module, *, example: torch.Tensor, batches: Iterable[tuple[torch.Tensor, torch.Tensor]]
) -> tuple[torch.fx.GraphModule, dict[str, Any]]:
    """Return (the int8 program from PT2E with X86InductorQuantizer, {"calibration_images", "float_layers", ...})."""
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e
    from torchao.quantization.pt2e.quantizer import x86_inductor_quantizer as xiq

    gm = export_model(model, example)
    quantizer = xiq.X86InductorQuantizer()
    quantizer.set_global(xiq.get_default_x86_inductor_quantization_config())
    prepared = prepare_pt2e(gm, quantizer)
    n = _calibrate(prepared, batches)
    converted = convert_pt2e(prepared)
    _drop_unused(converted)
    info = {
        "calibration_images": n,
        "weight_bytes": sum(t.numel() * t.element_size() for t in converted.state_dict().values()),
        "fp32_weight_bytes": sum(t.numel() * t.element_size() for t in model.state_dict().values()),
        "float_layers": float_layers_pt2e(converted),
        "float_ops": float_ops(converted),
    }
    return converted, info
