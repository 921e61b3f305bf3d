"""The lineage edges as data: they name registered models, carry reasons, and lay out without overlaps."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from cnnlineage.registry import list_models, model_info
from cnnlineage.site.lineage import EDGES, Edge, layout, resolve_edges

# The chains the seeds describe (parent, child), each of which must be an edge of the graph.
SEED_CHAINS = [
    ("lenet5", "alexnet"), ("alexnet", "zfnet"), ("zfnet", "vgg16"), ("nin", "googlenet"),
    ("highway_cnn", "resnet50"), ("resnet50", "preact_resnet50"), ("preact_resnet50", "wrn_28_10"),
    ("resnet50", "resnext50_32x4d"), ("resnet50", "seresnet50"), ("resnext50_32x4d", "resnest50"),
    ("resnet50", "densenet121"), ("googlenet", "inception_v3"), ("inception_v3", "xception"),
    ("xception", "mobilenet_v1"), ("mobilenet_v1", "shufflenet_v1_g3"), ("mobilenet_v2", "efficientnet_b0"),
    ("resnext50_32x4d", "regnet_x_1_6gf"), ("regnet_y_1_6gf", "convnext_tiny"),
]  # fmt: skip


@pytest.fixture(scope="module")
def registry():
    names = list_models()
    return names, {n: model_info(n) for n in names}


def test_seed_chains_are_edges_between_registered_models(registry):
    names, cards = registry
    edges, skipped = resolve_edges(names, cards)
    pairs = {(e.parent, e.child) for e in edges}
    missing = [c for c in SEED_CHAINS if c not in pairs]
    assert not missing, f"edges the seeds describe are missing: {missing}"
    # an edge is left out only when one of its ends names no registered model or family (a successor not built yet)
    known = set(cards) | {c.family for c in cards.values()}
    for e in skipped:
        assert any(not set(end.split("|")) & known for end in (e.parent, e.child)), e


def test_every_edge_has_a_reason_and_goes_forward_in_time(registry):
    names, cards = registry
    edges, _ = resolve_edges(names, cards)
    assert len({(e.parent, e.child) for e in edges}) == len(edges)
    for e in edges:
        assert len(e.reason) > 30 and e.reason.endswith("."), e
        assert cards[e.parent].year <= cards[e.child].year, f"{e.parent} -> {e.child} goes back in time"
    for e in EDGES:
        assert e.reason and e.parent != e.child


def test_layout_puts_children_below_parents_and_never_overlaps(registry):
    names, cards = registry
    edges, _ = resolve_edges(names, cards)
    g = layout(names, cards, edges)
    pos = {n.name: n for n in g.nodes}
    for e in edges:
        assert pos[e.child].row > pos[e.parent].row, e
    rows: dict[int, list[float]] = {}
    for n in g.nodes:
        rows.setdefault(n.row, []).append(n.x)
        assert g.node_w / 2 <= n.x <= g.width - g.node_w / 2 + 1
    for xs in rows.values():
        xs.sort()
        assert all(b - a >= g.node_w for a, b in zip(xs, xs[1:]))
    # every family appears, ViT included although it has no parent in the convnet lineage
    assert {cards[n].family for n in pos} == {c.family for c in cards.values()}
    assert "vit_b_16" in pos
    # the years run down the page
    years = [y for y, _, _ in g.years]
    assert years == sorted(years) and all(first <= last for _, first, last in g.years)


@dataclass
class _Card:
    family: str
    year: int


def test_a_family_stands_for_its_first_model_and_unknown_names_drop_the_edge():
    cards = {"a1": _Card("fa", 2000), "a2": _Card("fa", 2001), "b1": _Card("fb", 2002)}
    edges = [Edge("fa", "b1", "A family as parent."), Edge("b1", "nosuch|fc", "Not registered at all.")]
    got, skipped = resolve_edges(["a1", "a2", "b1"], cards, edges)
    assert [(e.parent, e.child) for e in got] == [("a1", "b1")]
    assert skipped == [edges[1]]


def test_a_registered_model_left_out_of_a_partial_site_does_not_fall_back_to_its_family():
    # "mlp" is both a model and a family; in a site without the model mlp, perceptron must not inherit its edges
    cards = {"perceptron": _Card("mlp", 1958), "lenet5": _Card("lenet", 1998)}
    edges = [Edge("mlp", "lenet5", "Shared weights.")]
    got, skipped = resolve_edges(
        ["perceptron", "lenet5"], cards, edges, registered=["perceptron", "mlp", "lenet5"]
    )
    assert got == [] and skipped == []
