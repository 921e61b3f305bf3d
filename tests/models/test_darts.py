"""DARTS evaluation network: hand parameter counts, the paper's 3.3M, genotype parsing and errors."""

import json

import pytest
import torch

from cnnlineage import create_model
from cnnlineage.models.darts import GENOTYPES, Genotype


def _hand_count(genotype: Genotype, *, c: int, layers: int, in_chans: int, classes: int) -> int:
    """Count DARTS parameters op by op from the paper's definitions (BN affine: 2 per channel)."""

    def op(name: str, ch: int, stride: int) -> int:
        if name in ("max_pool_3x3", "avg_pool_3x3"):
            return 0
        if name == "skip_connect":
            return 0 if stride == 1 else ch * ch + 2 * ch  # factorized reduce: two 1x1 halves + BN
        k = int(name[-1])
        one = ch * k * k + ch * ch + 2 * ch  # depthwise kxk, pointwise 1x1, BN
        return 2 * one if name.startswith("sep") else one

    total = in_chans * 3 * c * 9 + 2 * 3 * c  # stem conv + BN
    c_pp = c_p = 3 * c
    cur = c
    for i in range(layers):
        red = i in (layers // 3, 2 * layers // 3)
        cur = cur * 2 if red else cur
        total += c_pp * cur + 2 * cur  # preprocess0 (ReLUConvBN or FactorizedReduce: same count)
        total += c_p * cur + 2 * cur  # preprocess1
        edges = genotype.reduce if red else genotype.normal
        total += sum(op(name, cur, 2 if red and src < 2 else 1) for name, src in edges)
        c_pp, c_p = c_p, 4 * cur
    return total + c_p * classes + classes


def test_darts_v2_matches_the_paper_and_a_hand_count():
    m = create_model("darts_v2")
    n = sum(p.numel() for p in m.parameters())
    hand = _hand_count(GENOTYPES["darts_v2"], c=36, layers=20, in_chans=3, classes=10)
    assert n == hand == 3_349_342  # the authors' code logs "param size = 3.349342MB"; Table 1: 3.3M
    assert round(n / 1e6, 1) == 3.3


@pytest.mark.parametrize("name", ["darts_v1", "darts_v2"])
def test_darts_builder_counts_by_hand(name):
    m = create_model("darts", genotype=name, in_chans=1)
    assert sum(p.numel() for p in m.parameters()) == _hand_count(
        GENOTYPES[name], c=16, layers=8, in_chans=1, classes=10
    )


def test_auxiliary_head_in_training_only():
    m = create_model("darts", layers=6, channels=4, auxiliary=True)
    m.train()
    out = m(torch.randn(2, 3, 32, 32))
    assert isinstance(out, tuple) and out[1].shape == (2, 10)
    m.eval()
    assert m(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_genotype_round_trips_through_json_file_and_text(tmp_path):
    g = GENOTYPES["darts_v2"]
    f = tmp_path / "genotype.json"
    f.write_text(json.dumps(g.to_dict()))
    assert Genotype.parse(str(f)) == g == Genotype.parse(g.to_json()) == Genotype.parse(g.to_dict())
    a = create_model("darts", genotype=str(f), channels=4, layers=3)
    b = create_model("darts", genotype="darts_v2", channels=4, layers=3)
    assert [p.shape for p in a.parameters()] == [p.shape for p in b.parameters()]


@pytest.mark.parametrize(
    "spec, words",
    [
        ("nosuch", "neither a published name"),
        ("{not json", "not valid JSON"),
        (
            {
                "normal": [["conv_7x7", 0], ["skip_connect", 1]],
                "normal_concat": [2],
                "reduce": [["skip_connect", 0], ["skip_connect", 1]],
                "reduce_concat": [2],
            },
            "unknown operation 'conv_7x7'",
        ),
        (
            {
                "normal": [["skip_connect", 0], ["skip_connect", 2]],
                "normal_concat": [2],
                "reduce": [["skip_connect", 0], ["skip_connect", 1]],
                "reduce_concat": [2],
            },
            "reads node 2",
        ),
        ({"normal": []}, "needs normal, normal_concat"),
    ],
)
def test_bad_genotypes_are_named(spec, words):
    with pytest.raises(ValueError, match=words):
        Genotype.parse(spec)
