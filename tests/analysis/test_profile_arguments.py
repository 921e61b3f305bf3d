"""profile() refuses arguments it cannot honour instead of quietly doing something else."""

import pytest
import torch

from cnnlineage.analysis import InputSizeError, profile


@pytest.mark.parametrize(
    "size", [(1.5, 32, 32), (1, 32.0, 32), (True, 32, 32), "1x32x32", (1, 32), (0, 32, 32)]
)
def test_input_size_must_be_three_positive_integers(size):
    with pytest.raises(ValueError, match="input_size must be \\(C, H, W\\) of three positive integers"):
        profile("lenet5", size)


def test_numpy_and_torch_integers_are_fine():
    import numpy as np

    assert profile("lenet5", (np.int64(1), 32, 32)).total_params == 60_850
    assert profile("lenet5", torch.Size([1, 32, 32])).total_params == 60_850


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_without_cuda_is_refused():
    with pytest.raises(ValueError, match="CUDA is not available"):
        profile("lenet5", device="cuda")
    with pytest.raises(ValueError, match="CUDA is not available"):
        profile(torch.nn.Conv2d(1, 1, 3), (1, 8, 8), device="cuda:0")


def test_wrong_channels_come_first():
    with pytest.raises(InputSizeError, match="^resnet18 takes 3-channel input, got 1 channel"):
        profile("resnet18", (1, 224, 224))


def test_dtype_must_be_floating():
    with pytest.raises(ValueError, match="dtype must be a floating-point"):
        profile("lenet5", dtype=torch.int64)
