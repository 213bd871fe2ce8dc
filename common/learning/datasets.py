"""Datasets: the vendored digits, a synthetic generator for large dimension, and MNIST from
the user's files. Each returns float64 features and int64 labels 0..n_classes-1, split into a
train and a test set deterministically from the spec alone (every node loads the same rows).

Besides ``load_dataset`` (everything) and ``dataset_shape`` (no data), two loaders materialise
only part of the data, for nodes that never need the whole of it:

- ``load_partitions(data_spec, K, partitions) -> (X_parts, y_parts)``: the training rows of
  the given partitions of ``partition_rows(n_train, K)``, one array per partition, bit-for-bit
  equal to ``load_dataset(data_spec).X_train[rows[k]]``. Memory is O(those rows): synthetic
  rows are generated block by block (``common.learning.synthetic``), MNIST IDX records are
  read through ``np.memmap`` or stream-decompressed (``idx.read_idx_rows``), ``.npz``
  members streamed (``npz.read_npz_rows``). Digits (1797 rows) is loaded whole, then sliced.
- ``load_test_set(data_spec) -> (X_test, y_test, n_classes)``: the held-out rows only (what
  the master evaluates on), without the training set (digits: whole, then sliced).
"""

from __future__ import annotations

import gzip
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from common.learning.cifar import cifar_count, read_cifar_rows
from common.learning.errors import LearningSpecError
from common.learning.idx import (
    MNIST_FILES,
    find_idx,
    load_mnist_arrays,
    read_idx_rows,
    read_idx_shape,
)
from common.learning.npz import npz_shape, read_npz_rows
from common.learning.partition import partition_rows
from common.learning.spec import validate_data_spec
from common.learning.synthetic import synthetic_rows

DIGITS_PATH = Path(__file__).parent / "data" / "digits.csv.gz"
DIGITS_SHAPE = (1797, 64, 10)  # rows, features, classes of the vendored file
# the vendored MNIST sample (IDX, gzipped): 4,000 training and 1,000 test images
MNIST_SAMPLE_DIR = Path(__file__).parent / "data" / "mnist"
MNIST_CLASSES = 10
# Largest synthetic matrix we agree to build (float64 elements, ~1.6 GB).
MAX_SYNTHETIC_ELEMENTS = 200_000_000


@dataclass(frozen=True)
class Dataset:
    """Features (n, d) float64 and labels (n,) int64, train and test."""

    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    n_classes: int

    @property
    def n_train(self) -> int:
        return int(self.X_train.shape[0])

    @property
    def n_features(self) -> int:
        return int(self.X_train.shape[1])


def _n_test(n: int, test_fraction: float) -> int:
    return int(round(n * test_fraction))


def _split(X: np.ndarray, y: np.ndarray, test_fraction: float, seed: int) -> tuple[np.ndarray, ...]:
    perm = np.random.default_rng(seed).permutation(len(y))
    n_test = _n_test(len(y), test_fraction)
    test, train = perm[:n_test], perm[n_test:]
    return X[train], y[train], X[test], y[test]


