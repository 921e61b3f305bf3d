"""`cnnlineage visualize`: checkpoints and model names, images of any size and mode, and one-line errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from cnnlineage.cli import main


@pytest.fixture(scope="module")
def photo(tmp_path_factory):
    """A 300x200 RGBA PNG with a white bar on black, and the same as a grey JPEG."""
    d = tmp_path_factory.mktemp("images")
    a = np.zeros((200, 300, 4), dtype=np.uint8)
    a[..., 3] = 255
    a[40:160, 130:170, :3] = 255
    Image.fromarray(a, "RGBA").save(d / "bar.png")
    Image.fromarray(a[..., 0], "L").save(d / "bar.jpg")
    (d / "notes.png").write_text("not an image")
    torch.save(
        {"state_dict": {"w": torch.zeros(2)}}, d / "plain.pt"
    )  # a weights file, not a train checkpoint
    return d


def _run(capsys, *argv):
    code = main(["visualize", *map(str, argv)])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_checkpoint_with_images_of_any_mode(lenet_checkpoint, photo, tmp_path, capsys):
    code, out, err = _run(
        capsys, "gradcam", lenet_checkpoint, photo / "bar.png", photo / "bar.jpg", "--out", tmp_path
    )
    assert code == 0, err
    assert "layer: s4" in out and out.count("wrote ") == 2
    assert (tmp_path / "gradcam-s4-bar.png").stat().st_size > 10_000


def test_default_output_goes_into_the_run_directory(lenet_checkpoint, capsys):
    code, out, err = _run(capsys, "filters", lenet_checkpoint)
    assert code == 0, err
    assert (lenet_checkpoint.parent.parent / "visualize" / "filters-c1.png").is_file()


def test_image_note_states_the_resize(lenet, photo):
    from cnnlineage.visualize import load_images

    png, jpg = load_images(lenet, [photo / "bar.png", photo / "bar.jpg"])
    assert png.note == "bar.png 300x200 RGBA -> 1x28x28 (resized, to grey)"
    assert jpg.note == "bar.jpg 300x200 L -> 1x28x28 (resized, to grey)"
    assert png.x.shape == (1, 28, 28) and png.display.max() > 0.9  # the bar survives the resize


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["gradcam", "CKPT", "--layer", "c33"],
            "unknown layer 'c33'; nearest of the 17 layers: c3, act3, c1, c5,",
        ),
        (
            ["deconvnet", "CKPT", "--layer", "c3", "--channel", "16"],
            "channel 16 out of range: c3 has 16 channels (0..15)",
        ),
        (
            ["saliency", "CKPT", "IMAGES/notes.png"],
            "notes.png is not a readable image (UnidentifiedImageError)",
        ),
        (["saliency", "CKPT", "IMAGES/missing.png"], "missing.png does not exist"),
        (["attention", "CKPT"], "attention needs a model with self-attention layers (a ViT, e.g."),
        (
            ["features", "CKPT", "--layer", "f6"],
            "features needs a layer with a spatial output (C, H, W); f6 of lenet5 outputs 84",
        ),
        (["gradcam", "CKPT", "--target", "12"], "target class 12 out of range: lenet5 has 10 classes (0..9)"),
        (["filters", "CKPT", "IMAGES/bar.png"], "filters takes no image files"),
        (["saliency", "resnet5"], "unknown model 'resnet5'"),
        (["saliency", "runs/x/best.pt"], "no checkpoint file runs/x/best.pt"),
        (
            ["saliency", "IMAGES/plain.pt"],
            "plain.pt is not a checkpoint written by `cnnlineage train` (it has no model, model_name",
        ),
        (["top-images", "lenet5"], "lenet5 is a bare model with no data set: pass --data NAME"),
    ],
)
def test_bad_input_is_one_line_and_exit_status_2(lenet_checkpoint, photo, capsys, argv, message):
    argv = [a.replace("CKPT", str(lenet_checkpoint)).replace("IMAGES", str(photo)) for a in argv]
    code, _out, err = _run(capsys, *argv)
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("cnnlineage visualize: error: "), err
    assert message in err, err


def test_bare_model_name_with_a_data_set(tmp_path, capsys):
    code, out, err = _run(capsys, "erf", "resnet20", "--data", "shapes10", "--index", "4", "--out", tmp_path)
    assert code == 0, err
    assert "mass inside rf: 1" in out and (tmp_path / "erf-layer3.png").is_file()
