"""The input check runs on eager calls only: tracers (torch.fx, TorchScript, torch.compile) do not see it."""

from __future__ import annotations

import warnings

import pytest
import torch
import torch.fx

from cnnlineage.models._base import input_checks_disabled, is_tracing
from cnnlineage.registry import create_model


@pytest.fixture(scope="module")
def model() -> torch.nn.Module:
    torch.manual_seed(0)
    return create_model("resnet20").eval()


def test_fx_traces_through_the_check(model: torch.nn.Module) -> None:
    x = torch.randn(2, 3, 16, 16)
    graph = torch.fx.symbolic_trace(model)  # a Proxy fails the check; the tracer is recognised then
    torch.testing.assert_close(graph(x), model(x))
    # the traced graph holds the network's operations only: no shape comparison became a node
    assert not any(n.target in ("dim", "size") for n in graph.graph.nodes)


def test_torchscript_trace_skips_the_check_without_warnings(model: torch.nn.Module) -> None:
    x = torch.randn(2, 3, 16, 16)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        traced = torch.jit.trace(model, (x,))
    tracer = [w for w in caught if issubclass(w.category, torch.jit.TracerWarning)]
    assert tracer == [], [str(w.message) for w in tracer]
    torch.testing.assert_close(traced(x), model(x))


def test_eager_calls_are_still_checked(model: torch.nn.Module) -> None:
    assert not is_tracing()
    with pytest.raises(ValueError, match="expects 3 input channel"):
        model(torch.randn(1, 1, 16, 16))
    with pytest.raises(ValueError, match="floating-point"):
        model(torch.zeros(1, 3, 16, 16, dtype=torch.uint8))
    with input_checks_disabled(), pytest.raises(RuntimeError):  # the layer itself fails, unchecked
        model(torch.randn(1, 1, 16, 16))
