import pytest

from cnnlineage.train import train


def tiny_config(out, **extra) -> dict:
    """LeNet-5 (modern) on 1,024 mnist5k digits for 3 epochs: a real, cheap checkpoint."""
    cfg = {
        "model": {"name": "lenet5_modern", "kwargs": {"pad_input": True}},
        "data": {"name": "mnist5k", "batch_size": 64, "train_subset": 1024, "test_subset": 256},
        "optim": {"name": "adam", "lr": 0.003},
        "schedule": {"name": "none"},
        "epochs": 3,
        "threads": 1,
        "run": {"out_dir": str(out), "progress": "none", "tensorboard": False, "plots": False},
    }
    for key, value in extra.items():
        section, _, name = key.partition("__")
        if name:
            cfg.setdefault(section, {})[name] = value
        else:
            cfg[section] = value
    return cfg


@pytest.fixture(scope="session")
def tiny_ckpt(tmp_path_factory):
    """Return the best.pt of a 3-epoch lenet5_modern run on mnist5k (about 95% held-out top-1)."""
    out = tmp_path_factory.mktemp("lenet")
    train(tiny_config(out), log=lambda *_: None)
    return out / "checkpoints" / "best.pt"
