"""What the user hands the site: training run directories and experiment directories, read defensively.

A run directory is what ``cnnlineage train`` writes (``config.yaml``, ``metrics.jsonl``,
``summary.json``, ``learning_curves.png``, ``confusion_matrix.png``); an unfinished run
lacks ``summary.json`` and is shown as far as it got. An experiment directory is anything
holding ``results.json`` or Markdown (``cnnlineage experiment run --out DIR`` writes
``results.json``, ``report.md`` and PNG figures): it is rendered generically — its Markdown
(Python-Markdown does the parsing), its figures and the top-level facts of its results — so
the page keeps working as experiments gain fields. Every problem becomes a note, never an
exception.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["ExperimentDir", "Run", "find_experiments", "find_runs", "slugify"]

_RUN_FILES = ("metrics.jsonl", "summary.json")
_MAX_JSON_SHOWN = 200_000  # bytes of results.json shown inline; larger files are linked only


@dataclass
class Run:
    """One training run: its files, parsed, and what is missing."""

    path: Path
    slug: str = ""
    config: dict[str, Any] = field(default_factory=dict)
    config_text: str = ""
    history: list[dict[str, Any]] = field(default_factory=list)  # metrics.jsonl, one dict per epoch
    summary: dict[str, Any] = field(default_factory=dict)
    images: dict[str, Path] = field(default_factory=dict)  # "learning_curves" / "confusion_matrix" -> file
    notes: list[str] = field(default_factory=list)  # what is missing or unreadable

    @property
    def model(self) -> str:
        """Return the run's model name (from the summary, else the config, else '?')."""
        return str(self.summary.get("model") or (self.config.get("model") or {}).get("name") or "?")

    @property
    def dataset(self) -> str:
        """Return the run's data set name."""
        return str(self.summary.get("dataset") or (self.config.get("data") or {}).get("name") or "?")


def slugify(text: str, taken: set[str]) -> str:
    """Return a file-name-safe, unique (within ``taken``) slug of ``text``, and add it to ``taken``."""
    base = re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-.") or "item"
    slug, k = base, 2
    while slug in taken:
        slug, k = f"{base}-{k}", k + 1
    taken.add(slug)
    return slug


def _is_run(p: Path) -> bool:
    return p.is_dir() and any((p / f).is_file() for f in _RUN_FILES)


def find_runs(paths: list[str | Path]) -> tuple[list[Run], list[str]]:
    """Return (the runs found under ``paths``, warnings): each path is a run directory or a folder of them (two levels)."""
    runs: list[Run] = []
    warnings: list[str] = []
    taken: set[str] = set()
    for raw in paths:
        p = Path(raw)
        if not p.exists():
            warnings.append(f"runs directory {p} does not exist; the Runs page lists it as missing")
            continue
        if not p.is_dir():
            warnings.append(f"runs directory {p} is a file, not a directory; skipped")
            continue
        found = [p] if _is_run(p) else sorted(c for c in p.iterdir() if _is_run(c))
        if not found and not _is_run(p):
            found = sorted(g for c in p.iterdir() if c.is_dir() for g in c.iterdir() if _is_run(g))
        if not found:
            warnings.append(
                f"no runs in {p}: a run directory holds metrics.jsonl or summary.json (written by `cnnlineage train`)"
            )
        for d in found:
            run = read_run(d)
            run.slug = slugify(d.name, taken)
            runs.append(run)
            warnings += [f"run {d}: {n}" for n in run.notes if not n.startswith("unfinished")]
    return runs, warnings


def read_run(d: Path) -> Run:
    """Return the run in directory ``d``, noting each file that is missing or unreadable."""
    import yaml

    run = Run(path=d)
    cfg = d / "config.yaml"
    if cfg.is_file():
        try:
            run.config_text = cfg.read_text()
            loaded = yaml.safe_load(run.config_text)
            run.config = loaded if isinstance(loaded, dict) else {}
        except (OSError, yaml.YAMLError, UnicodeDecodeError) as e:
            run.notes.append(f"config.yaml is unreadable ({type(e).__name__})")
    else:
        run.notes.append("no config.yaml")
    metrics = d / "metrics.jsonl"
    if metrics.is_file():
        bad = 0
        for line in metrics.read_text(errors="replace").splitlines():
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                bad += 1
                continue
            if isinstance(rec, dict):
                run.history.append(rec)
        if bad:
            run.notes.append(f"{bad} unreadable line(s) in metrics.jsonl skipped")
    else:
        run.notes.append("no metrics.jsonl")
    summary = d / "summary.json"
    if summary.is_file():
        try:
            s = json.loads(summary.read_text())
            run.summary = s if isinstance(s, dict) else {}
        except (OSError, json.JSONDecodeError) as e:
            run.notes.append(f"summary.json is unreadable ({type(e).__name__})")
    else:
        run.notes.append("unfinished: no summary.json yet (training stopped or still running)")
    for key in ("learning_curves", "confusion_matrix"):
        f = d / f"{key}.png"
        if f.is_file():
            run.images[key] = f
    return run


