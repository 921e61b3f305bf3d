"""Design spaces, compound grid, EDFs, the width fit, and the search command end to end (--quick)."""

import json
import random
import subprocess
import sys

import numpy as np
import pytest

from cnnlineage.models.regnet import RegNetParams, regnet_stages
from cnnlineage.search.compound import compound_grid, scaled_config
from cnnlineage.search.design_space import (
    ANYNETX_RANGES,
    edf,
    fit_linear_widths,
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
