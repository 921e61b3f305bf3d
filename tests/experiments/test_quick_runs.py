"""Three experiments end to end with --quick through the CLI: files, fields, figures, verdicts, report, rerun."""

import json

import pytest

from cnnlineage.cli import main
from cnnlineage.experiments import get_experiment

PNG = b"\x89PNG\r\n\x1a\n"


def _check_run(out, name, figures):
    res = json.loads((out / "results.json").read_text())
    assert res["experiment"] == name and res["budget_name"] == "quick"
    for field in (
        "claim",
        "source",
        "protocol",
        "rule",
        "units",
        "verdict",
        "seconds",
        "environment",
        "figures",
    ):
        assert field in res
    assert res["figures"] == figures and res["headline"]
    for f in figures:
        data = (out / f).read_bytes()
        assert data[:8] == PNG and len(data) > 5000
    # the stored verdict is what the rule computes from the stored numbers
    assert get_experiment(name).verdict(res).to_dict() == res["verdict"]
    md = (out / "report.md").read_text()
    assert f"## {name}:" in md and res["verdict"]["outcome"] in md and f"![{figures[0]}]({figures[0]})" in md
    return res


def test_xor_quick(tmp_path, capsys):
    out = tmp_path / "xor"
    assert main(["experiment", "run", "xor", "--quick", "--out", str(out), "--no-progress"]) == 0
    res = _check_run(out, "xor", ["xor_decision_boundaries.png", "xor_accuracy.png"])
    assert res["seeds"] == [0, 1] and set(res["units"]) == {
        "perceptron-s0",
        "mlp-s0",
        "perceptron-s1",
        "mlp-s1",
    }
    # Minsky & Papert: no single threshold unit gets more than 3 of the 4 XOR points right
    assert all(res["units"][f"perceptron-s{s}"]["data"]["accuracy"][-1] <= 75.0 for s in (0, 1))
    assert "verdict:" in capsys.readouterr().out


def test_cost_of_convolutions_quick_macs_match_hand_counts(tmp_path):
    out = tmp_path / "cost"
    assert (
        main(
            [
                "experiment",
                "run",
                "cost-of-convolutions",
                "--quick",
                "--out",
                str(out),
                "--no-progress",
                "--seeds",
                "1",
            ]
        )
        == 0
    )
    res = _check_run(out, "cost-of-convolutions", ["cost_of_convolutions.png"])
    b = res["budget"]
    c, hw = b["channels"], b["size"] ** 2
    macs = res["units"]["round-s0"]["data"]["macs_per_image"]
    assert macs["standard"] == 9 * c * c * hw
    assert macs["bottleneck"] == (c * c // 4 + 9 * (c // 4) ** 2 + c * c // 4) * hw  # He et al. Fig. 5
    assert macs["depthwise_separable"] == (9 * c + c * c) * hw  # Howard et al. §3.1
    assert macs["grouped"] == 9 * c * c // b["groups"] * hw
    assert all(t > 0 for t in res["units"]["round-s0"]["data"]["median_ms"].values())


def test_relu_vs_tanh_quick_trains_resumes_and_reports(tmp_path, capsys):
    out = tmp_path / "rvt"
    args = [
        "experiment",
        "run",
        "relu-vs-tanh",
        "--quick",
        "--out",
        str(out),
        "--no-progress",
        "--seeds",
        "1",
    ]
    assert main(args) == 0
    res = _check_run(out, "relu-vs-tanh", ["relu_vs_tanh_training_error.png"])
    relu = res["units"]["relu-s0"]["data"]
    assert len(relu["train_error"]) == res["budget"]["epochs"]
    assert (out / "runs" / "relu-s0" / "summary.json").is_file()  # a trainer run directory per unit
    # a rerun after a kill: the lost unit is redone from its finished trainer run, the other reused
    (out / "units" / "tanh-s0.json").unlink()
    before = (out / "units" / "relu-s0.json").read_text()
    assert main(args) == 0
    assert (out / "units" / "relu-s0.json").read_text() == before
    again = json.loads((out / "results.json").read_text())
    assert again["units"]["tanh-s0"]["data"]["train_error"] == res["units"]["tanh-s0"]["data"]["train_error"]
    capsys.readouterr()
    report = tmp_path / "report.md"
    assert main(["experiment", "report", str(out), "-o", str(report)]) == 0
    text = report.read_text()
    assert (
        "| `relu-vs-tanh` |" in text
        and "![relu_vs_tanh_training_error.png](rvt/relu_vs_tanh_training_error.png)" in text
    )


def test_another_experiments_directory_is_refused(tmp_path, capsys):
    out = tmp_path / "xor"
    assert (
        main(["experiment", "run", "xor", "--quick", "--out", str(out), "--no-progress", "--seeds", "1"]) == 0
    )
    before = (out / "results.json").read_text()
    assert main(["experiment", "run", "batchnorm", "--quick", "--out", str(out)]) == 2
    assert "holds the results of experiment 'xor'" in capsys.readouterr().err
    assert (out / "results.json").read_text() == before


@pytest.mark.parametrize("name", ["xor"])
def test_list_names_experiments(name, capsys):
    assert main(["experiment", "list"]) == 0
    assert name in capsys.readouterr().out


def test_a_training_unit_killed_mid_run_continues_from_its_checkpoint(tmp_path):
    from cnnlineage.experiments.base import Context, recipe

    def cfg(epochs):
        return recipe("exp_convnet", seed=0, epochs=epochs, data="mnist5k", lr=0.05, train_subset=96,
                      test_subset=50, kwargs={"widths": [4, 8, 8], "hidden": 16})  # fmt: skip

    whole = Context(root=tmp_path, unit_dir=tmp_path / "whole", budget={}).train(cfg(2))
    killed = Context(root=tmp_path, unit_dir=tmp_path / "killed", budget={})
    killed.train(cfg(1))
    (tmp_path / "killed" / "summary.json").unlink()  # as if killed after the first epoch's checkpoint
    resumed = killed.train(cfg(2))
    assert [h["epoch"] for h in resumed["history"]] == [1, 2]
    # the trainer's exact resume: the continued run ends where the uninterrupted one does
    assert resumed["history"][-1]["train_loss"] == whole["history"][-1]["train_loss"]
    assert resumed["history"][-1]["test_top1"] == whole["history"][-1]["test_top1"]