@dataclass
class ExperimentDir:
    """One experiment's output directory, rendered generically."""

    path: Path
    slug: str = ""
    title: str = ""
    markdown: list[tuple[str, str]] = field(default_factory=list)  # (file name, Markdown text)
    images: list[Path] = field(default_factory=list)  # top-level PNG/JPEG/SVG figures
    facts: list[tuple[str, str]] = field(default_factory=list)  # top-level scalar fields of results.json
    results_text: str = ""  # results.json, pretty-printed, when small enough to show
    results_file: Path | None = None
    notes: list[str] = field(default_factory=list)


def _is_experiment(p: Path) -> bool:
    return p.is_dir() and ((p / "results.json").is_file() or any(p.glob("*.md")))


def find_experiments(paths: list[str | Path]) -> tuple[list[ExperimentDir], list[str]]:
    """Return (the experiment directories under ``paths``, warnings): each path is one or a folder of them (two levels)."""
    out: list[ExperimentDir] = []
    warnings: list[str] = []
    taken: set[str] = set()
    for raw in paths:
        p = Path(raw)
        if not p.exists():
            warnings.append(
                f"experiments directory {p} does not exist; the Experiments page lists it as missing"
            )
            continue
        if not p.is_dir():
            warnings.append(f"experiments directory {p} is a file, not a directory; skipped")
            continue
        found = [p] if _is_experiment(p) else sorted(c for c in p.iterdir() if _is_experiment(c))
        if not found:
            found = sorted(g for c in p.iterdir() if c.is_dir() for g in c.iterdir() if _is_experiment(g))
        if not found:
            warnings.append(
                f"no experiment results in {p}: expected results.json or a Markdown report "
                "(written by `cnnlineage experiment run --out DIR`)"
            )
        for d in found:
            e = read_experiment(d)
            e.slug = slugify(d.name, taken)
            out.append(e)
    return out, warnings


def read_experiment(d: Path) -> ExperimentDir:
    """Return the experiment directory ``d``: its Markdown, figures and results facts."""
    e = ExperimentDir(path=d, title=d.name)
    for md in sorted(d.glob("*.md")):
        try:
            e.markdown.append((md.name, md.read_text(errors="replace")))
        except OSError as err:
            e.notes.append(f"{md.name} is unreadable ({err.strerror})")
    e.images = sorted(
        f for f in d.iterdir() if f.suffix.lower() in (".png", ".jpg", ".jpeg", ".svg") and f.is_file()
    )
    res = d / "results.json"
    if res.is_file():
        e.results_file = res
        try:
            data = json.loads(res.read_text())
        except (OSError, json.JSONDecodeError) as err:
            e.notes.append(f"results.json is unreadable ({type(err).__name__})")
            data = None
        if isinstance(data, dict):
            for k, v in data.items():
                if isinstance(v, (str, int, float, bool)) or v is None:
                    e.facts.append((k, "" if v is None else str(v)))
                elif isinstance(v, dict):  # one level down: e.g. verdict.outcome, verdict.reason
                    e.facts += [
                        (f"{k}.{k2}", str(v2))
                        for k2, v2 in v.items()
                        if isinstance(v2, (str, int, float, bool))
                    ]
            e.title = str(data.get("title") or data.get("experiment") or d.name)
            if data.get("experiment") and data.get("title"):
                e.title = f"{data['experiment']}: {data['title']}"
        if res.stat().st_size <= _MAX_JSON_SHOWN and data is not None:
            e.results_text = json.dumps(data, indent=1)
    else:
        e.notes.append("no results.json")
    if not e.markdown and e.title == d.name:
        e.notes.append("no Markdown report")
    for _, text in e.markdown[:1]:
        m = re.search(r"^#{1,2}\s+(.+)$", text, re.M)
        if m and e.title == d.name:
            e.title = m.group(1).strip()
    return e
