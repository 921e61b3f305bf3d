"""Design spaces, compound grid, EDFs, the width fit, and the search command end to end (--quick)."""

import json
import math
import random
import subprocess
import sys

import numpy as np
import pytest
import torch

from cnnlineage.models.regnet import RegNetParams, regnet_stages
from cnnlineage.search import common, design_space
from cnnlineage.search.common import SearchData, proxy_lr, proxy_train
from cnnlineage.search.compound import compound_grid, scaled_config
from cnnlineage.search.design_space import (
    ANYNETX_RANGES,
    PROXY,
    edf,
    fit_linear_widths,
    run_design_space,
    sample_anynetx,
    sample_regnetx,
)


def test_anynetx_samples_respect_the_space():
    rng = random.Random(0)
    r = ANYNETX_RANGES
    for _ in range(300):
        stages = sample_anynetx(rng)
        assert len(stages) == 4
        for d, w, b, g in stages:
            assert r["depth"][0] <= d <= r["depth"][1]
            assert w % 8 == 0 and r["width"][0] <= w <= r["width"][1]
            assert b in r["bottleneck"] and g in r["group"] and (w // b) % g == 0


def test_regnetx_samples_follow_the_linear_rule():
    rng = random.Random(1)
    for _ in range(100):
        params, stages = sample_regnetx(rng)
        assert 1 <= len(stages) <= 4
        widths = [s[1] for s in stages]
        assert widths == sorted(widths)  # widths never shrink with depth
        assert sum(s[0] for s in stages) == params["depth"]
        p = RegNetParams(**params)
        gen = regnet_stages(p, group_rounding="paper")  # the quantised linear rule, Eq. 2-4
        assert [[s.depth, s.width] for s in gen] == [st[:2] for st in stages]
        for _, w, _, g in stages:
            assert w % g == 0


def test_edf_by_hand():
    e = [10.0, 20.0, 20.0, 40.0]
    assert list(edf(e, np.array([5.0, 10.0, 15.0, 20.0, 50.0]))) == [0.0, 0.25, 0.25, 0.75, 1.0]


def test_width_fit_recovers_a_known_line():
    # blocks of widths 16 + 8 j exactly, written as stages of one block each
    stages = [[[1, 16 + 8 * j, 1, 8] for j in range(4)], [[1, 16 + 8 * j, 1, 8] for j in range(3)]]
    f = fit_linear_widths(stages)
    assert (
        f["w0"] == pytest.approx(16.0)
        and f["wa"] == pytest.approx(8.0)
        and f["e_fit"] == pytest.approx(0, abs=1e-12)
    )
    with pytest.raises(ValueError, match="at least two blocks"):
        fit_linear_widths([[[1, 8, 1, 8]]])


def test_proxy_lr_warms_up_linearly_then_follows_the_half_cosine():
    # without warm-up: the cosine over all steps, as before warm-up existed
    assert [proxy_lr(k, 4, 1.0) for k in range(4)] == pytest.approx(
        [1.0, (1 + math.sqrt(0.5)) / 2, 0.5, (1 - math.sqrt(0.5)) / 2]
    )
    # 4 warm-up steps of 10: 0.25, 0.5, 0.75, 1; then cos over the 6 left (step 7 is half-way)
    lrs = [proxy_lr(k, 10, 0.2, 4) for k in range(10)]
    assert lrs[:5] == pytest.approx([0.05, 0.1, 0.15, 0.2, 0.2]) and lrs[7] == pytest.approx(0.1)
    assert all(a >= b for a, b in zip(lrs[3:], lrs[4:]))  # never rises after the warm-up
    # a warm-up longer than the run is cut to leave the last step at the top of the cosine
    assert [proxy_lr(k, 3, 1.0, 10) for k in range(3)] == pytest.approx([0.5, 1.0, 1.0])


def _tiny_data(n=16, side=4):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2 * n, 3, side, side, generator=g)
    y = torch.arange(2 * n) % 10
    return SearchData("tiny", x[:n], y[:n], x[n:], y[n:], num_classes=10, in_chans=3, size=(side, side))


def test_proxy_train_uses_the_warm_up_schedule(monkeypatch):
    calls = []

    def spy(step, total, lr, warmup_steps=0):
        calls.append((step, total, lr, warmup_steps))
        return proxy_lr(step, total, lr, warmup_steps)

    monkeypatch.setattr(common, "proxy_lr", spy)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 4 * 4, 10))
    r = proxy_train(model, _tiny_data(), epochs=3, seed=0, lr=0.3, batch_size=8, warmup_steps=2)
    assert r["steps"] == 6 and calls == [(k, 6, 0.3, 2) for k in range(6)]
    with pytest.raises(ValueError, match="warm-up steps must be >= 0"):
        proxy_train(model, _tiny_data(), epochs=1, seed=0, warmup_steps=-1)


