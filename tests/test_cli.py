import json

from cnnlineage.cli import main


def test_list_prints_table(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "lenet5" in out and "1998" in out and "1x32x32" in out and "60.9K" in out


def test_list_json_and_pattern(capsys):
    assert main(["list", "lenet*", "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in rows] == ["lenet1", "lenet4", "lenet5", "lenet5_modern"]


def test_info(capsys):
    assert main(["info", "lenet5"]) == 0
    out = capsys.readouterr().out
    assert "LeCun" in out and "Gradient-Based Learning" in out and "60,850" in out


def test_info_unknown_model_is_a_clear_error(capsys):
    assert main(["info", "lenet"]) == 2
    err = capsys.readouterr().err
    assert "unknown model 'lenet'" in err and "lenet5" in err


def test_list_matches_part_of_a_name_in_any_case(capsys):
    assert main(["list", "RESNET", "--format", "json"]) == 0
    names = [r["name"] for r in json.loads(capsys.readouterr().out)]
    assert {"resnet18", "resnet50", "preact_resnet18", "seresnet50"} <= set(names)
    assert main(["list", "resnt18"]) == 1
    assert "no registered model matches 'resnt18'; closest names: resnet18" in capsys.readouterr().err


def test_list_unknown_family_names_the_families(capsys):
    assert main(["list", "--family", "nosuch"]) == 2
    err = capsys.readouterr().err
    assert "no model family 'nosuch'" in err and "lenet" in err and "None" not in err
    assert main(["list", "--family", "VGG", "--format", "json"]) == 0
    assert {r["family"] for r in json.loads(capsys.readouterr().out)} == {"vgg"}


def test_info_ignores_case(capsys):
    assert main(["info", "LeNet5"]) == 0
    assert "lenet5" in capsys.readouterr().out


def _run_into_closed_pipe(*argv):
    """Run the CLI with stdout a pipe whose reader has already gone, as in `cnnlineage list | head`."""
    import os
    import subprocess
    import sys

    read, write = os.pipe()
    os.close(read)
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "cnnlineage", *argv],
            stdout=write,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
        )
    finally:
        os.close(write)
    return proc


def test_a_closed_pipe_ends_quietly():
    for argv in (["list"], ["info", "resnet50"], ["summary", "lenet5"]):
        proc = _run_into_closed_pipe(*argv)
        assert proc.stderr == "" and proc.returncode == 141, (argv, proc.stderr[-500:])


def test_an_os_error_is_one_line_naming_the_path(tmp_path):
    import subprocess
    import sys

    blocker = tmp_path / "file"
    blocker.write_text("x")
    proc = subprocess.run(
        [sys.executable, "-m", "cnnlineage", "compare", "lenet5", "--out", str(blocker / "plots"), "--quiet"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip() == (
        f"cnnlineage compare: error: {blocker / 'plots'}: Not a directory "
        "(a file is in the way where a directory is needed; choose another path)"
    )


def test_read_only_and_full_disks_are_named(monkeypatch, tmp_path, capsys):
    import errno
    import os
    from pathlib import Path

    target = tmp_path / "plots"
    for code, reason, hint in (
        (errno.EROFS, "Read-only file system", "the file system is read-only; choose another location"),
        (
            errno.ENOSPC,
            "No space left on device",
            "the disk is full; free some space or choose another location",
        ),
    ):

        def refuse(self, *args, _code=code, **kwargs):
            raise OSError(_code, os.strerror(_code), str(self))

        monkeypatch.setattr(Path, "mkdir", refuse)  # as root, chmod cannot make a directory unwritable
        assert main(["compare", "lenet5", "--out", str(target), "--quiet"]) == 2
        err = capsys.readouterr().err
        assert err == f"cnnlineage compare: error: {target}: {reason} ({hint})\n"
