"""The model cards of the whole registry: authors, the year convention, parameter counts and top-1 kinds."""

from __future__ import annotations

import re

import pytest

import cnnlineage
from cnnlineage.registry import TOP1_KINDS, ModelCard

CARDS = [cnnlineage.model_info(n) for n in cnnlineage.list_models()]


def test_author_line_follows_the_number_of_authors():
    by_name = {c.name: c for c in CARDS}
    assert by_name["xception"].author_line == "Chollet"
    assert by_name["vgg16"].author_line == "Simonyan & Zisserman"
    assert by_name["resnet50"].author_line == "He et al."
    for c in CARDS:
        assert isinstance(c.authors, tuple) and all(a and isinstance(a, str) for a in c.authors), c.name
        expected = {1: c.authors[0], 2: f"{c.authors[0]} & {c.authors[-1]}"}.get(
            len(c.authors), f"{c.authors[0]} et al."
        )
        assert c.author_line == expected, c.name
        assert c.first_author == c.authors[0]


def test_year_is_the_first_public_appearance():
    # an arXiv id encodes its month of submission (YYMM.NNNNN): the year is the earlier of that and the venue's
    for c in CARDS:
        assert c.venue_year >= c.year, c.name
        if c.arxiv:
            assert re.fullmatch(r"\d{4}\.\d{4,5}", c.arxiv), f"{c.name}: arXiv id {c.arxiv!r}"
            assert c.year == min(2000 + int(c.arxiv[:2]), c.venue_year), (
                f"{c.name}: year {c.year}, arXiv {c.arxiv}"
            )
        else:
            assert c.year == c.venue_year, (
                f"{c.name}: no preprint, so the venue's year is the first appearance"
            )
        if c.venue == "arXiv":
            assert c.arxiv, f"{c.name}: a preprint needs its arXiv id"


def test_lineage_order_puts_preprints_first():
    names = cnnlineage.list_models()
    # ZFNet (arXiv Nov 2013) and NiN (Dec 2013) come before GoogLeNet and VGG (Sep 2014), DenseNet (Aug 2016)
    # before ResNeXt (Nov 2016) by year then family; ViT (Oct 2020) before ConvNeXt (2022)
    assert names.index("zfnet") < names.index("googlenet") and names.index("nin") < names.index("vgg16")
    assert cnnlineage.model_info("densenet121").year == cnnlineage.model_info("resnext50_32x4d").year == 2016
    assert names.index("vit_b_16") < names.index("convnext_tiny")


def test_training_counts_are_larger_and_only_where_training_heads_exist():
    for c in CARDS:
        if c.ref_params_train is not None:
            assert c.ref_params_train > c.ref_params, c.name
    with_heads = {c.name for c in CARDS if c.ref_params_train is not None}
    assert {"googlenet", "inception_v3"} <= with_heads


def test_top1_kind_matches_its_source():
    for c in CARDS:
        if c.ref_top1 is None:
            assert c.ref_top1_kind is None and c.ref_top1_source is None, c.name
            continue
        assert c.ref_top1_kind in TOP1_KINDS, c.name
        # a figure read from torchvision's or timm's weights is a recipe's; the rest cite a paper's table
        from_weights = bool(re.search(r"\b(torchvision|timm)\b", c.ref_top1_source))
        assert (c.ref_top1_kind == "recipe") == from_weights, (
            f"{c.name}: {c.ref_top1_kind}, {c.ref_top1_source}"
        )


def test_card_rejects_inconsistent_fields():
    base = dict(name="x", family="x", year=2015, paper="p", authors=("A",), venue="CVPR", venue_year=2016,
                key_idea="", input_size=(3, 8, 8), ref_params=1, ref_params_source="")  # fmt: skip
    with pytest.raises(ValueError, match="authors"):
        ModelCard(**{**base, "authors": "He"})
    with pytest.raises(ValueError, match="venue year"):
        ModelCard(**{**base, "venue_year": 2014})
    with pytest.raises(ValueError, match="ref_top1_kind"):
        ModelCard(**base, ref_top1=70.0)
    with pytest.raises(ValueError, match="ref_top1_kind"):
        ModelCard(**base, ref_top1=70.0, ref_top1_kind="blog")


@pytest.mark.parametrize(
    ("name", "line"),
    [
        ("xception", "(Chollet 2016, CVPR 2017, arXiv:1610.02357)"),
        ("vgg16", "(Simonyan & Zisserman 2014, ICLR 2015, arXiv:1409.1556)"),
        ("resnet50", "(He et al. 2015, CVPR 2016, arXiv:1512.03385)"),
    ],
)
def test_info_prints_the_authors_as_cited(name, line, capsys):
    from cnnlineage.cli import main

    assert main(["info", name]) == 0
    out = capsys.readouterr().out
    paper = next(x for x in out.splitlines() if x.startswith("paper"))
    assert paper.endswith(line), paper


def test_info_and_compare_show_the_inference_count_of_googlenet(capsys):
    from cnnlineage.analysis import profile
    from cnnlineage.cli import main

    assert main(["info", "googlenet"]) == 0
    out = capsys.readouterr().out
    assert "6,624,904" in out and "13,004,888" in out
    assert profile("googlenet").total_params == 6_624_904  # the profiled (inference) network


def test_compare_picks_one_top1_kind_and_marks_attention_global():
    from cnnlineage.analysis.compare import compare, rows_to_table

    rows = {r.name: r for r in compare(["vit_b_16", "mobilenet_v2", "resnet18"], top1_kind="paper")}
    assert rows["mobilenet_v2"].top1 == 72.0 and rows["mobilenet_v2"].top1_kind == "paper"
    assert rows["resnet18"].top1 is None and rows["vit_b_16"].top1 is None  # torchvision recipes left out
    recipe = {r.name: r for r in compare(["resnet18"], top1_kind="recipe")}
    assert recipe["resnet18"].top1 == cnnlineage.model_info("resnet18").ref_top1
    assert (
        rows["vit_b_16"].global_rf and not rows["resnet18"].global_rf and not rows["mobilenet_v2"].global_rf
    )
    table = rows_to_table(list(rows.values()))
    assert "global (local 16)" in table
    with pytest.raises(ValueError, match="top1_kind"):
        compare(["resnet18"], top1_kind="blog")


def test_cli_compare_top1_kind_flag(capsys):
    from cnnlineage.cli import main

    assert main(["compare", "mobilenet_v2", "--quiet", "--top1-kind", "recipe"]) == 0
    row = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("mobilenet_v2"))
    assert "72.00" not in row and row.rstrip().endswith("-")
