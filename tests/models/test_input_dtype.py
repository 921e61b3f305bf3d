"""Inputs of another dtype than the weights: one clear ValueError, no conversion behind the user's back."""

import pytest
import torch

import cnnlineage


@pytest.mark.parametrize("name", ["lenet5", "resnet20", "vit_tiny_patch4_32"])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float16, torch.bfloat16])
def test_float_dtype_mismatch_names_both(name, dtype):
    model = cnnlineage.create_model(name).eval()
    c, h, w = model.input_size
    with pytest.raises(ValueError, match=f"{name}'s weights are torch.float32 but the input is {dtype}"):
        model(torch.zeros(1, c, h, w, dtype=dtype))
    model.to(dtype)  # what the message offers works
    assert model(torch.zeros(1, c, h, w, dtype=dtype)).dtype == dtype


@pytest.mark.parametrize("dtype", [torch.uint8, torch.int64, torch.bool])
def test_integer_images_are_refused_with_the_conversion(dtype):
    model = cnnlineage.create_model("lenet5")
    with pytest.raises(
        ValueError,
        match=f"expects a floating-point batch .* got {dtype}; convert it, e.g. x.float\\(\\) / 255",
    ):
        model(torch.zeros(1, 1, 32, 32, dtype=dtype))


def test_autocast_and_other_errors_are_untouched():
    model = cnnlineage.create_model("lenet5").eval()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert model(torch.zeros(1, 1, 32, 32)).dtype == torch.bfloat16
    model.f6 = torch.nn.Linear(3, 84)  # a genuine shape bug inside the model stays a RuntimeError
    with pytest.raises(RuntimeError, match="shapes cannot be multiplied"):
        model(torch.zeros(1, 1, 32, 32))
