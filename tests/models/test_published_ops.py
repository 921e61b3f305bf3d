"""The analyzer's MACs for models torchvision publishes compute for: within 1% of the weights' ``_ops``.

torchvision's ``meta["_ops"]`` is in GFLOPS by its own convention, one multiply-add per
operation — our GMACs. Models are profiled on the meta device (no arithmetic).
"""

from __future__ import annotations

import pytest

import cnnlineage
from cnnlineage.analysis import profile

_SMALL = ["squeezenet1_0", "squeezenet1_1", "mnasnet0_5", "mnasnet0_75", "mnasnet1_0", "mnasnet1_3", "efficientnet_v2_s",
          "swin_t"]  # fmt: skip
_LARGE = ["efficientnet_v2_m", "efficientnet_v2_l", "swin_s", "swin_b"]  # 10-20 s each to trace: marked slow
NEW = _SMALL + [pytest.param(n, marks=pytest.mark.slow) for n in _LARGE]


@pytest.mark.parametrize("name", NEW)
def test_gmacs_within_one_percent_of_torchvision(name):
    import torchvision

    card = cnnlineage.model_info(name)
    meta = torchvision.models.get_model_weights(card.torchvision).DEFAULT.meta
    p = profile(name)
    assert p.total_params == meta["num_params"]
    gmacs = p.total_macs / 1e9
    assert abs(gmacs / meta["_ops"] - 1) < 0.01, f"{name}: {gmacs:.4f} GMACs, torchvision {meta['_ops']}"
