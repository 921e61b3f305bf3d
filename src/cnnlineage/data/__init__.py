"""Datasets and transforms: bundled real digits, on-disk standard sets, your own images, augmentation."""

from .datasets import (
    DATASET_INFO,
    BadImageError,
    DatasetInfo,
    DatasetNotFoundError,
    ImageFolderDataset,
    TensorImageDataset,
    build_datasets,
    read_cifar_batch,
    read_idx,
    stratified_split,
)
from .loader import EpochSampler, TransformedDataset, make_loader
from .transforms import Pipeline, build_batch_mix, build_transforms, describe, mix_seed, seeded

__all__ = [
    "DATASET_INFO",
    "BadImageError",
    "DatasetInfo",
    "DatasetNotFoundError",
    "EpochSampler",
    "ImageFolderDataset",
    "Pipeline",
    "TensorImageDataset",
    "TransformedDataset",
    "build_batch_mix",
    "build_datasets",
    "build_transforms",
    "describe",
    "make_loader",
    "mix_seed",
    "read_cifar_batch",
    "read_idx",
    "seeded",
    "stratified_split",
]
