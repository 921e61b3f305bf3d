"""The built site without a browser: links resolve, tables are real HTML, bad input is reported, not fatal."""

from __future__ import annotations

import json
import re
import threading
import urllib.request
from html.parser import HTMLParser
from pathlib import Path

import pytest

from cnnlineage.analysis import profile
from cnnlineage.cli import main
from cnnlineage.registry import list_models
from cnnlineage.site import build_site, make_server

MAX_PAGE = 2 * 2**20


class _Refs(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.refs: list[str] = []
        self.leaf_rows = 0
        self.in_layers = False

    def handle_starttag(self, tag, attrs):  # noqa: ANN001
        a = dict(attrs)
        for key in ("href", "src"):
            if a.get(key):
                self.refs.append(a[key])
        if tag == "table" and a.get("id") == "layers":
            self.in_layers = True
        if tag == "tr" and self.in_layers and (a.get("class") or "").split()[:1] == ["r"]:
            self.leaf_rows += 1

    def handle_endtag(self, tag):  # noqa: ANN001
        if tag == "table":
            self.in_layers = False


def _parse(path: Path) -> _Refs:
    p = _Refs()
    p.feed(path.read_text())
    return p


def _check_links(site: Path) -> int:
    """Assert every local href/src of every page resolves to a file; no page loads anything remote; return #pages."""
    pages = sorted(site.rglob("*.html"))
    for page in pages:
        assert page.stat().st_size < MAX_PAGE, f"{page} is {page.stat().st_size:,} bytes"
        text = page.read_text()
        assert not re.search(r'<(script|link|img)[^>]+(src|href)="(https?:)?//', text), (
            f"{page} loads a remote resource"
        )
        for ref in _parse(page).refs:
            if re.match(r"^(https?:|mailto:|#|data:)", ref):
                continue
            target = (page.parent / ref.split("#")[0].split("?")[0]).resolve()
            assert target.is_file(), f"{page.relative_to(site)} links to missing {ref}"
    return len(pages)


def test_session_site_links_sizes_and_layer_rows_without_javascript(site_dir, site_models):
    n = _check_links(site_dir)
    assert (
        n == 1 + 1 + 1 + len(site_models) + 2 + 1 + 1 + 1
    )  # home, compare, search, models, runs, experiments
    assert (site_dir / "assets" / "plotly.min.js").stat().st_size > 1_000_000  # bundled once, not per page
    for name in ("resnet18", "preact_resnet1001"):  # the largest layer table of the registry stays under 2 MB
        page = site_dir / "models" / f"{name}.html"
        assert _parse(page).leaf_rows == len(profile(name).rows)


def test_whole_registry_quick_build_links_every_model(tmp_path):
    report = build_site(out=tmp_path / "s", quick=True)
    names = list_models()
    assert report.models == len(names) and not report.warnings
    assert all((tmp_path / "s" / "models" / f"{n}.html").is_file() for n in names)
    _check_links(tmp_path / "s")
    home = (tmp_path / "s" / "index.html").read_text()
    assert all(f'href="models/{n}.html"' in home for n in names)  # the timeline reaches every model
    assert "not profiled" in (tmp_path / "s" / "models" / "resnet50.html").read_text()


def test_runs_and_experiments_pages(site_dir, site_inputs):
    runs_index = (site_dir / "runs" / "index.html").read_text()
    assert "lenet5-seed0" in runs_index and "lenet5-seed1" in runs_index and "fig-runs-top1" in runs_index
    run = (site_dir / "runs" / "lenet5-seed0.html").read_text()
    assert 'src="lenet5-seed0/learning_curves.png"' in run and "config.yaml" in run
    exp = (site_dir / "experiments" / "why-cnn.html").read_text()
    assert "<table>" in exp and "lenet5" in exp  # the Markdown table, rendered
    assert 'src="why-cnn/shift_robustness.png"' in exp and 'src="why-cnn/unreferenced.png"' in exp
    assert "<script>alert" not in exp and "&lt;script&gt;" in exp  # raw HTML is shown, never run
    assert "javascript:" not in exp and '<a href="#">a link</a>' in exp
    assert "https://example.com/x.png" in exp and 'src="https://' not in exp  # remote images are not fetched
    assert "verdict.outcome" in exp and "holds" in (site_dir / "experiments" / "index.html").read_text()


def test_out_dir_that_is_a_file_is_an_exit_2_error(tmp_path, capsys):
    f = tmp_path / "file"
    f.write_text("x")
    assert main(["site", "--out", str(f), "--quick", "--models", "lenet5"]) == 2
    err = capsys.readouterr().err
    assert "is a file" in err and str(f) in err
    d = tmp_path / "mine"
    d.mkdir()
    (d / "notes.txt").write_text("keep me")
    assert main(["site", "--out", str(d), "--quick", "--models", "lenet5"]) == 2
    assert "no cnnlineage site" in capsys.readouterr().err and (d / "notes.txt").read_text() == "keep me"


def test_missing_and_empty_inputs_warn_and_the_pages_say_so(tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    out = tmp_path / "s"
    rc = main(["site", "--out", str(out), "--quick", "--models", "lenet5", "--runs", str(tmp_path / "nope"), str(empty),
               "--experiments", str(tmp_path / "noexp")])  # fmt: skip
    assert rc == 0
    err = capsys.readouterr().err
    assert f"runs directory {tmp_path / 'nope'} does not exist" in err
    assert (
        f"no runs in {empty}" in err and f"experiments directory {tmp_path / 'noexp'} does not exist" in err
    )
    runs = (out / "runs" / "index.html").read_text()
    assert "does not exist" in runs and "No runs found" in runs
    assert "does not exist" in (out / "experiments" / "index.html").read_text()
    (out / "mine.txt").write_text("keep me")
    rc = main(["site", "--out", str(out), "--quick", "--models", "resnet20"])  # a rebuild over a site is fine
    assert (
        rc == 0 and not (out / "models" / "lenet5.html").exists()
    )  # written by the earlier build only: removed
    assert (out / "models" / "resnet20.html").is_file() and (out / "mine.txt").read_text() == "keep me"


def test_a_model_whose_profiling_fails_still_gets_a_page(tmp_path, capsys, monkeypatch):
    import cnnlineage.site.models as sm

    real = sm._profile

    def broken(name):  # noqa: ANN001, ANN202
        if name == "alexnet":
            raise RuntimeError("meta kernel missing for op X")
        return real(name)

    monkeypatch.setattr(sm, "_profile", broken)
    sm.model_data.cache_clear()
    try:
        assert main(["site", "--out", str(tmp_path / "s"), "--models", "lenet5", "alexnet", "--quiet"]) == 0
    finally:
        sm.model_data.cache_clear()
    err = capsys.readouterr().err
    assert "warning: model alexnet: profiling failed: RuntimeError: meta kernel missing for op X" in err
    page = (tmp_path / "s" / "models" / "alexnet.html").read_text()
    assert "Missing:" in page and "meta kernel missing" in page and "Krizhevsky" in page
    assert 'id="layers"' not in page
    assert "profiling failed" in (tmp_path / "s" / "compare.html").read_text()
    assert 'id="layers"' in (tmp_path / "s" / "models" / "lenet5.html").read_text()


def test_serve_is_local_only(site_dir, capsys):
    server = make_server(site_dir, port=0)
    host, port = server.server_address[:2]
    assert host == "127.0.0.1"
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/index.html", timeout=10) as r:
            assert r.status == 200 and b"cnnlineage" in r.read()
    finally:
        server.shutdown()
        server.server_close()
    assert main(["site", "--serve", str(site_dir / "models")]) == 2
    assert "holds no index.html" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["site"], ["site", "--models", "nosuch*", "--out", "x"]])
