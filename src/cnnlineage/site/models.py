"""What a model page shows: the card, the stage structure, the analyzer's layer tree and the cost breakdowns.

The numbers come from the analyzer (:func:`cnnlineage.analysis.profile`), which builds and
runs each registered model on PyTorch's ``meta`` device: no memory, no arithmetic, so the
whole registry profiles in seconds. :func:`model_data` caches its result per process.
Cards are read field by field with fallbacks, so cards with more (or fewer) fields render too.
"""

from __future__ import annotations

import functools
import warnings
from dataclasses import dataclass, field
from typing import Any

__all__ = ["ModelData", "card_dict", "model_data"]

# Card fields the page lays out itself; every other field is listed under "More card fields".
_SHOWN = {
    "name", "family", "year", "paper", "first_author", "authors", "venue", "venue_year", "arxiv", "key_idea",
    "input_size", "ref_params", "ref_params_source", "ref_params_train", "num_classes", "ref_top1",
    "ref_top1_source", "ref_top1_kind", "torchvision", "timm", "notes", "default_kwargs",
}  # fmt: skip


@dataclass
class ModelData:
    """Everything a model page needs, plain data (picklable)."""

    name: str
    card: dict[str, Any]
    extra_card: list[tuple[str, str]]  # card fields beyond the ones the page lays out
    totals: dict[str, Any] | None = None  # the profile's totals; None when profiling failed or was skipped
    tree: list[dict[str, Any]] = field(default_factory=list)  # layer table rows: groups and leaves
    n_rows: int = 0  # the analyzer's row count
    stages: list[dict[str, Any]] = field(default_factory=list)
    by_stage: list[dict[str, Any]] = field(default_factory=list)  # params/MACs per stage, for the charts
    by_type: list[dict[str, Any]] = field(default_factory=list)  # params/MACs per layer type
    error: str | None = None  # why there is no profile
    outside_rows: int = 0  # parameters in no row: held by a composite module and used in functional calls


def card_dict(card: Any) -> dict[str, Any]:
    """Return a card's fields as a dict, whatever fields this version of ModelCard has."""
    if hasattr(card, "to_dict"):
        d = dict(card.to_dict())
    else:
        d = {k: v for k, v in vars(card).items() if not k.startswith("_")}
    authors = getattr(card, "authors", None)
    if authors:
        d["authors"] = list(authors)
    d.setdefault("first_author", authors[0] if authors else getattr(card, "first_author", ""))
    line = getattr(card, "author_line", None)
    if not isinstance(line, str) or not line:
        if authors:
            line = (
                authors[0]
                if len(authors) == 1
                else " & ".join(authors)
                if len(authors) == 2
                else f"{authors[0]} et al."
            )
        else:
            line = f"{d.get('first_author') or '?'} et al."
    d["author_line"] = line
    return d


@functools.cache
def model_data(name: str, profile_model: bool = True) -> ModelData:
    """Return the page data of registered model ``name``; a profile that fails is recorded in ``error``."""
    from ..registry import model_info

    card = model_info(name)
    d = card_dict(card)
    extra = [
        (k, _fmt_value(v))
        for k, v in d.items()
        if k not in _SHOWN and k != "author_line" and v not in (None, "", [], {})
    ]
    data = ModelData(name=name, card=d, extra_card=extra)
    if not profile_model:
        data.error = "not profiled: the site was built with --quick"
        return data
    try:
        model, prof = _profile(name)
    except Exception as e:  # noqa: BLE001 - any failure becomes a note on the page and a warning
        data.error = f"profiling failed: {type(e).__name__}: {e}".strip()
        return data
    data.totals = prof.totals()
    data.n_rows = len(prof.rows)
    data.tree = layer_tree(prof.rows)
    owners = param_owners(model) if model is not None else None
    data.stages = stages(getattr(model, "feature_info", None) or [], prof.rows, owners)
    data.by_stage = [{"name": s["label"], "params": s["params"], "macs": s["macs"]} for s in data.stages]
    data.by_type = by_type(prof.rows, owners=owners)
    data.outside_rows = prof.total_params - sum(r.params for r in prof.rows)
    return data


