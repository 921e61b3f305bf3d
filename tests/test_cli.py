import json

from cnnlineage.cli import main


def test_list_prints_table(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "lenet5" in out and "1998" in out and "1x32x32" in out and "60.9K" in out


def test_list_json_and_pattern(capsys):
    assert main(["list", "lenet*", "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in rows] == ["lenet5", "lenet5_modern"]


def test_info(capsys):
    assert main(["info", "lenet5"]) == 0
    out = capsys.readouterr().out
    assert "LeCun" in out and "Gradient-Based Learning" in out and "60,850" in out


def test_info_unknown_model_is_a_clear_error(capsys):
    assert main(["info", "lenet"]) == 2
    err = capsys.readouterr().err
    assert "unknown model 'lenet'" in err and "lenet5" in err
