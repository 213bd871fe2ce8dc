"""Datasets: the vendored digits, a synthetic generator for large dimension, and MNIST from
the user's files. Each returns float64 features and int64 labels 0..n_classes-1, split into a
train and a test set deterministically from the spec alone (every node loads the same rows).
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from common.learning.errors import LearningSpecError
from common.learning.idx import MNIST_FILES, find_idx, load_mnist_arrays, read_idx_shape
from common.learning.spec import validate_data_spec

DIGITS_PATH = Path(__file__).parent / "data" / "digits.csv.gz"
DIGITS_SHAPE = (1797, 64, 10)  # rows, features, classes of the vendored file
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


def _load_synthetic(spec: dict[str, Any]) -> Dataset:
    """Gaussian classes: centre_c ~ N(0, I_d), x = centre_y + noise * N(0, I_d)."""
    n, d, c = spec["n_samples"], spec["n_features"], spec["n_classes"]
    rng = np.random.default_rng(spec["seed"])
    centres = rng.standard_normal((c, d))
    y = rng.integers(0, c, size=n, dtype=np.int64)
    X = centres[y] + spec["noise"] * rng.standard_normal((n, d))
    X_train, y_train, X_test, y_test = _split(X, y, spec["test_fraction"], spec["seed"])
    return Dataset(X_train, y_train, X_test, y_test, c)


def _mnist_rows(images: np.ndarray, labels: np.ndarray, what: str) -> tuple[np.ndarray, np.ndarray]:
    if images.ndim < 2 or labels.ndim != 1 or len(images) != len(labels):
        raise LearningSpecError(
            "path", f"MNIST {what}: images {images.shape} and labels {labels.shape} do not match"
        )
    y = labels.astype(np.int64)
    if len(y) and (y.min() < 0 or y.max() >= MNIST_CLASSES):
        raise LearningSpecError("path", f"MNIST {what}: labels must be in 0..9")
    return images.reshape(len(images), -1).astype(np.float64) / 255.0, y


def _load_mnist(spec: dict[str, Any]) -> Dataset:
    x_train, y_train, x_test, y_test = load_mnist_arrays(spec["path"])
    X_train, y_tr = _mnist_rows(x_train, y_train, "train")
    X_test, y_te = _mnist_rows(x_test, y_test, "test")
    if spec["max_train"] is not None and spec["max_train"] < len(y_tr):
        keep = np.sort(
            np.random.default_rng(spec["seed"]).permutation(len(y_tr))[: spec["max_train"]]
        )
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
    """``(n_train, n_features, n_classes)`` without loading the data (MNIST: headers only)."""
    spec = validate_data_spec(data_spec)
    if spec["kind"] == "digits":
        n, d, c = DIGITS_SHAPE
        return n - _n_test(n, spec["test_fraction"]), d, c
    if spec["kind"] == "synthetic":
        _check_synthetic_size(spec)
        n = spec["n_samples"]
        return n - _n_test(n, spec["test_fraction"]), spec["n_features"], spec["n_classes"]
    path = Path(spec["path"])
    if path.is_dir():
        shape = read_idx_shape(find_idx(path, MNIST_FILES["train"][0]))
    else:
        shape = load_mnist_arrays(path)[0].shape
    if len(shape) < 2:
        raise LearningSpecError(
            "path", f"MNIST train images: expected >= 2 dimensions, got {shape}"
        )
    n_train = shape[0] if spec["max_train"] is None else min(shape[0], spec["max_train"])
    return n_train, int(np.prod(shape[1:])), MNIST_CLASSES
