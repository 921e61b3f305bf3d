"""The experiment frame: verdict aggregation, resume, output-directory guards, bad input, the report."""

import json

import pytest

from cnnlineage.cli import main
from cnnlineage.experiments import (
    HOLDS,
    NOT_AT_THIS_SCALE,
    SEEDS_DISAGREE,
    Experiment,
    Unit,
    assemble_report,
    get_experiment,
    list_experiments,
    run_experiment,
    verdict_from_seeds,
)
from cnnlineage.experiments.base import by_condition, seeds_of


def test_verdict_from_seeds_aggregates_per_seed_outcomes():
    assert verdict_from_seeds({0: True, 1: True}, "r").outcome == HOLDS
    assert verdict_from_seeds({0: False, 1: False, 2: False}, "r").outcome == NOT_AT_THIS_SCALE
    assert verdict_from_seeds({0: True, 1: False}, "r").outcome == SEEDS_DISAGREE
    assert verdict_from_seeds({3: False}, "r").per_seed == {3: False}
    with pytest.raises(ValueError):
        verdict_from_seeds({}, "r")


def _toy(calls: list) -> Experiment:
    """An experiment whose units record that they ran; value = seed + 10 for condition b."""

    def unit(cond: str, s: int) -> Unit:
        def run(ctx):
            calls.append((cond, s))
            return {"value": s + (10 if cond == "b" else 0)}

        return Unit(f"{cond}-s{s}", s, {"cond": cond}, run)

    def verdict(results):
        c = by_condition(results)
        return verdict_from_seeds(
            {s: c["b"][s]["value"] > c["a"][s]["value"] for s in seeds_of(results)}, "b > a"
        )

    return Experiment(
        name="toy", title="t", claim="b beats a", source="none", protocol="n={n}", rule="b > a per seed",
        budgets={"full": {"n": 2}, "quick": {"n": 1}},
        plan=lambda b, seeds: [unit(c, s) for s in seeds for c in "ab"],
        verdict=verdict, figures=lambda r, out: [], table=lambda r: "| x |\n|---|", default_seeds=2,
    )  # fmt: skip


def test_rerun_continues_and_reuses_finished_units(tmp_path):
    calls = []
    exp = _toy(calls)
    res = run_experiment(exp, out=tmp_path / "t", progress=False, log=lambda *_: None)
    assert res["verdict"]["outcome"] == HOLDS and len(calls) == 4
    assert res["units"]["b-s1"]["data"] == {"value": 11} and res["protocol"] == "n=2"
    (tmp_path / "t" / "units" / "a-s1.json").unlink()  # as if killed before this unit finished
    calls.clear()
    res = run_experiment(exp, out=tmp_path / "t", seeds=3, progress=False, log=lambda *_: None)
    assert sorted(calls) == [("a", 1), ("a", 2), ("b", 2)]  # finished seeds are not redone
    assert res["seeds"] == [0, 1, 2]
    saved = json.loads((tmp_path / "t" / "results.json").read_text())
    assert set(saved["units"]) == {"a-s0", "b-s0", "a-s1", "b-s1", "a-s2", "b-s2"}
    assert "b beats a" in (tmp_path / "t" / "report.md").read_text()


def test_out_dir_guards(tmp_path):
    calls = []
    run_experiment(_toy(calls), out=tmp_path / "t", progress=False, log=lambda *_: None)
    with pytest.raises(ValueError, match="quick"):
        run_experiment(_toy(calls), out=tmp_path / "t", quick=True, progress=False)
    xor = get_experiment("xor")
    with pytest.raises(ValueError, match="holds the results of experiment 'toy'"):
        run_experiment(xor, out=tmp_path / "t", progress=False)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "keep.txt").write_text("mine")
    with pytest.raises(ValueError, match="not an experiment directory"):
        run_experiment(xor, out=tmp_path / "other", progress=False)
    assert (tmp_path / "other" / "keep.txt").read_text() == "mine"
    with pytest.raises(ValueError, match="positive integer"):
        run_experiment(xor, out=tmp_path / "new", seeds=0, progress=False)
    assert not (tmp_path / "new").exists()


def test_all_fourteen_experiments_are_listed_with_claims():
    names = list_experiments()
    assert len(names) == 14 and names[0] == "xor"
    for n in names:
        e = get_experiment(n)
        assert e.name == n and e.claim and e.source and e.rule
        assert set(e.budgets) == {"full", "quick"}
        e.describe_protocol(e.budgets["full"])  # every placeholder has a budget value
        e.describe_protocol(e.budgets["quick"])


def test_cli_bad_input(tmp_path, capsys):
    assert main(["experiment", "run", "relu-vs-tahn"]) == 2
    err = capsys.readouterr().err
    assert "unknown experiment 'relu-vs-tahn'" in err and "relu-vs-tanh" in err
    assert main(["experiment", "run", "xor", "--seeds", "0", "--out", str(tmp_path / "x")]) == 2
    assert "--seeds must be a positive integer" in capsys.readouterr().err
    assert main(["experiment", "report", str(tmp_path)]) == 2
    assert "no results.json" in capsys.readouterr().err


def test_report_needs_results(tmp_path):
    with pytest.raises(ValueError, match="no results.json"):
        assemble_report([tmp_path])


def test_units_made_with_other_settings_are_not_mixed_in(tmp_path):
    import dataclasses

    calls = []
    exp = _toy(calls)
    run_experiment(exp, out=tmp_path / "t", progress=False, log=lambda *_: None)
    changed = dataclasses.replace(exp, budgets={"full": {"n": 3}, "quick": {"n": 1}})
    with pytest.raises(ValueError, match="other full-budget settings"):
        run_experiment(changed, out=tmp_path / "t", progress=False)