def param_owners(model: Any) -> list[tuple[str, str, int]]:
    """Return (module path, module type, parameter count) for every module that holds parameters itself.

    Parameters shared between modules count once, for the first holder.
    """
    seen: set[int] = set()
    out = []
    for path, m in model.named_modules():
        n = 0
        for p in m.parameters(recurse=False):
            if id(p) not in seen:
                seen.add(id(p))
                n += p.numel()
        if n:
            out.append((path, type(m).__name__, n))
    return out


def _profile(name: str):  # noqa: ANN202
    """Return (model, profile): built once on the meta device, profiled there; the analyzer's own fallbacks otherwise."""
    import torch

    from ..analysis import profile
    from ..registry import create_model

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            with torch.device("meta"):
                model = create_model(name)
            return model, profile(model, device="meta")
        except Exception:  # noqa: BLE001 - a builder or op that needs real tensors: let profile() choose
            prof = profile(name)
            try:
                with torch.device("meta"):
                    model = create_model(name)
            except Exception:  # noqa: BLE001
                model = None
            return model, prof


def _shape(s: tuple) -> str:
    return "×".join(map(str, s[1:])) if len(s) > 1 else "×".join(map(str, s))


def _pair(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, (tuple, list)):
        return "×".join(_pair(x) for x in v)
    return str(int(v)) if float(v).is_integer() else f"{v:.2f}"


def _cells(r: Any, index: int | str) -> list[str]:
    rf = "global" if r.global_rf else _pair(r.receptive_field)
    return [str(index), r.type, _shape(r.input_shape), _shape(r.output_shape), f"{r.params:,}", f"{r.macs:,}",
            f"{r.flops:,}", f"{r.activation_bytes:,}", rf, _pair(r.jump)]  # fmt: skip


def layer_tree(rows: list) -> list[dict[str, Any]]:
    """Return the layer table in execution order: a group row (sums) before every module with two or more rows.

    Leaves keep the analyzer's rows one for one (``kind == "r"``); ``level`` is the number
    of groups a row sits in, which the page uses to indent and to collapse.
    """
    parts = [(r.name or "(input)").split(".") for r in rows]
    out: list[dict[str, Any]] = []

    def walk(idx: list[int], depth: int, level: int) -> None:
        i = 0
        while i < len(idx):
            p = parts[idx[i]]
            if len(p) <= depth + 1:  # a row of this module itself
                r = rows[idx[i]]
                out.append({"kind": "r", "level": level, "prefix": ".".join(p[:-1]), "leaf": p[-1],
                            "cells": _cells(r, idx[i] + 1)})  # fmt: skip
                i += 1
                continue
            j = i
            while (
                j < len(idx)
                and len(parts[idx[j]]) > depth + 1
                and parts[idx[j]][: depth + 1] == p[: depth + 1]
            ):
                j += 1
            run = idx[i:j]
            if len(run) >= 2:
                rs = [rows[k] for k in run]
                last = rs[-1]
                rf = "global" if last.global_rf else _pair(last.receptive_field)
                out.append({"kind": "g", "level": level, "prefix": ".".join(p[:depth]), "leaf": p[depth],
                            "cells": ["", f"{len(rs)} ops", _shape(rs[0].input_shape), _shape(last.output_shape),
                                      f"{sum(r.params for r in rs):,}", f"{sum(r.macs for r in rs):,}",
                                      f"{sum(r.flops for r in rs):,}", f"{sum(r.activation_bytes for r in rs):,}",
                                      rf, _pair(last.jump)]})  # fmt: skip
                walk(run, depth + 1, level + 1)
            else:
                walk(run, depth + 1, level)
            i = j

    walk(list(range(len(rows))), 0, 0)
    return out


def _under(name: str, module: str) -> bool:
    return name == module or name.startswith(module + ".")


def _first_rows(rows: list) -> dict[str, int]:
    """Return, for every module path that appears in a row's name, the index of its first row."""
    first: dict[str, int] = {}
    for i, r in enumerate(rows):
        parts = r.name.split(".")
        for k in range(1, len(parts) + 1):
            first.setdefault(".".join(parts[:k]), i)
    return first


