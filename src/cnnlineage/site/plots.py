"""The site's interactive plots, as Plotly figure JSON (plotly's Python package builds and validates them).

The browser draws them with the one shared copy of ``plotly.min.js`` that plotly's Python
package ships, copied into the site's assets: no CDN, and no page carries the library itself.
Each point carries its model or run name in ``customdata``, which is what the compare page's
filters match to hide points.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

__all__ = ["family_colors", "fig_json", "lineage_figures", "run_figures", "runs_overlay"]

_LAYOUT = dict(
    template="plotly_white", margin=dict(l=64, r=16, t=48, b=40), height=520,
    font=dict(family="system-ui, -apple-system, Segoe UI, Roboto, sans-serif", size=13, color="#1f2328"),
    legend=dict(font=dict(size=11), orientation="h", yanchor="top", y=-0.2, x=0), hovermode="closest",
)  # fmt: skip


# Twenty distinguishable marker colours (matplotlib's tab10 and a darker ten), in family order.
_PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
            "#17becf", "#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173", "#3182bd", "#e6550d", "#31a354",
            "#756bb1", "#636363")  # fmt: skip


def _mix(hex_color: str, toward: float, target: int) -> str:
    rgb = [int(hex_color[i : i + 2], 16) for i in (1, 3, 5)]
    return "#" + "".join(f"{round(c + (target - c) * toward):02x}" for c in rgb)


def family_colors(families: Sequence[str]) -> dict[str, tuple[str, str, str]]:
    """Return, per family, (light fill, dark border, marker) colours; families beyond twenty reuse the palette."""
    out = {}
    for i, f in enumerate(families):
        base = _PALETTE[i % len(_PALETTE)]
        out[f] = (_mix(base, 0.85, 255), _mix(base, 0.35, 0), base)
    return out


def fig_json(fig: Any) -> str:
    """Return a figure as JSON text safe to embed in a ``<script type="application/json">`` element."""
    return fig.to_json().replace("</", "<\\/")


def lineage_figures(
    rows: Sequence[dict[str, Any]], colors: dict[str, tuple[str, str, str]]
) -> dict[str, str]:
    """Return the compare page's figures as JSON: 'acc' (published top-1 against GMACs) and 'year' (parameters by year)."""
    import plotly.graph_objects as go

    fams = list(dict.fromkeys(r["family"] for r in rows))
    acc, year = go.Figure(), go.Figure()
    for f in fams:
        fr = [r for r in rows if r["family"] == f and r["params"] is not None]
        ranked = [r for r in fr if r["top1"] is not None and r["gmacs"]]
        color = colors.get(f, ("", "", "#555"))[2]
        marker = dict(color=color, line=dict(color="#1f2328", width=0.6), opacity=0.85)
        if ranked:
            acc.add_trace(go.Scatter(
                x=[r["gmacs"] for r in ranked], y=[r["top1"] for r in ranked], mode="markers", name=f,
                customdata=[r["name"] for r in ranked], text=[r["name"] for r in ranked],
                marker=dict(marker, size=[max(7.0, 4 * math.sqrt(r["params"] / 1e6)) for r in ranked], sizemode="diameter"),
                hovertemplate="<b>%{text}</b><br>%{x:.3f} GMACs<br>top-1 %{y:.2f}%<extra>" + f + "</extra>",
            ))  # fmt: skip
        if fr:
            year.add_trace(go.Scatter(
                x=[r["year"] for r in fr], y=[r["params"] for r in fr], mode="markers", name=f,
                customdata=[r["name"] for r in fr], text=[r["name"] for r in fr], marker=dict(marker, size=10),
                hovertemplate="<b>%{text}</b><br>%{x}<br>%{y:,} parameters<extra>" + f + "</extra>",
            ))  # fmt: skip
    acc.update_layout(**_LAYOUT, title="Published top-1 against compute")
    acc.update_xaxes(type="log", title="GMACs at the default input (log scale)")
    acc.update_yaxes(title="published top-1 (%)")
    year.update_layout(**_LAYOUT, title="Parameters by year")
    year.update_xaxes(title="year of the paper")
    year.update_yaxes(type="log", title="parameters (log scale)")
    return {"acc": fig_json(acc), "year": fig_json(year)}


def _curve(fig: Any, history: list[dict[str, Any]], key: str, name: str, **kw: Any) -> None:
    import plotly.graph_objects as go

    pts = [(h.get("epoch"), h.get(key)) for h in history if isinstance(h.get(key), (int, float))]
    if pts:
        fig.add_trace(go.Scatter(x=[p[0] for p in pts], y=[p[1] for p in pts], mode="lines+markers", name=name,
                                 customdata=[name] * len(pts), **kw))  # fmt: skip


def run_figures(history: list[dict[str, Any]]) -> dict[str, str]:
    """Return a run's learning curves as JSON: 'loss' (train and held-out loss) and 'top1' (train and held-out top-1)."""
    import plotly.graph_objects as go

    loss, top1 = go.Figure(), go.Figure()
    _curve(loss, history, "train_loss", "train loss")
    _curve(loss, history, "test_loss", "held-out loss")
    _curve(top1, history, "train_top1", "train top-1")
    _curve(top1, history, "test_top1", "held-out top-1")
    for fig, title, y in (
        (loss, "Loss per epoch", "cross-entropy loss"),
        (top1, "Top-1 accuracy per epoch", "top-1 (%)"),
    ):
        fig.update_layout(**dict(_LAYOUT, height=360), title=title)
        fig.update_xaxes(title="epoch", tickformat="d", dtick=1 if len(history) <= 20 else None)
        fig.update_yaxes(title=y)
    return {"loss": fig_json(loss), "top1": fig_json(top1)}


def runs_overlay(runs: Sequence[Any]) -> dict[str, str]:
    """Return several runs overlaid as JSON: 'top1' (held-out top-1 per epoch) and 'loss' (training loss per epoch)."""
    import plotly.graph_objects as go

    top1, loss = go.Figure(), go.Figure()
    longest = max((len(r.history) for r in runs), default=0)
    for r in runs:
        _curve(top1, r.history, "test_top1", r.slug)
        _curve(loss, r.history, "train_loss", r.slug)
    for fig, title, y in ((top1, "Held-out top-1 per epoch, all runs", "top-1 (%)"),
                          (loss, "Training loss per epoch, all runs", "cross-entropy loss")):  # fmt: skip
        fig.update_layout(**dict(_LAYOUT, height=400), title=title)
        fig.update_xaxes(title="epoch", tickformat="d", dtick=1 if longest <= 20 else None)
        fig.update_yaxes(title=y)
    return {"top1": fig_json(top1), "loss": fig_json(loss)}


def to_json_text(obj: Any) -> str:
    """Return ``obj`` as JSON safe to embed in a script element."""
    return json.dumps(obj).replace("</", "<\\/")
