"""Structured pruning (Torch-Pruning) shrinks MACs and parameters as asked; pruned checkpoints load everywhere."""

from __future__ import annotations

import io

import pytest
import torch

from cnnlineage.analysis import profile
from cnnlineage.cli import main
from cnnlineage.compress.prune import check_ratio, prune_structured, prune_unstructured
from cnnlineage.models._resize import apply_structure, pruned_structure
from cnnlineage.registry import create_model
from cnnlineage.train import load_checkpoint, save_checkpoint
from cnnlineage.train.checkpoint import CheckpointError
from cnnlineage.train.inference import load_model


def _macs_params(model, size):
    p = profile(model, size)
    return p.total_macs, p.total_params


@pytest.mark.parametrize("importance", ["l1", "l2"])
def test_structured_pruning_removes_the_asked_share_of_macs(importance):
    model = create_model("lenet5_modern", num_classes=10, in_chans=1, pad_input=True).eval()
    ref = create_model("lenet5_modern", num_classes=10, in_chans=1, pad_input=True).eval()
    ref.load_state_dict(model.state_dict())
    size = (1, 28, 28)
    macs0, params0 = _macs_params(model, size)  # the analyzer's counts, independent of Torch-Pruning's
    res = prune_structured(model, ratio=0.5, input_size=size, importance=importance)
    macs1, params1 = _macs_params(model, size)
    assert 0.47 <= 1 - macs1 / macs0 <= 0.56  # the steps stop at the first width under the target
    assert params1 < 0.6 * params0 and res.params_after < res.params_before
    assert model.fc.out_features == 10 and "fc" in res.skipped  # the classes stay
    assert model(torch.randn(3, *size)).shape == (3, 10)
    # the recorded structure rebuilds the pruned network from a fresh one, weights and outputs exact
    structure = pruned_structure(model, ref)
    fresh = apply_structure(
        create_model("lenet5_modern", num_classes=10, in_chans=1, pad_input=True), structure
    )
    fresh.load_state_dict(model.state_dict())
    x = torch.randn(2, *size)
    assert torch.equal(fresh.eval()(x), model(x))


def test_option_a_resnet_prunes_inside_the_blocks_only():
    """The zero-padding shortcut couples widths 16/32/64, which the graph cannot follow: those layers stay."""
    model = create_model("resnet20", num_classes=10).eval()
    res = prune_structured(model, ratio=0.3, input_size=(3, 32, 32))
    assert "stem.0" in res.skipped and "layer2.0.conv2.0" in res.skipped
    assert model.layer2[0].conv2[0].out_channels == 32 and model.layer2[0].conv1[0].out_channels < 32
    assert res.macs_ratio >= 0.3
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_unstructured_masks_zero_weights_but_keep_the_file_size():
    model = create_model("lenet5_modern", num_classes=10, in_chans=1, pad_input=True)
    before = io.BytesIO()
    torch.save(model.state_dict(), before)
    sparsity = prune_unstructured(model, ratio=0.7)
    after = io.BytesIO()
    torch.save(model.state_dict(), after)
    assert sparsity == pytest.approx(0.7, abs=0.01)
    assert abs(after.tell() - before.tell()) < 200  # same dense tensors: zeros cost as much as any float
    assert not any("mask" in k or "orig" in k for k in model.state_dict())


@pytest.mark.parametrize("ratio", [0.0, 1.0, 1.5, -0.2])
def test_ratio_outside_0_1_is_refused(ratio):
    with pytest.raises(ValueError, match=r"in \(0, 1\)"):
        check_ratio(ratio)


def test_pruned_checkpoint_round_trips_through_eval_predict_summary(tiny_ckpt, tmp_path, capsys):
    out = tmp_path / "p"
    assert main(["prune", str(tiny_ckpt), "--ratio", "0.5", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "MACs" in text and "pruned.pt" in text
    pruned = out / "pruned.pt"
    model, meta = load_model(pruned)  # weights_only=True, rebuilt from config.model.pruned
    assert model.c1.out_channels < 6 and meta["config"]["model"]["pruned"]["tensors"]
    assert main(["eval", str(pruned)]) == 0
    assert "top-1" in capsys.readouterr().out
    assert main(["summary", str(pruned)]) == 0
    summary = capsys.readouterr().out
    assert f"{sum(p.numel() for p in model.parameters()):,}" in summary  # the pruned count, not 61,706
    digit = tmp_path / "digit.png"
    from PIL import Image

    Image.fromarray((torch.rand(28, 28) * 255).byte().numpy()).save(digit)
    assert main(["predict", str(pruned), str(digit), "--topk", "2"]) == 0
    # the same weights without the recorded structure: one clear error, not a traceback
    ckpt = load_checkpoint(pruned)
    ckpt["config"]["model"]["pruned"] = {}
    save_checkpoint(ckpt, tmp_path / "stripped.pt")
    with pytest.raises(CheckpointError, match="channel-pruned"):
        load_model(tmp_path / "stripped.pt")
    assert main(["eval", str(tmp_path / "stripped.pt")]) == 2
    err = capsys.readouterr().err
    assert "channel-pruned" in err and len(err.strip().splitlines()) == 1


def test_prune_cli_bad_ratio_exits_2_and_writes_nothing(tiny_ckpt, tmp_path, capsys):
    out = tmp_path / "bad"
    assert main(["prune", str(tiny_ckpt), "--ratio", "1.5", "--out", str(out)]) == 2
    assert "--ratio must be in (0, 1)" in capsys.readouterr().err
    assert not out.exists()
