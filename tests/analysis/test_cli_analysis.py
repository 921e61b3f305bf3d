import json

from cnnlineage.cli import main


def test_summary_table_and_formats(capsys):
    assert main(["summary", "lenet5"]) == 0
    out = capsys.readouterr().out
    assert "c1" in out and "Conv2d" in out and "60,850" in out and "receptive field" in out
    assert main(["summary", "lenet5", "--format", "json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["total_params"] == 60_850 and d["rows"][0]["name"] == "c1"
    assert main(["summary", "lenet5_modern", "--format", "csv", "--depth", "1"]) == 0
    assert capsys.readouterr().out.startswith("name,type")
    assert main(["summary", "alexnet", "--input", "3x227x227", "--format", "md"]) == 0
    assert "| features.0 | Conv2d | 64x56x56 |" in capsys.readouterr().out


def test_summary_help_states_the_definitions(capsys):
    try:
        main(["summary", "--help"])
    except SystemExit:
        pass
    out = capsys.readouterr().out
    assert "multiply-accumulates" in out and "2 x MACs" in out


def test_summary_bad_input_is_a_clear_error(capsys):
    assert main(["summary", "alexnet", "--input", "3x16x16"]) == 2
    err = capsys.readouterr().err
    assert "cannot take input 3x16x16" in err and "layer 'features." in err
    assert main(["summary", "alexnet", "--input", "224"]) == 2
    assert "CxHxW" in capsys.readouterr().err


def test_compare_writes_table_and_plots(tmp_path, capsys):
    assert main(["compare", "lenet5", "alexnet", "vgg11", "--out", str(tmp_path), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "alexnet" in out and "2012" in out and "56.5" in out  # published top-1 from torchvision
    for f in ("lineage.csv", "lineage.md", "top1_vs_gmacs.png", "params_by_year.png", "gmacs_by_year.png"):
        assert (tmp_path / f).stat().st_size > 0
    rows = (tmp_path / "lineage.csv").read_text().splitlines()
    assert len(rows) == 4 and rows[0].startswith("name,family,year")


def test_summary_leads_with_the_channel_problem(capsys):
    assert main(["summary", "lenet5", "--input", "3x32x32"]) == 2
    err = capsys.readouterr().err.strip()
    assert (
        err
        == "cnnlineage summary: error: lenet5 takes 1-channel input (grey images), got 3 channel(s) in 3x32x32; try 1x32x32"
    )


def test_summary_explains_the_28x28_padding_train_uses(capsys):
    assert main(["summary", "lenet5", "--input", "1x28x28"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("cnnlineage summary: error: lenet5 takes only 32x32 inputs")
    assert "pad_input=true" in err and "Kernel size" not in err
    assert (
        main(["summary", "lenet5", "--input", "1x28x28", "--set", "pad_input=true", "--format", "json"]) == 0
    )
    d = json.loads(capsys.readouterr().out)
    assert d["input_size"] == [1, 28, 28] and d["total_params"] == 60_850


def test_summary_depth_and_batch_must_be_positive(capsys):
    import pytest

    for argv in (["--depth", "0"], ["--depth", "-1"], ["--batch", "0"]):
        with pytest.raises(SystemExit) as e:
            main(["summary", "lenet5", *argv])
        assert e.value.code == 2 and "expected a positive integer" in capsys.readouterr().err


def test_compare_refuses_empty_patterns_and_files_and_dedupes(tmp_path, capsys):
    assert main(["compare", "nomatch*", "--quiet"]) == 2
    assert "no registered model matches the pattern 'nomatch*'" in capsys.readouterr().err
    assert main(["compare", "lenet5", "LeNet5", "lenet*", "--quiet"]) == 0
    out, err = capsys.readouterr()
    assert [ln.split()[0] for ln in out.splitlines()[2:]] == ["lenet5", "lenet1", "lenet4", "lenet5_modern"]
    assert "2 repeated name(s) compared once" in err
    existing = tmp_path / "table.txt"
    existing.write_text("keep")
    assert main(["compare", "lenet5", "--out", str(existing), "--quiet"]) == 2
    assert f"--out {existing} is an existing file; pass a directory" in capsys.readouterr().err
    assert existing.read_text() == "keep"
