"""No registered model calls one module instance twice in a forward pass.

PT2E quantization annotates the graph per module call: a shared instance (torchvision's
BasicBlock reuses ``self.relu``) merges two call sites into one partition with two outputs
("Input partition has more than one output node") and breaks ``prepare_pt2e``.
Parameter-free modules count too, since that is exactly the trap.
"""

from __future__ import annotations

from collections import Counter

import pytest
import torch
import torch.nn as nn

from cnnlineage.models._base import input_checks_disabled
from cnnlineage.registry import create_model, get_builder, list_models, model_info


def calls_per_module(model: nn.Module, x: torch.Tensor) -> Counter:
    """Return {module path: number of calls} for one forward pass of ``model`` on ``x``."""
    counts: Counter = Counter()
    handles = [
        m.register_forward_hook(lambda mod, a, o, n=n: counts.update([n]))
        for n, m in model.named_modules()
        if n
    ]
    try:
        with torch.no_grad(), input_checks_disabled():
            model(x)
    finally:
        for h in handles:
            h.remove()
    return counts


class _Shared(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.conv2, self.relu = nn.Conv2d(1, 1, 1), nn.Conv2d(1, 1, 1), nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.conv2(self.relu(self.conv1(x))))


def test_the_check_catches_a_shared_relu():
    counts = calls_per_module(_Shared(), torch.zeros(1, 1, 4, 4))
    assert counts["relu"] == 2 and counts["conv1"] == 1


def _build(name: str) -> nn.Module:
    with torch.device("meta"):
        try:
            return create_model(name).eval()
        except (NotImplementedError, RuntimeError):  # a builder that needs real tensors
            pass
    return create_model(name).eval()


def _check(name: str) -> None:
    model = _build(name)
    x = torch.zeros(1, *model.input_size, device=next(model.parameters()).device)
    twice = {n: c for n, c in calls_per_module(model, x).items() if c > 1}
    assert not twice, f"{name} calls these module instances more than once per forward: {twice}"


def _smallest_per_family() -> list[str]:
    """Return, per family file and block design, its registered model with the fewest reference parameters."""
    best: dict[tuple, tuple[float, str]] = {}
    for name in list_models():
        card = model_info(name)
        key = (get_builder(name).__module__, str((card.default_kwargs or {}).get("block")))
        params = card.ref_params or float("inf")
        if key not in best or params < best[key][0]:
            best[key] = (params, name)
    # block designs that share a family file with a smaller model get their own representative
    extra = {"resnet20", "lenet5_modern", "mobilenet_v2", "mobilenet_v3_small", "seresnet50"}
    return sorted({n for _, n in best.values()} | (extra & set(list_models())))


@pytest.mark.parametrize("name", _smallest_per_family())
def test_no_module_instance_is_called_twice(name):
    _check(name)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(set(list_models()) - set(_smallest_per_family())))
def test_no_module_instance_is_called_twice_whole_registry(name):
    _check(name)
