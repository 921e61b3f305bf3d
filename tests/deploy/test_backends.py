"""Inference backends give the model's logits; `auto` measures once, caches by machine and torch version."""

from __future__ import annotations

import json

import pytest
import torch

from cnnlineage.deploy.backends import cache_path, choose_backend, machine_key, prepare
from cnnlineage.registry import create_model


@pytest.fixture()
def model():
    return create_model("lenet5").eval()


@pytest.mark.parametrize("backend", ["eager", "channels_last", "onnxruntime"])
def test_backend_matches_eager(model, backend):
    x = torch.randn(3, 1, 32, 32)
    with torch.no_grad():
        ref = model(x)
        got = prepare(model, backend, input_size=(1, 32, 32), batch=3)(x)
    assert (got - ref).abs().max() <= 1e-4 * max(1.0, ref.abs().max().item())


@pytest.mark.slow
def test_compile_backend_matches_eager(model):
    x = torch.randn(1, 1, 32, 32)
    with torch.no_grad():
        ref = model(x)
        got = prepare(model, "compile", input_size=(1, 32, 32))(x)
    assert (got - ref).abs().max() <= 1e-4 * max(1.0, ref.abs().max().item())


def test_auto_measures_once_then_reads_the_cache(model, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CNNLINEAGE_CACHE", str(tmp_path))
    kw = dict(input_size=(1, 32, 32), candidates=("eager", "channels_last"), reps=2)
    first = choose_backend(model, **kw)
    err = capsys.readouterr().err
    assert first in ("eager", "channels_last") and f"backend auto: {first} (measured" in err
    cache = json.loads(cache_path().read_text())
    (key,) = cache
    assert key.startswith(machine_key()) and f"torch {torch.__version__}" in key and "lenet5" in key
    assert set(cache[key]["median_ms"]) == {"eager", "channels_last"}
    # a second call does not measure: it reads the cached choice
    cache[key]["backend"] = "channels_last" if first == "eager" else "eager"
    cache_path().write_text(json.dumps(cache))
    assert choose_backend(model, **kw) == cache[key]["backend"]
    assert "(cached in" in capsys.readouterr().err


def test_auto_skips_a_backend_that_fails(model, tmp_path, monkeypatch, capsys):
    import cnnlineage.deploy.backends as b

    monkeypatch.setenv("CNNLINEAGE_CACHE", str(tmp_path))
    real = b.prepare

    def flaky(m, backend, **k):
        if backend == "channels_last":
            raise RuntimeError("not on this machine")
        return real(m, backend, **k)

    monkeypatch.setattr(b, "prepare", flaky)
    assert (
        choose_backend(model, input_size=(1, 32, 32), candidates=("eager", "channels_last"), reps=1)
        == "eager"
    )
    (entry,) = json.loads(cache_path().read_text()).values()
    assert "not on this machine" in entry["errors"]["channels_last"]


def test_unknown_backend_is_refused(model):
    with pytest.raises(ValueError, match="--backend must be one of"):
        prepare(model, "tensorrt", input_size=(1, 32, 32))