def stages(
    feature_info: list[dict[str, Any]], rows: list, owners: list[tuple[str, str, int]] | None = None
) -> list[dict[str, Any]]:
    """Return the stages marked by ``feature_info`` with their cost: each covers the rows after the previous stage's last one.

    The rows before the first stage's end form the first stage (the stem with it); rows
    after the last stage form the head. MACs are the rows' sums. Parameters go to the
    stage where the module holding them first runs (``owners``, from :func:`param_owners`),
    so weights a composite module uses in functional calls (ViT's attention projections)
    count too; those of modules that never appear in a row (a class token, position
    embeddings) form a last line of their own. Without ``owners``, the rows' parameters.
    """
    out = []
    start = 0
    for i, fi in enumerate(feature_info):
        module = fi.get("module", "")
        ends = [k for k, r in enumerate(rows) if _under(r.name, module)]
        if not ends or ends[-1] < start:
            out.append({"label": module, "module": module, "channels": fi.get("num_chs"),
                        "reduction": fi.get("reduction"), "output": "", "params": 0, "macs": 0, "rows": 0,
                        "missing": True})  # fmt: skip
            continue
        end = ends[-1] + 1
        span = rows[start:end]
        out.append({"label": f"stage {i}: {module}", "module": module, "channels": fi.get("num_chs"),
                    "reduction": fi.get("reduction"), "output": _shape(rows[end - 1].output_shape),
                    "params": sum(r.params for r in span), "macs": sum(r.macs for r in span), "rows": len(span),
                    "missing": False})  # fmt: skip
        start = end
    if out and start < len(rows):
        span = rows[start:]
        out.append({"label": "head", "module": "(after the last stage)", "channels": None, "reduction": None,
                    "output": _shape(rows[-1].output_shape), "params": sum(r.params for r in span),
                    "macs": sum(r.macs for r in span), "rows": len(span), "missing": False})  # fmt: skip
    if out and owners is not None:
        ends, k = [], 0
        for s in out:
            k += s["rows"]
            ends.append(k)
        first = _first_rows(rows)
        for s in out:
            s["params"] = 0
        outside = 0
        for path, _, n in owners:
            i = first.get(path)
            if i is None:
                outside += n
                continue
            j = next(j for j, e in enumerate(ends) if i < e or j == len(ends) - 1)
            while out[j]["missing"] and j + 1 < len(out):
                j += 1
            out[j]["params"] += n
        if outside:
            out.append({"label": "outside any layer", "module": "(parameters of modules with no row of their own)",
                        "channels": None, "reduction": None, "output": "", "params": outside, "macs": 0, "rows": 0,
                        "missing": False})  # fmt: skip
    return out


def by_type(
    rows: list, top: int = 8, *, owners: list[tuple[str, str, int]] | None = None
) -> list[dict[str, Any]]:
    """Return parameters and MACs summed per layer type, the ``top`` largest by MACs then parameters, the rest as 'other'.

    MACs come from the rows (functional operators by name, e.g. ``addmm``); parameters
    from ``owners`` (the type of the module holding them) when given, else from the rows.
    """
    acc: dict[str, list[int]] = {}
    for r in rows:
        a = acc.setdefault(r.type, [0, 0])
        a[0] += r.params if owners is None else 0
        a[1] += r.macs
    for _, typ, n in owners or ():
        acc.setdefault(typ, [0, 0])[0] += n
    items = sorted(acc.items(), key=lambda kv: (-kv[1][1], -kv[1][0], kv[0]))
    items = [kv for kv in items if kv[1][0] or kv[1][1]]
    out = [{"name": k, "params": v[0], "macs": v[1]} for k, v in items[:top]]
    rest = items[top:]
    if rest:
        out.append({"name": f"other ({len(rest)} types)", "params": sum(v[0] for _, v in rest),
                    "macs": sum(v[1] for _, v in rest)})  # fmt: skip
    return out


def _fmt_value(v: Any) -> str:
    if isinstance(v, (list, tuple)):
        return ", ".join(map(str, v))
    if isinstance(v, dict):
        return ", ".join(f"{k}={x}" for k, x in v.items())
    if isinstance(v, int) and not isinstance(v, bool):
        return f"{v:,}"
    return str(v)
