"""The site in a real browser: headless Debian Chromium driven by Playwright (skipped where no chromium is found)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cnnlineage.analysis import profile
from cnnlineage.registry import list_models, model_info
from cnnlineage.site.models import model_data

pytestmark = pytest.mark.browser

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM:
        pytest.skip("no chromium on PATH (CI installs Debian's chromium package)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield b
        b.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory):
    return tmp_path_factory.mktemp("screenshots")


class Watched:
    """A page that records console errors and failed requests."""

    def __init__(self, browser, width: int = 1280, height: int = 900) -> None:  # noqa: ANN001
        self.page = browser.new_page(viewport={"width": width, "height": height})
        self.problems: list[str] = []
        self.page.on(
            "console",
            lambda m: self.problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None,
        )
        self.page.on("pageerror", lambda e: self.problems.append(f"page error: {e}"))
        self.page.on("requestfailed", self._failed)
        self.page.on(
            "response",
            lambda r: self.problems.append(f"HTTP {r.status}: {r.url}") if r.status >= 400 else None,
        )

    def _failed(self, request) -> None:  # noqa: ANN001
        # net::ERR_ABORTED is the browser cancelling a request because the page navigated away (a favicon still
        # loading when a link is followed); a missing file on disk is net::ERR_FILE_NOT_FOUND and still counts
        if request.failure != "net::ERR_ABORTED":
            self.problems.append(f"failed request: {request.url} {request.failure}")

    def open(self, url: str):  # noqa: ANN201
        self.page.goto(url)
        self.page.wait_for_load_state("load")
        return self.page

    def close(self) -> None:
        self.page.close()
        assert not self.problems, self.problems


def _url(site: Path, rel: str) -> str:
    return (site / rel).resolve().as_uri()


def test_home_from_disk_click_to_a_model_and_back(browser, site_dir, shots):
    w = Watched(browser)
    page = w.open(_url(site_dir, "index.html"))
    assert page.locator("#lineage a.node").count() >= 8
    page.keyboard.press("Tab")  # keyboard users land on the skip link first
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    page.screenshot(path=str(shots / "home.png"), full_page=True)
    page.locator('#lineage a.node[data-name="resnet18"]').click()
    page.wait_for_load_state("load")
    assert page.url.endswith("/models/resnet18.html") and page.locator("h1").inner_text().startswith(
        "resnet18"
    )
    page.go_back()
    page.wait_for_load_state("load")
    assert page.url.endswith("/index.html")
    page.focus('#lineage a.node[data-name="lenet5"]')  # keyboard: focus a box, Enter follows it
    assert page.locator("#lineage path.edge.hot").count() >= 1  # its arrows light up
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert page.url.endswith("/models/lenet5.html")
    w.close()


def _luminance(rgb: str) -> float:
    vals = [int(v) / 255 for v in rgb[rgb.index("(") + 1 : rgb.index(")")].split(",")[:3]]
    lin = [v / 12.92 if v <= 0.04045 else ((v + 0.055) / 1.055) ** 2.4 for v in vals]
    return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]


def test_text_contrast_meets_wcag_aa(browser, site_dir):
    # WCAG 2.1 contrast ratio (L1 + 0.05) / (L2 + 0.05) >= 4.5 for body-size text, on the nearest opaque background
    w = Watched(browser)
    page = w.open(_url(site_dir, "models/resnet18.html"))
    pairs = page.evaluate("""() => {
      const bg = (el) => { for (; el; el = el.parentElement) { const c = getComputedStyle(el).backgroundColor;
        if (c !== 'rgba(0, 0, 0, 0)' && c !== 'transparent') return c; } return 'rgb(255, 255, 255)'; };
      const sels = ['body', 'p.lead', '.muted', 'main a', 'header nav a', 'table.data td', 'table.data thead th',
                    '.tree .p', 'table.bars thead th', 'footer', 'pre code', '.ok', 'nav.crumbs'];
      return sels.map((s) => { const el = document.querySelector(s);
        return el ? [s, getComputedStyle(el).color, bg(el)] : [s, null, null]; });
    }""")
    for sel, fg, bg in pairs:
        assert fg, f"{sel} not found"
        hi, lo = sorted((_luminance(fg), _luminance(bg)), reverse=True)
        assert (hi + 0.05) / (lo + 0.05) >= 4.5, f"{sel}: {fg} on {bg}"
    w.close()


def test_home_through_serve(browser, site_dir):
    proc = subprocess.Popen([sys.executable, "-m", "cnnlineage", "site", "--serve", str(site_dir), "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        line = proc.stdout.readline()
        assert "http://127.0.0.1:" in line, line + proc.stderr.read() if proc.poll() is not None else line
        url = line.split(" at ")[1].split()[0]
        w = Watched(browser)
        page = w.open(url)
        assert page.title().startswith("The lineage")
        page.locator("header nav a", has_text="Compare").click()
        page.wait_for_load_state("load")
        page.wait_for_selector("#plot-year .scatterlayer")
        w.close()
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_layer_table_rows_sorting_and_folding(browser, site_dir, shots):
    w = Watched(browser)
    page = w.open(_url(site_dir, "models/resnet18.html"))
    rows = page.locator("#layers tbody tr.r")
    assert rows.count() == len(profile("resnet18").rows)
    page.screenshot(path=str(shots / "model_resnet18.png"), full_page=False)

    def params_column() -> list[int]:
        return [int(t.replace(",", "")) for t in page.eval_on_selector_all(
            "#layers tbody tr.r:not([hidden])", "rs => rs.map(r => r.cells[5].textContent)")]  # fmt: skip

    before = params_column()
    page.locator("#layers thead th", has_text="params").locator("button").click()
    asc = params_column()
    assert asc == sorted(before) and asc != before and len(asc) == len(before)
    page.locator("#layers thead th", has_text="params").locator("button").click()
    assert params_column() == sorted(before, reverse=True)
    page.locator("#layers thead th").first.locator("button").click()  # '#' ascending: back to the tree
    assert params_column() == before
    # fold layer1: its rows disappear, the other rows stay
    layer1 = page.locator("#layers tr.g button.tog", has_text="layer1").first
    layer1.click()
    hidden = page.eval_on_selector_all(
        "#layers tbody tr.r[hidden]", "rs => rs.map(r => r.cells[1].textContent)"
    )
    assert hidden and all(h.startswith("layer1.") for h in hidden)
    layer1.press("Enter")  # buttons: the keyboard works too
    assert page.locator("#layers tbody tr.r[hidden]").count() == 0
    page.locator("#layers thead th", has_text="MACs").locator(
        "button"
    ).click()  # flat again; a depth restores the tree
    page.select_option("#depth", "1")
    visible = page.eval_on_selector_all(
        "#layers tbody tr:not([hidden])", "rs => rs.map(r => r.cells[1].textContent)"
    )
    assert visible and all("." not in v for v in visible)  # only top-level modules and rows
    w.close()


def test_search_filters_the_model_list(browser, site_dir, site_models):
    w = Watched(browser)
    page = w.open(_url(site_dir, "search.html"))
    assert page.locator("#model-list li:not([hidden])").count() == len(site_models)

    def expected(query: str) -> list[str]:
        def text(n: str) -> str:
            c = model_info(n)
            return f"{n} {c.family} {c.year} {c.paper} {c.key_idea} {getattr(c, 'first_author', '')}".lower()

        lineage_order = [
            n for n in list_models() if n in site_models
        ]  # the page lists models in lineage order
        return [n for n in lineage_order if all(w in text(n) for w in query.lower().split())]

    def shown() -> list[str]:
        return page.eval_on_selector_all(
            "#model-list li:not([hidden]) strong", "els => els.map(e => e.textContent)"
        )

    page.fill("#q", "residual")
    assert shown() == expected("residual") and 0 < len(shown()) < len(site_models)
    page.fill("#q", "2015 shortcuts")
    assert shown() == expected("2015 shortcuts") and len(shown()) >= 1
    page = w.open(_url(site_dir, "search.html") + "?q=lenet5")  # the header's search box lands here
    assert shown() == expected("lenet5") and "lenet5" in shown()
    w.close()


def test_compare_plots_one_point_per_model_shown(browser, site_dir, site_models, shots):
    w = Watched(browser)
    page = w.open(_url(site_dir, "compare.html"))
    page.wait_for_selector("#plot-year .scatterlayer .point")
    with_top1 = [n for n in site_models if model_info(n).ref_top1 is not None]

    def points(plot: str) -> int:
        return page.locator(f"#{plot} .scatterlayer .point").count()

    assert points("plot-year") == len(site_models) and points("plot-acc") == len(with_top1)
    page.screenshot(path=str(shots / "compare.png"), full_page=True)
    page.select_option("#f-family", "resnet_cifar")
    page.wait_for_timeout(200)
    shown = page.locator("#compare tbody tr:not([hidden])").count()
    assert shown == sum(model_info(n).family == "resnet_cifar" for n in site_models) == points("plot-year")
    page.click("#f-reset")
    page.fill("#f-pmax", "1")  # at most 1M parameters
    page.wait_for_timeout(200)
    small = [n for n in site_models if model_data(n).totals["total_params"] <= 1e6]  # cached by the build
    assert page.locator("#compare tbody tr:not([hidden])").count() == len(small) == points("plot-year")
    w.close()


def test_run_page_shows_the_learning_curve_of_the_run_trained_here(browser, site_dir, run_epochs):
    w = Watched(browser)
    page = w.open(_url(site_dir, "runs/lenet5-seed0.html"))
    page.wait_for_selector("#plot-top1 .scatterlayer .point")
    # two curves (train and held-out top-1), one point per epoch each
    assert page.locator("#plot-top1 .scatterlayer .trace").count() == 2
    assert page.locator("#plot-top1 .scatterlayer .point").count() == 2 * run_epochs
    assert page.eval_on_selector("#img-curves", "img => img.complete && img.naturalWidth > 100")
    page = w.open(_url(site_dir, "runs/index.html"))  # both runs overlaid
    page.wait_for_selector("#plot-runs-top1 .scatterlayer .trace")
    assert page.locator("#plot-runs-top1 .scatterlayer .trace").count() == 2
    w.close()


def test_phone_width_has_no_page_wide_horizontal_scroll(browser, site_dir, shots):
    w = Watched(browser, width=390, height=844)
    for rel in ("index.html", "models/resnet18.html", "compare.html"):
        page = w.open(_url(site_dir, rel))
        time.sleep(0.1)
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1"), rel
    page.screenshot(path=str(shots / "compare_phone.png"))
    w.close()
    assert all((shots / f).stat().st_size > 10_000 for f in ("home.png", "model_resnet18.png", "compare.png"))


def test_the_watcher_flags_a_missing_file_on_disk(browser, tmp_path):
    # the failure filter above only lets navigation-cancelled requests through: a broken link still fails the check
    (tmp_path / "page.html").write_text('<!doctype html><title>t</title><img src="missing.png" alt="x">')
    w = Watched(browser)
    w.open(_url(tmp_path, "page.html"))
    w.page.wait_for_timeout(200)
    with pytest.raises(AssertionError, match="missing.png net::ERR_FILE_NOT_FOUND"):
        w.close()
