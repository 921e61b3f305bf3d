import pytest
from _tiny import tiny_config

from cnnlineage.train import train


@pytest.fixture(scope="session")
def tiny_ckpt(tmp_path_factory):
    """Return the best.pt of a 3-epoch lenet5_modern run on mnist5k (about 85% held-out top-1)."""
    out = tmp_path_factory.mktemp("lenet")
    train(tiny_config(out), log=lambda *_: None)
    return out / "checkpoints" / "best.pt"
