"""`cnnlineage predict` and `eval` on the inputs people actually give them: paper digits, photos, wrong files."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from cnnlineage.cli import main
from cnnlineage.data import build_datasets
from cnnlineage.train.checkpoint import save_checkpoint
from cnnlineage.train.inference import predict

TINY = ["--set", "threads=1", "--set", "run.tensorboard=false", "--set", "run.plots=false", "--quiet"]
PICKS = range(5, 1000, 100)  # one test digit of each class (the test split is sorted by class)


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    out = tmp_path_factory.mktemp("predict") / "run"
    assert main(["train", "lenet5", "--epochs", "1", "--out", str(out), *TINY]) == 0
    return out / "checkpoints" / "best.pt"


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    """Ten mnist5k test digits as PNG files: as stored (light on dark) and as on paper (dark on light)."""
    folder = tmp_path_factory.mktemp("digits")
    _, test, _ = build_datasets("mnist5k")
    light, dark, labels = [], [], []
    for i in PICKS:
        a = test.images[i, 0].numpy()
        light.append(folder / f"light{i}.png")
        dark.append(folder / f"dark{i}.png")
        Image.fromarray(a).save(light[-1])
        Image.fromarray(255 - a).save(dark[-1])
        labels.append(str(int(test.labels[i])))
    return light, dark, labels


def _top(results):
    return [(r["top"][0][0], r["top"][0][1]) for r in results]


def test_dark_on_light_digits_are_inverted_and_the_line_says_so(ckpt, digits, capsys):
    light, dark, labels = digits
    as_trained = predict(ckpt, light, topk=1)
    auto = predict(ckpt, dark, topk=1)
    never = predict(ckpt, dark, topk=1, invert="never")
    # 255 - (255 - x) = x: the inverted paper digits are exactly the training-style digits
    for a, b in zip(_top(auto), _top(as_trained)):
        assert a[0] == b[0] and a[1] == pytest.approx(b[1], abs=1e-6)
    assert all(r["inverted"] and not r["warnings"] for r in auto)
    assert not any(r["inverted"] or r["warnings"] for r in as_trained)
    right = sum(c == y for (c, _), y in zip(_top(as_trained), labels))
    right_never = sum(c == y for (c, _), y in zip(_top(never), labels))
    assert right >= 7 and right_never <= 4  # without inversion: mostly one class, as users saw
    assert all("reverse of the training images" in r["summary"] for r in never)
    always = predict(ckpt, light, topk=1, invert="always")  # 255 - x of the stored digits: the paper digits
    for a, b in zip(_top(always), _top(never)):
        assert a[0] == b[0] and a[1] == pytest.approx(b[1], abs=1e-6)
    assert main(["predict", str(ckpt), str(dark[0]), "--topk", "1"]) == 0
    out = capsys.readouterr().out
    assert "invert (background 1.00: dark on light, the training images are light on dark)" in out
    assert "normalise with mean (0.1307) and std (0.3081)" in out


def test_photos_are_flagged_as_unlike_the_training_data(ckpt, tmp_path, capsys):
    from sklearn.datasets import load_sample_images

    files = []
    for k, im in enumerate(load_sample_images().images):  # china.jpg, flower.jpg: 427x640 colour photos
        files.append(tmp_path / f"photo{k}.jpg")
        Image.fromarray(im).save(files[-1])
    for r in predict(ckpt, files, topk=1):
        text = " ".join(r["warnings"])
        assert "a colour image" in text and "shrunk 23x to 28x28" in text and "squeezed" in text
        assert r["summary"].startswith("does not look like the training data (mnist5k: grey 28x28 images")
        assert not r["inverted"]
    assert main(["predict", str(ckpt), *map(str, files)]) == 0
    assert capsys.readouterr().out.count("warning: does not look like the training data") == 2


def test_show_input_saves_the_tensor_the_model_saw(ckpt, digits, tmp_path, capsys):
    light, dark, _ = digits
    assert main(["predict", str(ckpt), str(dark[3]), "--show-input", str(tmp_path / "seen")]) == 0
    assert "model input saved as" in capsys.readouterr().out
    seen = np.asarray(Image.open(tmp_path / "seen" / f"{dark[3].stem}.input.png"))
    assert seen.shape == (224, 224)  # 28x28 enlarged 8x, nearest neighbour
    original = np.asarray(Image.open(light[3])).astype(int)
    assert np.abs(seen[::8, ::8].astype(int) - original).max() <= 1  # un-normalised round trip


def test_one_bad_file_does_not_hide_the_good_ones(ckpt, digits, tmp_path, capsys):
    light, _, _ = digits
    broken = tmp_path / "broken.png"
    broken.write_text("not an image")
    code = main(["predict", str(ckpt), str(light[0]), str(broken), str(tmp_path / "gone.png"), "--topk", "2"])
    out, err = capsys.readouterr()
    assert code == 2
    assert str(light[0]) in out and out.count("%") == 2
    assert f"cannot read image {broken}" in err and f"{tmp_path / 'gone.png'} does not exist" in err
    assert "2 of 3 file(s) could not be classified" in err


@pytest.mark.parametrize("k", ["0", "-3"])
def test_topk_must_be_positive(ckpt, digits, k, capsys):
    with pytest.raises(SystemExit) as e:
        main(["predict", str(ckpt), str(digits[0][0]), "--topk", k])
    assert e.value.code == 2 and "--topk: expected a positive integer" in capsys.readouterr().err
    with pytest.raises(ValueError, match="topk must be a positive integer"):
        predict(ckpt, digits[0][:1], topk=int(k))


def test_directories_and_images_are_not_checkpoints(ckpt, tmp_path, capsys):
    run = ckpt.parent.parent
    jpeg = tmp_path / "cat.jpg"
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(jpeg)
    for cmd in ("eval", "predict"):
        assert main([cmd, str(run), str(jpeg)][: 2 if cmd == "eval" else 3]) == 2
        err = capsys.readouterr().err
        assert f"{run} is a directory, not a checkpoint written by `cnnlineage train`" in err
        assert f"did you mean {run / 'checkpoints' / 'best.pt'}" in err
        assert main([cmd, str(jpeg), str(jpeg)][: 2 if cmd == "eval" else 3]) == 2
        err = capsys.readouterr().err
        assert "not a checkpoint written by `cnnlineage train` (it is a JPEG image)" in err
        assert "weights_only" not in err and "does not exist" not in err


def test_eval_refuses_a_checkpoint_of_another_data_set(ckpt, tmp_path, capsys):
    from cnnlineage.data.shapes import SHAPES

    state = torch.load(ckpt, weights_only=True)
    state["config"]["data"]["name"] = "shapes10"  # as if trained on shapes10: other classes, colour
    state["classes"] = list(SHAPES)
    other = tmp_path / "shapes.pt"
    save_checkpoint(state, other)  # a genuine checkpoint of another run: its checksum is valid
    assert main(["eval", str(other), "--data", "mnist5k"]) == 2
    err = capsys.readouterr().err
    assert f"{other} was trained on shapes10, not mnist5k" in err and "--allow-mismatch" in err
    assert "3-channel vs 1-channel images" in err and SHAPES[0] in err
    assert main(["eval", str(other), "--data", "mnist5k", "--allow-mismatch", "--format", "json"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["samples"] == 1000 and "scored anyway" in err


def test_wrong_architecture_names_the_model_the_weights_fit(ckpt, tmp_path, capsys):
    from cnnlineage import create_model

    state = torch.load(ckpt, weights_only=True)
    state["model"] = create_model("lenet5_modern").state_dict()
    wrong = tmp_path / "wrong.pt"
    save_checkpoint(state, wrong)  # well-formed (valid checksum) but written for another architecture
    for argv in (["eval", str(wrong)], ["predict", str(wrong), str(wrong)]):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and "size mismatch" not in err
        assert f"{wrong} says it holds lenet5 (pad_input=True) but its weights do not fit lenet5" in err
        assert "they fit lenet5_modern" in err
