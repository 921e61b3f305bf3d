import os

import pytest
import torch

# Tests never touch the network: torchvision/timm builders are used with weights=None
# and pretrained=False only. Make an accidental download fail fast instead of hanging.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TORCH_HOME", os.path.join(os.path.dirname(__file__), ".torch_home_unused"))


# Under pytest-xdist each worker computes with one thread: two workers on two cores are
# faster than two threads contending inside one process, for the many small operators
# of very deep networks above all.
if os.environ.get("PYTEST_XDIST_WORKER"):
    torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    yield