def test_proxy_defaults_are_the_documented_ones():
    # 16x16 images, the whole training split halved (5,000 search images on shapes10),
    # 4 epochs of batch 64 = 312 steps, lr 0.1 after a 40-step warm-up
    assert PROXY == dict(size=16, limit=0, epochs=4.0, lr=0.1, warmup_steps=40)
    assert math.ceil(PROXY["epochs"] * (10_000 // 2 // 64)) == 312


def test_design_space_resumes_extends_and_refuses_other_settings(tmp_path, monkeypatch):
    # one-block networks drawn from the model's own random stream keep this test to a second
    tiny = lambda rng: [[1, 8 * rng.randint(1, 4), 1, 8], [1, 16, 1, 8]]  # noqa: E731
    monkeypatch.setattr(design_space, "sample_anynetx", tiny)
    monkeypatch.setattr(design_space, "sample_regnetx", lambda rng: ({"depth": 2}, tiny(rng)))
    data = _tiny_data()
    kw = dict(epochs=1.0, lr=0.05, warmup_steps=1, seed=3)
    first = run_design_space(data, str(tmp_path), samples=1, **kw)
    assert [first["summary"][s]["n"] for s in ("anynetx", "regnetx")] == [1, 1]
    more = run_design_space(data, str(tmp_path), samples=2, **kw)  # extends: the first models are kept
    for space in ("anynetx", "regnetx"):
        assert len(more["models"][space]) == 2 and more["models"][space][0] == first["models"][space][0]
    with pytest.raises(ValueError, match="holds a design-space search"):
        run_design_space(data, str(tmp_path), samples=2, **{**kw, "lr": 0.1})


def test_compound_grid_holds_the_constraint_and_the_papers_point():
    grid = compound_grid()
    assert all(abs(a * b * b * g * g - 2) <= 0.1 and min(a, b, g) >= 1 for a, b, g in grid)
    assert (1.2, 1.1, 1.15) in grid
    cfg = scaled_config(1.2, 1.1, 1.15)
    assert cfg.resolution == 23 and cfg.width == pytest.approx(0.275) and cfg.depth == pytest.approx(0.3)


def _cli(*args, cwd):
    return subprocess.run(
        [sys.executable, "-m", "cnnlineage", "search", *args], capture_output=True, text=True, cwd=cwd
    )


def test_search_command_quick_design_space_writes_everything(tmp_path):
    out = tmp_path / "ds"
    r = _cli("design-space", "--data", "digits", "--quick", "--out", str(out), "--quiet", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    res = json.loads((out / "results.json").read_text())
    assert len(res["models"]["anynetx"]) == len(res["models"]["regnetx"]) == 2
    errors = {s: [m["error"] for m in ms] for s, ms in res["models"].items()}
    # the verdict is computed from the numbers
    med = {s: float(np.median(e)) for s, e in errors.items()}
    assert f"{med['regnetx']:.1f}%" in res["verdict"] and f"{med['anynetx']:.1f}%" in res["verdict"]
    assert (out / "edf.png").stat().st_size > 10_000 and "edf.png" in (out / "report.md").read_text()
    # rerunning continues: nothing is retrained
    r2 = _cli("design-space", "--data", "digits", "--quick", "--out", str(out), "--quiet", cwd=tmp_path)
    assert r2.returncode == 0 and json.loads((out / "results.json").read_text())["models"] == res["models"]


@pytest.mark.parametrize(
    "args, words",
    [
        (["dartz"], "did you mean 'darts'"),
        (["darts", "--budget", "-3"], "--budget is in minutes"),
        (["random", "--cost", "macs"], "applies to darts only"),
        (["random", "--candidates", "0"], "--candidates must be >= 1"),
    ],
)
def test_bad_input_is_one_line_with_status_2(tmp_path, args, words):
    r = _cli(*args, "--out", str(tmp_path / "o"), cwd=tmp_path)
    assert r.returncode == 2 and words in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_out_that_is_a_file_is_refused(tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    r = _cli("random", "--quick", "--out", str(f), cwd=tmp_path)
    assert r.returncode == 2 and "is a file" in r.stderr and f.read_text() == "x"
