"""Hostile or broken data files: bombs are refused before they expand, broken files and layouts get one clear line."""

from __future__ import annotations

import gzip
import os
import pickle
import struct
import time

import numpy as np
import pytest
import torch

from cnnlineage.data import build_datasets, make_loader, read_idx
from cnnlineage.data.datasets import (
    BadImageError,
    DatasetEmptyError,
    DatasetNotFoundError,
    ImageTooLargeError,
)
from cnnlineage.data.loader import EpochSampler, TransformedDataset
from cnnlineage.data.transforms import Pipeline


def _idx_header(shape) -> bytes:
    return struct.pack(">BBBB", 0, 0, 0x08, len(shape)) + b"".join(struct.pack(">I", n) for n in shape)


def test_an_idx_gzip_bomb_is_refused_from_its_header(tmp_path):
    bomb = tmp_path / "train-images-idx3-ubyte.gz"
    with gzip.open(bomb, "wb", compresslevel=1) as f:  # claims 6 million digits; holds 20 MB of zeros
        f.write(_idx_header((6_000_000, 28, 28)))
        chunk = bytes(1 << 20)
        for _ in range(20):
            f.write(chunk)
    assert bomb.stat().st_size < 200_000
    t = time.perf_counter()
    with pytest.raises(ValueError, match=r"declares 6,000,000 items, more than the 70,000 expected"):
        read_idx(bomb, item_shape=(28, 28))
    assert time.perf_counter() - t < 5  # refused from the header, nothing decompressed
    odd = tmp_path / "odd-idx3-ubyte"
    odd.write_bytes(_idx_header((2, 1000, 1000)) + bytes(2_000_000))
    with pytest.raises(ValueError, match=r"declares items of shape \(1000, 1000\), expected \(28, 28\)"):
        read_idx(odd, item_shape=(28, 28))


def test_a_truncated_gzip_is_named(tmp_path):
    p = tmp_path / "t10k-labels-idx1-ubyte.gz"
    p.write_bytes(gzip.compress(_idx_header((5000,)) + bytes(range(256)) * 20)[:-40])
    with pytest.raises(ValueError, match=rf"{p} is a damaged gzip file"):
        read_idx(p, item_shape=())


def _pickle(path, obj) -> None:
    path.write_bytes(pickle.dumps(obj, protocol=2))


def test_broken_cifar_batches_are_named(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    data = np.zeros((2, 3072), dtype=np.uint8)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        _pickle(folder / name, {b"data": data, b"labels": [0, 1]})
    _pickle(folder / "data_batch_3", {b"data": data})  # no labels
    with pytest.raises(
        ValueError, match=r"data_batch_3 is not a cifar10 batch: it has no 'labels' \(keys: data\)"
    ):
        build_datasets("cifar10", root=tmp_path)
    _pickle(folder / "data_batch_3", [data, [0, 1]])  # not a dict
    with pytest.raises(
        ValueError, match=r"data_batch_3 is not a CIFAR batch: it holds a list, expected a dict"
    ):
        build_datasets("cifar10", root=tmp_path)


def test_a_symlink_loop_as_data_root_is_named(tmp_path):
    os.symlink(tmp_path / "b", tmp_path / "a")
    os.symlink(tmp_path / "a", tmp_path / "b")
    for name in ("mnist", "cifar10", "imagefolder"):
        with pytest.raises(DatasetNotFoundError, match="symbolic link loop"):
            build_datasets(name, root=tmp_path / "a")


def test_download_failures_are_one_line(tmp_path, monkeypatch):
    import urllib.error

    import torchvision.datasets as tvd

    def offline(*args, **kwargs):
        try:
            raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")
        except urllib.error.URLError as e:  # torchvision wraps it, as it does for CIFAR's mirrors
            raise RuntimeError("Error downloading cifar-10-python.tar.gz") from e

    monkeypatch.setattr(tvd, "CIFAR10", offline)
    with pytest.raises(DatasetNotFoundError) as e:
        build_datasets("cifar10", root=tmp_path, download=True)
    assert str(e.value) == (
        "cifar10: the download failed (URLError: [Errno -3] Temporary failure in name resolution); check the "
        f"network connection, or put the files into {tmp_path / 'cifar-10-batches-py'} yourself"
    )


def _png(path, size=(6, 5), value=0) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((*size, 3), value, dtype=np.uint8)).save(path)


