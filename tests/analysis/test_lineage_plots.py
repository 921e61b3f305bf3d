"""The lineage plots: labels off markers and off each other, families in the legend, a broken year axis."""

from __future__ import annotations

import math
import os
import stat

import pytest

from cnnlineage.analysis import lineage_plots
from cnnlineage.analysis.compare import LineageRow, plot_lineage


def _row(name, family, year, params, gmacs, top1):
    return LineageRow(name=name, family=family, year=year, params=params, gmacs=gmacs, input_size="3x224x224",
                      peak_activation_mib=1.0, receptive_field=None, top1=top1, top1_source=None)  # fmt: skip


# Parameters, GMACs and top-1 as the lineage table reports them (torchvision's figures).
SMALL = [
    _row("lenet5", "lenet", 1998, 60_850, 0.000_33, None),
    _row("alexnet", "alexnet", 2012, 61_100_840, 0.714, 56.52),
    _row("vgg11", "vgg", 2014, 132_863_336, 7.609, 69.02),
    _row("googlenet", "googlenet", 2014, 6_624_904, 1.498, 69.78),
    _row("resnet18", "resnet", 2015, 11_689_512, 1.814, 69.76),
    _row("resnet50", "resnet", 2015, 25_557_032, 4.089, 76.13),
    _row("mobilenet_v2", "mobilenet", 2018, 3_504_872, 0.301, 71.88),
]


@pytest.fixture
def figures(monkeypatch):
    """Keep the figures plot_lineage makes (instead of closing them) to inspect their layout."""
    import matplotlib.pyplot as plt

    kept = {}
    real = lineage_plots.atomic_savefig

    def save(fig, path, **kw):
        kept[os.path.basename(path)] = fig
        fig.canvas.draw()
        return real(fig, path, **kw)

    monkeypatch.setattr(lineage_plots, "atomic_savefig", save)
    monkeypatch.setattr(plt, "close", lambda fig=None: None)
    yield kept
    for fig in kept.values():
        fig.clf()


def _texts(ax, names):
    return [t for t in ax.texts if t.get_text() in names]


def test_small_plots_label_every_model_off_the_markers(tmp_path, figures):
    paths = plot_lineage(SMALL, tmp_path)
    assert [p.name for p in paths] == ["top1_vs_gmacs.png", "params_by_year.png", "gmacs_by_year.png"]
    for p in paths:  # the ordinary file mode, not mkstemp's 0600
        assert stat.S_IMODE(p.stat().st_mode) == 0o644 & ~_umask()
    fig = figures["top1_vs_gmacs.png"]
    ax = fig.axes[0]
    ranked = [r for r in SMALL if r.top1 is not None]
    texts = _texts(ax, {r.name for r in ranked})
    assert sorted(t.get_text() for t in texts) == sorted(r.name for r in ranked)
    renderer = fig.canvas.get_renderer()
    boxes = [t.get_window_extent(renderer) for t in texts]
    for i, a in enumerate(boxes):  # no two labels overlap
        assert not any(a.overlaps(b) for b in boxes[i + 1 :]), texts[i].get_text()
    for t, box in zip(texts, boxes):  # and no label lies on any marker (the whole disc, area ∝ parameters)
        for r in ranked:
            x, y = ax.transData.transform((r.gmacs, r.top1))
            radius = math.sqrt(max(r.params / 1e6 * 3, 12)) / 2 * fig.dpi / 72  # scatter s is in points²
            gap = math.hypot(max(box.x0 - x, 0, x - box.x1), max(box.y0 - y, 0, y - box.y1))
            assert gap >= radius * 0.9, f"label {t.get_text()} lies on the marker of {r.name}"
    notes = " ".join(t.get_text() for t in fig.texts)
    assert "Not shown: 1 model(s) without a published ImageNet top-1 (lenet5)" in notes
    assert ax.get_xlabel() == "GMACs at the default input (log scale)"
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == ["alexnet", "vgg", "googlenet", "resnet", "mobilenet"]  # by year, each family once
    assert "GMACs by year" in figures["gmacs_by_year.png"]._suptitle.get_text()


def test_year_axis_breaks_before_the_dense_modern_era():
    years = [1958, 1986, 1998, 1998, 2012, 2014, 2015, 2017, 2022]
    (lo1, hi1), (lo2, hi2) = lineage_plots._year_panels(years)
    assert lo1 < 1958 and 1998 < hi1 < 2012 and 1998 < lo2 < 2012 and hi2 > 2022
    assert lineage_plots._year_panels([2012, 2014, 2015]) == [(2011, 2016)]  # no wide gap: one panel


def test_whole_registry_labels_a_chosen_subset(tmp_path, figures):
    rows = list(SMALL)
    for i in range(60):  # a crowded modern era, as with --all
        rows.append(
            _row(f"net{i}", f"fam{i % 20}", 2012 + i % 11, 10**6 * (1 + i), 0.1 * (1 + i), 60 + i * 0.4)
        )
    plot_lineage(rows, tmp_path)
    fig = figures["params_by_year.png"]
    left, right = fig.axes[0], fig.axes[1]
    assert left.get_xlim()[1] < 2012 and right.get_xlim()[0] > 1998  # broken axis: two panels
    assert right.get_xlim()[1] - right.get_xlim()[0] < 13  # 2012-2022 gets the wide panel to itself
    labelled = [t.get_text() for ax in fig.axes for t in ax.texts]
    assert 15 <= len(labelled) < len(rows) // 2
    assert "Labelled:" in " ".join(t.get_text() for t in fig.texts)
    assert (
        len(figures["top1_vs_gmacs.png"].axes[0].get_legend().get_texts()) == 25
    )  # every family in the legend


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask
