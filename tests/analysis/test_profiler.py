"""The profiler against independent counts: torchvision's published figures, fvcore, hand calculations."""

from __future__ import annotations

import warnings

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import cnnlineage
from cnnlineage.analysis import InputSizeError, profile

TV = [n for n in cnnlineage.list_models() if cnnlineage.model_info(n).torchvision]


def _conv_macs(c_in, c_out, k, h_out, w_out, groups=1):
    return c_out * h_out * w_out * (c_in // groups) * k * k


# ----------------------------------------------------------------------------- published figures
@pytest.mark.parametrize("name", TV)
def test_total_macs_match_torchvision_published_ops(name):
    import torchvision

    weights = torchvision.models.get_model_weights(cnnlineage.model_info(name).torchvision).DEFAULT
    crop = weights.transforms.keywords.get("crop_size", 224)
    gmacs = profile(name, (3, crop, crop)).total_macs / 1e9
    published = weights.meta["_ops"]  # GFLOPS as torchvision counts them: multiply-accumulates
    # within 1%, or within the rounding of the published figure (3 decimals: ±0.0005 G)
    assert abs(gmacs - published) <= max(0.01 * published, 0.0005), f"{name}: {gmacs:.4f} G vs {published} G"


@pytest.mark.parametrize("name", ["resnet18", "mobilenet_v2", "resnext50_32x4d", "vit_tiny_patch4_32"])
def test_conv_and_linear_macs_equal_fvcore(name):
    fvcore = pytest.importorskip("fvcore.nn")
    model = cnnlineage.create_model(name).eval()
    x = torch.randn(1, *model.input_size)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        counter = fvcore.FlopCountAnalysis(model, x)
        counter.unsupported_ops_warnings(False)
        counter.uncalled_modules_warnings(False)
        ref = counter.by_operator()
    ours = profile(model, batch_size=1).macs_by_op
    assert ours.get("convolution", 0) == ref.get("conv", 0)
    assert ours.get("addmm", 0) + ours.get("mm", 0) == ref.get("linear", 0) + ref.get("matmul", 0)


def test_attention_macs_equal_hand_calculation():
    # fvcore counts nothing for scaled_dot_product_attention; torchvision's 17.564 G includes it.
    p = profile("vit_b_16")
    n, d, layers = 197, 768, 12  # tokens (14·14 patches + class token), width, depth
    assert p.macs_by_op["scaled_dot_product_attention"] == layers * 2 * n * n * d
    # the rest is the linear layers and the patch embedding: 17.564 G in total
    assert p.total_macs / 1e9 == pytest.approx(17.564, abs=0.0005)


def test_multihead_attention_module_is_counted():
    mha = nn.MultiheadAttention(64, 4, batch_first=True)

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.attn = mha

        def forward(self, x):  # (B, 1, N, D)
            t = x[:, 0]  # (B, N, D)
            return self.attn(t, t, t, need_weights=False)[0]

    p = profile(Net(), (1, 10, 64))
    n, d = 10, 64
    expected = 3 * n * d * d + 2 * n * n * d + n * d * d  # q,k,v projections + attention + output projection
    assert p.total_macs == expected


# ----------------------------------------------------------------------------- the AlexNet lecture table
def test_alexnet_227_reproduces_the_lecture_table():
    p = profile("alexnet", (3, 227, 227))
    rows = {r.name: r for r in p.rows}
    conv1 = rows["features.0"]
    assert conv1.output_shape == (1, 64, 56, 56)
    assert conv1.activation_bytes == 802_816  # 784 KB in fp32
    assert conv1.params == 23_296
    assert conv1.macs == 72_855_552
    assert rows["features.2"].output_shape == (1, 64, 27, 27)
    # every convolution and linear row against the hand calculation
    spec = [  # name, c_in, c_out, k, out size
        ("features.0", 3, 64, 11, 56), ("features.3", 64, 192, 5, 27), ("features.6", 192, 384, 3, 13),
        ("features.8", 384, 256, 3, 13), ("features.10", 256, 256, 3, 13),
    ]  # fmt: skip
    for name, c_in, c_out, k, s in spec:
        r = rows[name]
        assert r.output_shape == (1, c_out, s, s)
        assert r.params == c_out * c_in * k * k + c_out
        assert r.macs == _conv_macs(c_in, c_out, k, s, s)
        assert r.flops == 2 * r.macs + c_out * s * s  # + bias
        assert r.activation_bytes == 4 * c_out * s * s
    for name, size in (("features.2", 27), ("features.5", 13), ("features.12", 6)):
        c = rows[name].output_shape[1]
        assert rows[name].output_shape == (1, c, size, size)
        assert rows[name].flops == c * size * size * 9  # 3x3 window per output
    for name, n_in, n_out in (
        ("classifier.1", 9216, 4096),
        ("classifier.4", 4096, 4096),
        ("classifier.6", 4096, 1000),
    ):
        r = rows[name]
        assert (r.params, r.macs, r.flops) == (n_in * n_out + n_out, n_in * n_out, 2 * n_in * n_out + n_out)
    for name in ("features.1", "features.4", "features.7", "features.9", "features.11"):
        assert rows[name].flops == rows[name].activation_bytes // 4  # ReLU: one per element
    # most parameters sit in the fully connected layers, most compute in the convolutions
    fc_params = sum(r.params for r in p.rows if r.name.startswith("classifier"))
    conv_macs = sum(r.macs for r in p.rows if r.name.startswith("features"))
    assert fc_params / p.total_params > 0.9 and conv_macs / p.total_macs > 0.9
    # peak inference memory: conv1's input and output together
    assert p.peak_activation_bytes == 4 * (3 * 227 * 227 + 64 * 56 * 56)


# ----------------------------------------------------------------------------- counting rules
class _Functional(nn.Module):
    """Functional operators that no module wraps, and a module called twice."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(4, 4, 3, padding=1, bias=False)
        self.proj = nn.Linear(8, 6)

    def forward(self, x):  # x: (1, 4, 8, 8)
        y = self.conv(x)
        y = self.conv(y)  # the same module twice
        y = F.relu(y + x)  # residual addition + functional ReLU
        z = torch.cat([y, x], dim=1)  # (1, 8, 8, 8)
        t = z.flatten(2).transpose(1, 2)  # (1, 64, 8) tokens
        q = self.proj(t).unflatten(-1, (2, 3)).transpose(1, 2)  # (1, 2, 64, 3)
        a = F.scaled_dot_product_attention(q, q, q)  # (1, 2, 64, 3)
        return a.mean()


def test_functional_ops_and_repeated_modules_are_counted():
    p = profile(_Functional(), (4, 8, 8))
    types = [r.type for r in p.rows]
    assert types[:2] == ["Conv2d", "Conv2d"]
    assert {"add", "relu", "cat", "scaled_dot_product_attention", "mean", "Linear"} <= set(types)
    conv = 8 * 8 * 4 * 4 * 9
    linear = 64 * 8 * 6
    attention = 2 * 64 * 64 * (3 + 3)  # heads · L · S · (E + E_v)
    assert p.total_macs == 2 * conv + linear + attention
    add = next(r for r in p.rows if r.type == "add")
    assert add.flops == 4 * 8 * 8 and add.macs == 0
    cat = next(r for r in p.rows if r.type == "cat")
    assert cat.flops == 0 and cat.output_shape == (1, 8, 8, 8) and cat.activation_bytes == 8 * 64 * 4
    sdpa = next(r for r in p.rows if r.type == "scaled_dot_product_attention")
    assert sdpa.global_rf  # attention: every unit sees the whole input
    assert sdpa.flops == 2 * attention + 4 * 2 * 64 * 64


@pytest.mark.parametrize(
    "layer,shape,macs,flops",
    [
        (
            nn.Conv2d(8, 16, 3, padding=1, groups=4, bias=False),
            (8, 10, 10),
            16 * 100 * 2 * 9,
            2 * 16 * 100 * 2 * 9,
        ),
        (
            nn.Conv2d(8, 8, 3, padding=1, groups=8),
            (8, 10, 10),
            8 * 100 * 9,
            2 * 8 * 100 * 9 + 800,
        ),  # depthwise
        (
            nn.Conv2d(4, 4, 3, padding=2, dilation=2, bias=False),
            (4, 9, 9),
            4 * 81 * 4 * 9,
            2 * 4 * 81 * 4 * 9,
        ),
        (nn.BatchNorm2d(4), (4, 5, 5), 0, 2 * 100),
        (nn.GroupNorm(2, 4), (4, 5, 5), 0, 5 * 100),
        (nn.MaxPool2d(3, 2), (4, 9, 9), 0, 4 * 16 * 9),
        (nn.AvgPool2d(2), (4, 8, 8), 0, 4 * 16 * 4),
        (nn.AdaptiveAvgPool2d(1), (4, 6, 6), 0, 4 * 36),
        (nn.Hardswish(), (4, 3, 3), 0, 36),
    ],
)
def test_counting_rules(layer, shape, macs, flops):
    p = profile(nn.Sequential(layer).eval(), shape)
    assert (p.total_macs, p.total_flops) == (macs, flops)


def test_linear_on_3d_input_and_layernorm():
    net = nn.Sequential(nn.LayerNorm(16), nn.Linear(16, 32))
    p = profile(net, (1, 7, 16))  # (B, 1, 7, 16): the linear layer sees 7 rows of 16
    assert p.total_macs == 7 * 16 * 32
    assert p.total_flops == 5 * 7 * 16 + 2 * 7 * 16 * 32 + 7 * 32


def test_batch_and_dtype_scale_counts_and_bytes():
    a = profile("lenet5_modern")
    b = profile("lenet5_modern", batch_size=4, dtype=torch.bfloat16)
    assert b.total_macs == 4 * a.total_macs
    assert b.activation_bytes == 4 * a.activation_bytes // 2
    assert b.param_bytes == a.param_bytes // 2
    assert a.training_memory_bytes("adam") == 4 * a.param_bytes + a.activation_bytes
    with pytest.raises(ValueError, match="optimizer"):
        a.training_memory_bytes("lion")


def test_peak_memory_frees_dead_tensors():
    net = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(inplace=True), nn.Conv2d(8, 2, 3, padding=1))
    p = profile(net, (1, 16, 16))
    px = 16 * 16 * 4
    # conv1 holds input + output; the in-place ReLU adds nothing; conv2 holds its input and output
    assert p.peak_activation_bytes == max(px * (1 + 8), px * (8 + 2))


# ----------------------------------------------------------------------------- outputs and errors
def test_exports_and_grouping():
    p = profile("lenet5")
    d = p.to_dict()
    assert d["total_params"] == 60_850 and len(d["rows"]) == len(p.rows)
    md = p.to_markdown()
    assert md.startswith("| name |") and "c1" in md
    csv_text = p.to_csv()
    assert csv_text.splitlines()[0].startswith("name,type,input_shape")
    assert len(csv_text.splitlines()) == len(p.rows) + 1
    grouped = p.grouped(1)
    assert sum(r.macs for r in grouped) == p.total_macs
    assert [r.name for r in grouped][:3] == ["c1", "act1", "s2"]


def test_input_too_small_names_the_failing_layer():
    with pytest.raises(InputSizeError) as info:
        profile("alexnet", (3, 32, 32))
    msg = str(info.value)
    assert "features." in msg and "needs at least" in msg and "3x32x32" in msg


def test_bad_arguments():
    with pytest.raises(ValueError, match="input_size"):
        profile("lenet5", (32, 32))
    with pytest.raises(ValueError, match="batch_size"):
        profile("lenet5", batch_size=0)
    with pytest.raises(ValueError, match="unknown model"):
        profile("lenet6")


def test_module_level_fallback_warns_and_still_counts(monkeypatch):
    from cnnlineage.analysis import profiler

    def broken(*args, **kwargs):
        raise NotImplementedError("operator tracing unavailable")

    monkeypatch.setattr(profiler, "_run", broken)
    with pytest.warns(UserWarning, match="NOT counted"):
        p = profile("lenet5_modern")
    assert p.method == "module"
    conv_fc = 28 * 28 * 6 * 25 + 10 * 10 * 16 * 150 + 120 * 400 + 120 * 84 + 84 * 10
    assert p.total_macs == conv_fc


@pytest.mark.parametrize("name", cnnlineage.list_models())
def test_every_model_profiles(name):
    card = cnnlineage.model_info(name)
    p = profile(name)
    assert p.total_params == card.ref_params
    assert sum(r.params for r in p.rows) == p.total_params  # every parameter in exactly one row
    assert p.total_macs > 0 and p.total_flops > 2 * p.total_macs - 1
    out = p.rows[-1].output_shape
    assert out[0] == 1 and torch.Size(out[1:]).numel() == card.num_classes
    assert not p.uncounted, f"{name}: operators without a counting rule: {p.uncounted}"


def test_parameters_read_by_functional_operators_have_rows():
    # ViT reads its class token, position embeddings and the packed q/k/v projection
    # functionally (cat, add, F.linear): each lands in the row of the operator that reads it.
    d, tokens = 192, 1 + (32 // 4) ** 2  # vit_tiny_patch4_32: width 192, 8x8 patches + class token
    rows = {r.name: r for r in profile("vit_tiny_patch4_32").rows}
    assert rows["cat"].params == d  # the class token
    assert rows["encoder.add"].params == tokens * d  # the position embeddings
    qkv = rows["encoder.layers.encoder_layer_0.self_attention.addmm"]
    assert qkv.params == 3 * d * d + 3 * d and qkv.output_shape == (1, tokens, 3 * d)
    # ConvNeXt's layer scale (one gamma per channel) is read by a multiplication in the block
    assert {r.name: r for r in profile("convnext_tiny").rows}["features.1.0.mul"].params == 96