def test_usage_errors(argv, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    assert "error:" in capsys.readouterr().err


def test_model_pages_list_only_commands_this_installation_has(tmp_path):
    build_site(out=tmp_path / "a", models=["lenet5", "resnet20", "resnet18"], quick=True,
               commands={"train", "summary", "info", "export"})  # fmt: skip
    lenet = (tmp_path / "a" / "models" / "lenet5.html").read_text()
    assert "cnnlineage train lenet5 --epochs 5" in lenet and "cnnlineage export lenet5 --format onnx" in lenet
    assert "--data shapes10" in (tmp_path / "a" / "models" / "resnet20.html").read_text()  # 3x32x32 input
    assert (
        "--data imagefolder" in (tmp_path / "a" / "models" / "resnet18.html").read_text()
    )  # 3x224x224 input
    build_site(out=tmp_path / "b", models=["lenet5"], quick=True, commands={"train", "summary", "info"})
    # resnet18 has no edge of its own: its page shows the family's (resnet50's) with their reasons
    build_site(out=tmp_path / "c", models=["highway_cnn", "resnet18", "resnet50"], quick=True)
    r18 = (tmp_path / "c" / "models" / "resnet18.html").read_text()
    assert (
        "its family's do" in r18
        and 'href="highway_cnn.html">highway_cnn</a> → <a href="resnet50.html"' in r18
    )
    assert "cnnlineage export" not in (tmp_path / "b" / "models" / "lenet5.html").read_text()


def test_missing_site_extra_is_a_clear_error(tmp_path, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "plotly" else real(name, *a)
    )
    with pytest.raises(ValueError, match=r"needs plotly.*pip install 'cnnlineage\[site\]'"):
        build_site(out=tmp_path / "s", models=["lenet5"], quick=True)
    assert not (tmp_path / "s").exists()


def test_an_unfinished_run_with_a_torn_line_is_shown_as_far_as_it_got(tmp_path, capsys):
    run = tmp_path / "runs" / "half"
    run.mkdir(parents=True)
    lines = [{"epoch": 1, "train_loss": 2.0, "test_loss": 1.9, "train_top1": 30.0, "test_top1": 35.0}]
    (run / "metrics.jsonl").write_text("\n".join(map(json.dumps, lines)) + '\n{"epoch": 2, "train_lo')
    out = tmp_path / "s"
    assert (
        main(["site", "--out", str(out), "--quick", "--models", "lenet5", "--runs", str(tmp_path / "runs")])
        == 0
    )
    err = capsys.readouterr().err
    assert "1 unreadable line(s) in metrics.jsonl skipped" in err and "no config.yaml" in err
    page = (out / "runs" / "half.html").read_text()
    assert "unfinished: no summary.json" in page and "learning_curves.png is missing" in page
    assert ">35.0000<" in page  # the epoch that was written
    assert "unfinished" in (out / "runs" / "index.html").read_text()