def test_image_folder_layouts_that_cannot_train_are_refused(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(
        DatasetEmptyError, match=r"no images in class folders under .*empty: found nothing; expected"
    ):
        build_datasets("imagefolder", root=empty)
    (empty / "cat").mkdir()
    (empty / "dog").mkdir()
    with pytest.raises(DatasetEmptyError, match=r"found 2 folder\(s\) without images \(cat, dog\)"):
        build_datasets("imagefolder", root=empty)
    loose = tmp_path / "loose"
    for i in range(3):
        _png(loose / f"{i}.png")
    with pytest.raises(
        DatasetEmptyError, match=r"found 3 image\(s\) directly in .*loose but no class folders"
    ):
        build_datasets("imagefolder", root=loose)
    one = tmp_path / "one"
    for i in range(5):
        _png(one / "cat" / f"{i}.png")
    (one / "dog").mkdir()  # an empty folder is no class
    with pytest.warns(UserWarning, match=r"ignoring 1 folder\(s\) without images \(dog\)"):
        with pytest.raises(
            DatasetEmptyError, match=r"found one class \(cat\); a classifier needs at least two"
        ):
            build_datasets("imagefolder", root=one)
    for i in range(5):
        _png(one / "zebra" / f"{i}.png")
    with pytest.warns(UserWarning, match="ignoring"):
        train, test, info = build_datasets("imagefolder", root=one)
    assert info.classes == ("cat", "zebra") and (len(train), len(test)) == (8, 2)
    split = tmp_path / "split"
    for c in ("a", "b"):
        _png(split / "train" / c / "0.png")
        (split / "val" / c).mkdir(parents=True)
    with pytest.raises(DatasetEmptyError, match=r"no images in class folders under .*val"):
        build_datasets("imagefolder", root=split)


def test_images_above_the_pixel_limit_are_refused_before_decoding(tmp_path):
    for c in ("a", "b"):
        for i in range(5):
            _png(tmp_path / c / f"{i}.png")
    path = tmp_path / "a" / "2.png"
    _png(path, size=(300, 400))  # 120,000 pixels
    splits = build_datasets("imagefolder", root=tmp_path, max_image_pixels=100_000, skip_bad_images=True)[:2]
    ds = next(d for d in splits if path in d.files)
    with pytest.raises(
        ImageTooLargeError, match=rf"image {path} is 400x300 = 120,000 pixels, above the limit"
    ):
        ds[ds.files.index(path)]  # not skipped: a bomb is refused even with skip_bad_images
    splits = build_datasets("imagefolder", root=tmp_path, max_image_pixels=120_000)[:2]
    ds = next(d for d in splits if path in d.files)
    assert ds[ds.files.index(path)][0].shape == (3, 300, 400)


def test_a_bad_image_in_a_worker_gives_the_single_process_error(tmp_path):
    for c in ("a", "b"):
        for i in range(4):
            _png(tmp_path / c / f"{i}.png")
    bad = tmp_path / "b" / "1.png"
    bad.write_bytes(b"\x89PNG not really")
    train, _, _ = build_datasets("imagefolder", root=tmp_path)
    ds = TransformedDataset(train, Pipeline(static=lambda x: x.float(), dynamic=None))
    sampler = EpochSampler(len(ds), seed=0, shuffle=False)
    loader = make_loader(ds, sampler, batch_size=2, num_workers=2)
    with pytest.raises(BadImageError) as e:
        for _ in loader:
            pass
    assert str(e.value).startswith(f"cannot read image {bad}: UnidentifiedImageError") and "\n" not in str(
        e.value
    )
    assert torch.get_num_threads() >= 1
