"""Build the static lineage explorer: Jinja2 templates filled from the registry, the analyzer, runs and experiments.

Pages: ``index.html`` (the lineage graph and timeline), ``models/<name>.html`` (card, stages,
layer table, breakdowns, commands), ``compare.html`` (the registry's table and interactive
plots), ``runs/`` (each run and all runs overlaid), ``experiments/`` and ``search.html``.
Styles, scripts and ``plotly.min.js`` (from plotly's Python package) are copied into
``assets/``: the site works from disk with no network. Every file is written atomically.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..common import atomic_write_bytes, atomic_write_text, human_count
from . import plots
from .inputs import ExperimentDir, Run, find_experiments, find_runs
from .lineage import EDGES, Edge, layout, resolve_edges
from .models import ModelData, model_data

__all__ = ["MARKER", "SiteReport", "build_site"]

MARKER = "site.json"  # names a directory as a cnnlineage site, so a rebuild may overwrite it
_ASSETS = ("style.css", "site.js", "favicon.svg")
_PAGE_LIMIT = (
    2 * 2**20
)  # bytes; the largest page of the registry (preact_resnet1001, 3,671 layer rows) is 1.2 MB


@dataclass
class SiteReport:
    """What :func:`build_site` did: the pages it wrote, the warnings to show, and how long it took."""

    out: Path
    pages: list[Path] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)  # every file written: pages, copied figures, assets
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0
    models: int = 0
    runs: int = 0
    experiments: int = 0
    skipped_edges: list[Edge] = field(default_factory=list)  # edges naming models this registry lacks


def _check_out(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise ValueError(
            f"--out {out} is a file; give a directory for the site (a new one, or an earlier site to rebuild)"
        )
    if out.is_dir() and any(out.iterdir()) and not (out / MARKER).is_file():
        raise ValueError(
            f"--out {out} is a non-empty directory that holds no cnnlineage site (no {MARKER}); "
            "give a new or empty directory so none of your files is overwritten"
        )


def _check_extra() -> None:
    from importlib.util import find_spec

    missing = [m for m in ("jinja2", "plotly", "markdown") if find_spec(m) is None]
    if missing:
        raise ValueError(
            f"the site needs {', '.join(missing)}, which is not installed: pip install 'cnnlineage[site]'"
        )


def _env():  # noqa: ANN202
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("cnnlineage.site", "templates"),
        autoescape=jinja2.select_autoescape(["html"]),
        trim_blocks=True, lstrip_blocks=True, undefined=jinja2.StrictUndefined,
    )  # fmt: skip
    env.filters["num"] = lambda v: "" if v is None else f"{v:,}"
    env.filters["human"] = lambda v: "" if v is None else human_count(v)
    env.filters["pct"] = lambda v, total: f"{100 * v / total:.1f}" if total else "0"
    env.filters["mib"] = lambda v: "" if v is None else f"{v / 2**20:,.2f} MiB"
    env.filters["sig"] = _sig
    return env


def _sig(v: float | None) -> str:
    """Return a figure with three significant digits below 10 (0.000416, 0.714, 4.09), else one decimal."""
    if v is None:
        return ""
    return f"{v:,.1f}" if abs(v) >= 10 else f"{v:.3g}"


def build_site(
    *,
    out: str | Path,
    models: Sequence[str] | None = None,
    runs: Sequence[str | Path] = (),
    experiments: Sequence[str | Path] = (),
    quick: bool = False,
    commands: set[str] | None = None,
    progress: Callable[[str], None] | None = None,
) -> SiteReport:
    """Return the report of building the site into ``out`` for ``models`` (default: the whole registry).

    ``quick`` skips the analyzer (cards and lineage only; the pages say so). ``commands``
    names the ``cnnlineage`` subcommands this installation has, so a model page lists
    ``export`` only where it exists. A model whose profiling fails, a missing or empty runs
    or experiments directory: the site still builds, the page says what is missing and the
    report carries a warning naming it. An ``out`` that is a file is a ValueError.
    """
    from ..registry import list_models, model_info

    t0 = time.perf_counter()
    _check_extra()
    out = Path(out)
    _check_out(out)
    cards = {
        n: model_info(n) for n in (models if models is not None else list_models())
    }  # unknown: ValueError
    names = [n for n in list_models() if n in cards]  # lineage order (year, family, name)
    report = SiteReport(out=out, models=len(names))
    for sub in ("", "assets", "models", "runs", "experiments"):
        (out / sub).mkdir(parents=True, exist_ok=True)

    data: dict[str, ModelData] = {}
    for n in names:
        if progress:
            progress(n)
        data[n] = model_data(n, not quick)
        if data[n].error and not quick:
            report.warnings.append(f"model {n}: {data[n].error}; its page says so and shows the card only")
    edges, report.skipped_edges = resolve_edges(names, cards, EDGES, registered=list_models())
    families = list(dict.fromkeys(getattr(cards[n], "family", "?") for n in names))
    colors = plots.family_colors(families)
    run_list, w = find_runs(list(runs))
    report.warnings += w
    exp_list, w = find_experiments(list(experiments))
    report.warnings += w
    report.runs, report.experiments = len(run_list), len(exp_list)

    from .. import __version__

    env = _env()
    common = dict(version=__version__, n_models=len(names), quick=quick, colors=colors)

    def page(rel: str, template: str, **ctx: Any) -> None:
        depth = rel.count("/")
        html = env.get_template(template).render(root="../" * depth, **common, **ctx)
        if len(html) > _PAGE_LIMIT:
            report.warnings.append(
                f"page {rel} is {len(html) / 2**20:.1f} MiB, over the {_PAGE_LIMIT // 2**20} MiB aim"
            )
        report.pages.append(atomic_write_text(out / rel, html))
        report.files.append(report.pages[-1])

    rows = [_compare_row(data[n]) for n in names]
    page("index.html", "index.html", nav="lineage", title="The lineage", graph=layout(names, cards, edges),
         edges=edges, timeline=_timeline(names, data), data=data, families=families)  # fmt: skip
    cmds = commands if commands is not None else {"train", "summary", "info"}
    for n in names:
        parents = [e for e in edges if e.child == n]
        children = [e for e in edges if e.parent == n]
        fam = data[n].card.get("family")
        variants = [m for m in names if m != n and data[m].card.get("family") == fam]
        via = [
            e for e in edges if not parents and not children and (e.parent in variants or e.child in variants)
        ]
        page(f"models/{n}.html", "model.html", nav="models", title=n, d=data[n], parents=parents, children=children,
             variants=variants, family_edges=via, commands=_commands(data[n], cmds), data=data)  # fmt: skip
    page("compare.html", "compare.html", nav="compare", title="Compare", rows=rows, families=families,
         figs=plots.lineage_figures(rows, colors), plots=True)  # fmt: skip
    page("search.html", "search.html", nav="search", title="Search models", names=names, data=data)
    _write_runs(page, out, run_list, list(runs), set(names), report.files)
    _write_experiments(page, out, exp_list, list(experiments), report.files)
    _write_assets(out, report.files)
    report.seconds = time.perf_counter() - t0
    files = sorted({p.relative_to(out).as_posix() for p in report.files})
    _remove_stale(out, files)
    marker = {"generator": "cnnlineage site", "version": __version__, "models": len(names),
              "runs": len(run_list), "experiments": len(exp_list), "quick": quick, "files": files}  # fmt: skip
    atomic_write_text(out / MARKER, json.dumps(marker, indent=1) + "\n")
    return report


def _remove_stale(out: Path, files: list[str]) -> None:
    """Remove the files an earlier build of this site wrote (listed in its marker) that this build did not."""
    try:
        old = json.loads((out / MARKER).read_text()).get("files", [])
    except (OSError, ValueError, AttributeError):
        return
    keep = set(files)
    for rel in old:
        p = out / rel
        if rel not in keep and isinstance(rel, str) and ".." not in Path(rel).parts and p.is_file():
            p.unlink()
            if p.parent != out and not any(p.parent.iterdir()):
                p.parent.rmdir()


def _compare_row(d: ModelData) -> dict[str, Any]:
    c, t = d.card, d.totals or {}
    rf = t.get("receptive_field")
    return {
        "name": d.name, "family": c.get("family", "?"), "year": c.get("year"), "params": t.get("total_params"),
        "gmacs": None if t.get("total_macs") is None else t["total_macs"] / 1e9,
        "input": "×".join(map(str, c.get("input_size") or ())),
        "peak_mib": None if t.get("peak_activation_bytes") is None else t["peak_activation_bytes"] / 2**20,
        "rf": "×".join(map(str, rf)) if isinstance(rf, (list, tuple)) else ("" if rf is None else str(rf)),
        "top1": c.get("ref_top1"), "top1_source": c.get("ref_top1_source") or "", "top1_kind": c.get("ref_top1_kind") or "",
        "error": d.error, "idea": c.get("key_idea", ""),
    }  # fmt: skip


def _timeline(
    names: Sequence[str], data: dict[str, ModelData]
) -> list[tuple[int, list[tuple[str, list[str]]]]]:
    """Return [(year, [(family, [models])])] in lineage order."""
    years: dict[int, dict[str, list[str]]] = {}
    for n in names:
        c = data[n].card
        years.setdefault(int(c.get("year") or 0), {}).setdefault(c.get("family", "?"), []).append(n)
    return [(y, list(f.items())) for y, f in sorted(years.items())]


def _commands(d: ModelData, available: set[str]) -> list[tuple[str, str]]:
    """Return (what it does, command line) pairs for a model page, for the subcommands this installation has."""
    n = d.name
    size = list(d.card.get("input_size") or (3, 224, 224)) + [224, 224]
    c, h = size[0], size[1]
    if c == 1:
        train = f"cnnlineage train {n} --epochs 5   # mnist5k: 5,000 real MNIST digits, bundled"
    elif h <= 64:
        train = f"cnnlineage train {n} --data shapes10 --epochs 5   # procedural 32x32 colour shapes, bundled"
    else:
        train = (
            f"cnnlineage train {n} --data imagefolder --data-dir PATH/TO/IMAGES   # class-per-folder images"
        )
    out = []
    if "info" in available:
        out.append(("Print the card", f"cnnlineage info {n}"))
    if "summary" in available:
        out.append(("Per-layer table (what this page shows)", f"cnnlineage summary {n}"))
        out.append(("Grouped to depth 2, as Markdown", f"cnnlineage summary {n} --depth 2 --format md"))
    if "train" in available:
        out.append(("Train it", train))
    if "export" in available:
        out.append(
            (
                "Export to ONNX (verified with ONNX Runtime)",
                f"cnnlineage export {n} --format onnx --out {n}.onnx",
            )
        )
    if "bench" in available:
        out.append(("Time it on this machine", f"cnnlineage bench {n}"))
    return out


def _copy(src: Path, dest: Path, written: list[Path]) -> str | None:
    """Copy ``src`` to ``dest`` atomically; return None, or why it could not be copied."""
    try:
        atomic_write_bytes(dest, src.read_bytes())
        written.append(dest)
    except OSError as e:
        return f"{src} could not be copied ({e.strerror})"
    return None


def _write_runs(
    page: Callable[..., None],
    out: Path,
    runs: list[Run],
    given: list[Any],
    known: set[str],
    written: list[Path],
) -> None:
    missing = [str(p) for p in given if not Path(p).is_dir()]
    for r in runs:
        (out / "runs" / r.slug).mkdir(parents=True, exist_ok=True)
        shown = {}
        for key, src in r.images.items():
            err = _copy(src, out / "runs" / r.slug / src.name, written)
            if err:
                r.notes.append(err)
            else:
                shown[key] = f"{r.slug}/{src.name}"
        last = r.history[-1] if r.history else {}
        page(f"runs/{r.slug}.html", "run.html", nav="runs", title=f"Run {r.slug}", run=r, images=shown,
             figs=plots.run_figures(r.history), per_class=last.get("test_per_class") or [], plots=True,
             known_model=r.model in known,
             summary_items=[(k, _fmt(v)) for k, v in r.summary.items()])  # fmt: skip
    page("runs/index.html", "runs.html", nav="runs", title="Runs", runs=runs, given=[str(p) for p in given],
         missing=missing, figs=plots.runs_overlay(runs) if runs else None, plots=bool(runs))  # fmt: skip


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:,.4g}" if abs(v) < 1e5 else f"{v:,.0f}"
    if isinstance(v, (list, tuple)):
        return "×".join(map(str, v)) if all(isinstance(x, int) for x in v) else ", ".join(map(str, v))
    return str(v)


_IMG = re.compile(r'<img([^>]*?)src="([^"]*)"([^>]*)>')


def markdown_html(
    text: str, base: Path, dest: Path, prefix: str, notes: list[str], written: list[Path]
) -> tuple[str, set[str]]:
    """Return (Markdown rendered as HTML, names of the figures it shows); raw HTML is escaped, images are copied.

    Relative images are copied from ``base`` into ``dest`` and linked as ``prefix/name``;
    remote images are not fetched (the site is offline) and become a note.
    """
    import html

    import markdown

    md = markdown.Markdown(extensions=["tables", "fenced_code", "sane_lists"])
    md.preprocessors.deregister(
        "html_block"
    )  # the user's Markdown may not inject scripts or remote resources
    md.inlinePatterns.deregister("html")
    body = md.convert(text)
    used: set[str] = set()

    def repl(m: re.Match) -> str:
        src = html.unescape(m.group(2))
        if re.match(r"^[a-z]+:", src, re.I) or src.startswith("//"):
            notes.append(f"remote image {src} is not bundled (the site works offline)")
            return f'<span class="note">[remote image not bundled: {html.escape(src)}]</span>'
        path = (base / src).resolve()
        if not path.is_file():
            notes.append(f"figure {src} is missing")
            return f'<span class="note">[missing figure: {html.escape(src)}]</span>'
        err = _copy(path, dest / path.name, written)
        if err:
            notes.append(err)
        used.add(path.name)
        return f'<img{m.group(1)}src="{html.escape(prefix + "/" + path.name)}" loading="lazy"{m.group(3)}>'

    body = re.sub(
        r'href="\s*(javascript|vbscript|data):[^"]*"', 'href="#"', body, flags=re.I
    )  # links never run code
    return _IMG.sub(repl, body), used


def _write_experiments(
    page: Callable[..., None], out: Path, exps: list[ExperimentDir], given: list[Any], written: list[Path]
) -> None:
    missing = [str(p) for p in given if not Path(p).is_dir()]
    for e in exps:
        dest = out / "experiments" / e.slug
        dest.mkdir(parents=True, exist_ok=True)
        sections, used = [], set()
        for fname, text in e.markdown:
            body, u = markdown_html(text, e.path, dest, e.slug, e.notes, written)
            sections.append((fname, body))
            used |= u
        extra = []
        for img in e.images:
            if img.name not in used and not _copy(img, dest / img.name, written):
                extra.append(f"{e.slug}/{img.name}")
        results_link = None
        if e.results_file is not None and e.results_file.stat().st_size < 20 * 2**20:
            if not _copy(e.results_file, dest / "results.json", written):
                results_link = f"{e.slug}/results.json"
        page(f"experiments/{e.slug}.html", "experiment.html", nav="experiments", title=e.title, e=e,
             sections=sections, extra_images=extra, results_link=results_link)  # fmt: skip
    page("experiments/index.html", "experiments.html", nav="experiments", title="Experiments", exps=exps,
         given=[str(p) for p in given], missing=missing)  # fmt: skip


def _write_assets(out: Path, written: list[Path]) -> None:
    from importlib import resources

    pkg = resources.files("cnnlineage.site") / "assets"
    for name in _ASSETS:
        data = (pkg / name).read_bytes()
        dest = out / "assets" / name
        if not dest.is_file() or dest.read_bytes() != data:
            atomic_write_bytes(dest, data)
        written.append(dest)
    dest = out / "assets" / "plotly.min.js"
    from plotly.offline import get_plotlyjs

    js = get_plotlyjs().encode("utf-8")
    if not dest.is_file() or dest.stat().st_size != len(js):
        atomic_write_bytes(dest, js)
    written.append(dest)