def _standardise(X_train: np.ndarray, X_test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    # Statistics from the training rows only; constant columns (digits has some) keep scale 1.
    mean = X_train.mean(axis=0)
    std = X_train.std(axis=0)
    std[std == 0.0] = 1.0
    return (X_train - mean) / std, (X_test - mean) / std


def _load_digits(spec: dict[str, Any]) -> Dataset:
    try:
        with gzip.open(DIGITS_PATH, "rt") as fh:
            table = np.loadtxt(fh, delimiter=",", dtype=np.float64)
    except (OSError, ValueError) as exc:
        raise LearningSpecError(
            "", f"{DIGITS_PATH}: cannot read the vendored digits ({exc})"
        ) from None
    if table.shape != (DIGITS_SHAPE[0], DIGITS_SHAPE[1] + 1):
        raise LearningSpecError("", f"{DIGITS_PATH}: expected shape (1797, 65), got {table.shape}")
    X, y = table[:, :-1], table[:, -1].astype(np.int64)
    X_train, y_train, X_test, y_test = _split(X, y, spec["test_fraction"], spec["seed"])
    X_train, X_test = _standardise(X_train, X_test)
    return Dataset(X_train, y_train, X_test, y_test, DIGITS_SHAPE[2])


def _synthetic_range(spec: dict[str, Any], start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
    return synthetic_rows(
        spec["seed"], spec["n_classes"], spec["n_features"], spec["noise"], start, stop
    )


def _synthetic_n_train(spec: dict[str, Any]) -> int:
    return int(spec["n_samples"] - _n_test(spec["n_samples"], spec["test_fraction"]))


def _load_synthetic(spec: dict[str, Any]) -> Dataset:
    """Gaussian classes (see ``common.learning.synthetic``): train = the first n_train rows."""
    n, n_train = spec["n_samples"], _synthetic_n_train(spec)
    X_train, y_train = _synthetic_range(spec, 0, n_train)
    X_test, y_test = _synthetic_range(spec, n_train, n)
    return Dataset(X_train, y_train, X_test, y_test, spec["n_classes"])


def _mnist_rows(images: np.ndarray, labels: np.ndarray, what: str) -> tuple[np.ndarray, np.ndarray]:
    if images.ndim < 2 or labels.ndim != 1 or len(images) != len(labels):
        raise LearningSpecError(
            "path", f"MNIST {what}: images {images.shape} and labels {labels.shape} do not match"
        )
    y = labels.astype(np.int64)
    if len(y) and (y.min() < 0 or y.max() >= MNIST_CLASSES):
        raise LearningSpecError("path", f"MNIST {what}: labels must be in 0..9")
    return images.reshape(len(images), -1).astype(np.float64) / 255.0, y


def _mnist_keep(spec: dict[str, Any], n_file: int) -> np.ndarray | None:
    """File records of the training set, sorted (None: all of them)."""
    if spec["max_train"] is None or spec["max_train"] >= n_file:
        return None
    return np.sort(np.random.default_rng(spec["seed"]).permutation(n_file)[: spec["max_train"]])


def _mnist_path(spec: dict[str, Any]) -> Path:
    """The user's MNIST path, or the vendored sample when the spec names none."""
    return MNIST_SAMPLE_DIR if spec.get("path") is None else Path(spec["path"])


def _load_mnist(spec: dict[str, Any]) -> Dataset:
    if spec["kind"] == "cifar10":
        n_train, n_test = (cifar_count(spec["path"], s) for s in ("train", "test"))
        X_train, y_tr = _mnist_file_rows(spec, "train", np.arange(n_train))
        X_test, y_te = _mnist_file_rows(spec, "test", np.arange(n_test))
        keep = _mnist_keep(spec, len(y_tr))
        if keep is not None:
            X_train, y_tr = X_train[keep], y_tr[keep]
        return Dataset(X_train, y_tr, X_test, y_te, MNIST_CLASSES)
    x_train, y_train, x_test, y_test = load_mnist_arrays(_mnist_path(spec))
    X_train, y_tr = _mnist_rows(x_train, y_train, "train")
    X_test, y_te = _mnist_rows(x_test, y_test, "test")
    keep = _mnist_keep(spec, len(y_tr))
    if keep is not None:
        X_train, y_tr = X_train[keep], y_tr[keep]
    return Dataset(X_train, y_tr, X_test, y_te, MNIST_CLASSES)


def load_dataset(data_spec: dict[str, Any]) -> Dataset:
    """Load the dataset of ``data_spec`` (see ``common.learning.spec.validate_data_spec``).

    Raises ``LearningSpecError`` for a bad spec or a missing/corrupt file.
    """
    spec = validate_data_spec(data_spec)
    if spec["kind"] == "digits":
        return _load_digits(spec)
    if spec["kind"] == "synthetic":
        _check_synthetic_size(spec)
        return _load_synthetic(spec)
    return _load_mnist(spec)


def _check_synthetic_size(spec: dict[str, Any]) -> None:
    if spec["n_samples"] * spec["n_features"] > MAX_SYNTHETIC_ELEMENTS:
        raise LearningSpecError(
            "n_features",
            f"n_samples * n_features = {spec['n_samples'] * spec['n_features']} exceeds "
            f"{MAX_SYNTHETIC_ELEMENTS} (the matrix would not fit in memory)",
        )
    if spec["n_samples"] - _n_test(spec["n_samples"], spec["test_fraction"]) < 1:
        raise LearningSpecError("n_samples", "leaves no training rows after the test split")


def dataset_shape(data_spec: dict[str, Any]) -> tuple[int, int, int]:
    """``(n_train, n_features, n_classes)`` without loading the data (MNIST: headers only,
    IDX or ``.npz``)."""
    spec = validate_data_spec(data_spec)
    if spec["kind"] == "digits":
        n, d, c = DIGITS_SHAPE
        return n - _n_test(n, spec["test_fraction"]), d, c
    if spec["kind"] == "synthetic":
        _check_synthetic_size(spec)
        n = spec["n_samples"]
        return n - _n_test(n, spec["test_fraction"]), spec["n_features"], spec["n_classes"]
    if spec["kind"] == "cifar10":
        n = cifar_count(spec["path"], "train")
        n_train = n if spec["max_train"] is None else min(n, spec["max_train"])
        return n_train, 3 * 32 * 32, MNIST_CLASSES
    path = _mnist_path(spec)
    if path.is_dir():
        shape = read_idx_shape(find_idx(path, MNIST_FILES["train"][0]))
    else:
        _check_npz(path)
        shape = npz_shape(path, "x_train")
    if len(shape) < 2:
        raise LearningSpecError(
            "path", f"MNIST train images: expected >= 2 dimensions, got {shape}"
        )
    n_train = shape[0] if spec["max_train"] is None else min(shape[0], spec["max_train"])
    return n_train, int(np.prod(shape[1:])), MNIST_CLASSES


# ---- partial loading ---------------------------------------------------------------------


def _check_partitions(partitions: Sequence[int], K: int) -> list[int]:
    out = []
    for k in partitions:
        if isinstance(k, bool) or not isinstance(k, int | np.integer):
            raise TypeError(f"partitions: must be integers, got {type(k).__name__} {k!r}")
        if not 0 <= k < K:
            raise ValueError(f"partitions: {int(k)} outside 0..{K - 1}")
        out.append(int(k))
    return out


def _mnist_file_rows(
    spec: dict[str, Any], split: str, records: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Records of the train/test images and labels, from IDX files, a ``.npz`` or CIFAR-10."""
    if spec["kind"] == "cifar10":
        pixels, labels = read_cifar_rows(spec["path"], split, records)
        return _mnist_rows(pixels, labels, split)
    path = _mnist_path(spec)
    if path.is_dir():
        image_stem, label_stem = MNIST_FILES[split]
        images = read_idx_rows(find_idx(path, image_stem), records)
        labels = read_idx_rows(find_idx(path, label_stem), records)
    else:
        _check_npz(path)
        images = read_npz_rows(path, f"x_{split}", records)
        labels = read_npz_rows(path, f"y_{split}", records)
    return _mnist_rows(images, labels, split)


def _check_npz(path: Path) -> None:
    # the same errors as load_mnist_arrays for anything that is not a directory or .npz
    if path.suffix != ".npz":
        load_mnist_arrays(path)


def _mnist_count(spec: dict[str, Any], split: str) -> int:
    """Number of records of the train/test split, from headers only."""
    if spec["kind"] == "cifar10":
        return cifar_count(spec["path"], split)
    path = _mnist_path(spec)
    if path.is_dir():
        image_stem, label_stem = MNIST_FILES[split]
        n_images = read_idx_shape(find_idx(path, image_stem))[0]
        n_labels = read_idx_shape(find_idx(path, label_stem))[0]
    else:
        _check_npz(path)
        n_images, n_labels = (npz_shape(path, f"{x}_{split}")[0] for x in ("x", "y"))
    if n_images != n_labels:
        raise LearningSpecError(
            "path", f"MNIST {split}: {n_images} images but {n_labels} labels in {path}"
        )
    return n_images


def load_partitions(
    data_spec: dict[str, Any], K: int, partitions: Sequence[int]
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The training rows of some partitions only, without building the whole dataset.

    Parameters
    ----------
    data_spec : dict
        As for ``load_dataset``.
    K : int
        Number of partitions of ``partition_rows(n_train, K)``.
    partitions : sequence of int
        Partition indices in ``0..K-1`` (any order; the result follows it).

    Returns
    -------
    X_parts : list of (rows_k, n_features) float64
    y_parts : list of (rows_k,) int64
        ``X_parts[i]`` equals ``load_dataset(data_spec).X_train[rows[partitions[i]]]``
        bit for bit. Bytes materialised: O(rows of these partitions) for synthetic data and
        MNIST IDX files (plus one generation block / decompression chunk).
    """
    spec = validate_data_spec(data_spec)
    n_train = dataset_shape(spec)[0]
    parts = _check_partitions(partitions, K)
    rows = partition_rows(n_train, K)
    kind = spec["kind"]
    if kind == "synthetic":
        ranges = [(int(rows[k][0]), int(rows[k][-1]) + 1) for k in parts]
        pairs = [_synthetic_range(spec, a, b) for a, b in ranges]
    elif kind in ("mnist", "cifar10"):
        keep = _mnist_keep(spec, _mnist_count(spec, "train"))
        records = [rows[k] if keep is None else keep[rows[k]] for k in parts]
        pairs = [_mnist_file_rows(spec, "train", r) for r in records]
    else:  # digits (1797 rows): whole, then sliced
        data = load_dataset(spec)
        pairs = [(data.X_train[rows[k]], data.y_train[rows[k]]) for k in parts]
        del data
    return [x for x, _ in pairs], [y for _, y in pairs]


def load_test_set(data_spec: dict[str, Any]) -> tuple[np.ndarray, np.ndarray, int]:
    """``(X_test, y_test, n_classes)`` without materialising the training set.

    Equal bit for bit to ``load_dataset(data_spec)``'s ``X_test``, ``y_test``, ``n_classes``
    (digits: loaded whole, then the training set dropped).
    """
    spec = validate_data_spec(data_spec)
    kind = spec["kind"]
    if kind == "synthetic":
        _check_synthetic_size(spec)
        X, y = _synthetic_range(spec, _synthetic_n_train(spec), spec["n_samples"])
        return X, y, spec["n_classes"]
    if kind in ("mnist", "cifar10"):
        X, y = _mnist_file_rows(spec, "test", np.arange(_mnist_count(spec, "test")))
        return X, y, MNIST_CLASSES
    data = load_dataset(spec)
    return data.X_test, data.y_test, data.n_classes
