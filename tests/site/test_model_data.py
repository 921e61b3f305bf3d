"""A model page's numbers: the analyzer's rows one for one, group sums, stages that add up, cards of any shape."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from cnnlineage.analysis import profile
from cnnlineage.site.models import by_type, card_dict, layer_tree, model_data, stages


@pytest.mark.parametrize("name", ["resnet18", "vit_tiny_patch4_32", "mobilenet_v2"])
def test_page_data_matches_the_analyzer(name):
    ref = profile(name)  # profiled by name, the analyzer's own path
    d = model_data(name)
    assert d.error is None
    assert d.totals["total_params"] == ref.total_params and d.totals["total_macs"] == ref.total_macs
    assert d.totals["peak_activation_bytes"] == ref.peak_activation_bytes
    leaves = [r for r in d.tree if r["kind"] == "r"]
    assert d.n_rows == len(ref.rows) == len(leaves)
    for r, leaf in zip(ref.rows, leaves):  # one for one, in execution order
        full = f"{leaf['prefix']}.{leaf['leaf']}" if leaf["prefix"] else leaf["leaf"]
        assert full == (r.name or "(input)") and leaf["cells"][5] == f"{r.macs:,}"
    # stages cover every row exactly once: their sums are the totals
    assert sum(s["params"] for s in d.stages) == ref.total_params
    assert sum(s["macs"] for s in d.stages) == ref.total_macs
    assert sum(s["rows"] for s in d.stages) == len(ref.rows)
    assert sum(t["macs"] for t in d.by_type) == ref.total_macs


def test_group_rows_sum_the_rows_beneath_them():
    tree = model_data("resnet18").tree
    num = lambda s: int(s.replace(",", ""))  # noqa: E731
    groups = 0
    for i, g in enumerate(tree):
        if g["kind"] != "g":
            continue
        groups += 1
        params = macs = 0
        for r in tree[i + 1 :]:
            if r["level"] <= g["level"]:
                break
            if r["kind"] == "r":
                params, macs = params + num(r["cells"][4]), macs + num(r["cells"][5])
        assert (params, macs) == (num(g["cells"][4]), num(g["cells"][5])), g
    assert groups >= 4 + 8  # layer1..layer4 and their two blocks each


def test_resnet18_stages_by_hand():
    # conv1 7x7x3x64 = 9,408 weights + BN 128; torchvision's stage widths 64/128/256/512 at strides 4..32
    d = model_data("resnet18")
    assert [(s["channels"], s["reduction"]) for s in d.stages[:5]] == [
        (64, 2),
        (64, 4),
        (128, 8),
        (256, 16),
        (512, 32),
    ]
    assert d.stages[0]["params"] == 9408 + 128
    assert d.stages[4]["output"] == "512×7×7" and d.stages[-1]["label"] == "head"
    assert d.stages[-1]["params"] == 512 * 1000 + 1000


def test_layer_tree_without_groups_and_by_type_rest():
    @dataclass
    class Row:
        name: str
        type: str
        params: int
        macs: int
        input_shape: tuple = (1, 4)
        output_shape: tuple = (1, 4)
        flops: int = 0
        activation_bytes: int = 0
        receptive_field: int | None = None
        jump: int | None = None
        global_rf: bool = False

    rows = [Row("a", "Linear", 20, 16), Row("b.x", "ReLU", 0, 0), Row("c", "Linear", 5, 4)]
    tree = layer_tree(rows)  # "b" holds one row: no group row for it
    assert [r["kind"] for r in tree] == ["r", "r", "r"] and tree[1]["prefix"] == "b"
    many = [Row(f"l{i}", f"T{i}", i, 10 - i) for i in range(10)]
    bt = by_type(many, top=3)
    assert [b["name"] for b in bt[:3]] == ["T0", "T1", "T2"] and bt[3]["name"] == "other (7 types)"
    assert sum(b["macs"] for b in bt) == sum(r.macs for r in many)
    assert stages([{"module": "nosuch", "num_chs": 3, "reduction": 1}], rows)[0]["missing"]


def test_cards_of_any_shape():
    @dataclass(frozen=True)
    class NewCard:  # the fields a later ModelCard may carry
        name: str = "x"
        family: str = "f"
        year: int = 2015
        authors: tuple = ("Simonyan", "Zisserman")
        venue_year: int = 2015
        data_note: str = "a field no page knows about"
        extra: dict = field(default_factory=dict)

    d = card_dict(NewCard())
    assert d["author_line"] == "Simonyan & Zisserman" and d["first_author"] == "Simonyan"

    @dataclass(frozen=True)
    class OldCard:
        name: str = "y"
        first_author: str = "LeCun"

    assert card_dict(OldCard())["author_line"] == "LeCun et al."
