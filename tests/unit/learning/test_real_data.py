"""The vendored MNIST sample, user-supplied IDX (MNIST / Fashion-MNIST layout) and CIFAR-10
binary files written by the test, and exact minibatch row selection."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest

from common.learning import (
    LearningSpecError,
    dataset_shape,
    load_dataset,
    load_partitions,
    load_test_set,
    partition_rows,
)
from common.learning.minibatch import batch_rows, rows_per_iteration


def test_vendored_mnist_sample_loads_with_no_path() -> None:
    data = load_dataset({"kind": "mnist"})
    assert data.X_train.shape == (4000, 784) and data.X_test.shape == (1000, 784)
    assert dataset_shape({"kind": "mnist"}) == (4000, 784, 10)
    assert data.X_train.dtype == np.float64 and data.X_train.min() >= 0.0
    assert data.X_train.max() == 1.0
    # the held-out split is stratified: 100 test images of each digit
    np.testing.assert_array_equal(np.bincount(data.y_test), np.full(10, 100))
    np.testing.assert_array_equal(np.bincount(data.y_train), np.full(10, 400))
    # real handwriting, not noise: about 19% of MNIST pixels are ink
    assert 0.1 < (data.X_train > 0.5).mean() < 0.3
    X_test, y_test, c = load_test_set({"kind": "mnist"})
    np.testing.assert_array_equal(X_test, data.X_test)
    parts, labels = load_partitions({"kind": "mnist"}, 7, [5, 2])
    rows = partition_rows(4000, 7)
    np.testing.assert_array_equal(parts[0], data.X_train[rows[5]])
    np.testing.assert_array_equal(labels[1], data.y_train[rows[2]])


def _idx(path: Path, arr: np.ndarray, gz: bool) -> None:
    raw = bytes([0, 0, 8, arr.ndim]) + b"".join(struct.pack(">I", n) for n in arr.shape)
    raw += arr.astype(np.uint8).tobytes()
    if gz:
        path = path.with_name(path.name + ".gz")
        path.write_bytes(gzip.compress(raw))
    else:
        path.write_bytes(raw)


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gzip"])
def test_user_idx_files_fashion_mnist_layout(tmp_path: Path, gz: bool) -> None:
    rng = np.random.default_rng(0)
    xtr, ytr = rng.integers(0, 256, (30, 28, 28)), rng.integers(0, 10, 30)
    xte, yte = rng.integers(0, 256, (7, 28, 28)), rng.integers(0, 10, 7)
    _idx(tmp_path / "train-images-idx3-ubyte", xtr, gz)
    _idx(tmp_path / "train-labels-idx1-ubyte", ytr, gz)
    _idx(tmp_path / "t10k-images-idx3-ubyte", xte, gz)
    _idx(tmp_path / "t10k-labels-idx1-ubyte", yte, gz)
    data = load_dataset({"kind": "mnist", "path": str(tmp_path)})
    np.testing.assert_array_equal(data.X_train, xtr.reshape(30, -1) / 255.0)
    np.testing.assert_array_equal(data.y_test, yte)
    assert dataset_shape({"kind": "mnist", "path": str(tmp_path), "max_train": 10})[0] == 10


def _cifar(directory: Path, n_per_file: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    pixels, labels = [], []
    for name in [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]:
        x = rng.integers(0, 256, (n_per_file, 3072), dtype=np.uint8)
        y = rng.integers(0, 10, n_per_file, dtype=np.uint8)
        (directory / name).write_bytes(np.hstack([y[:, None], x]).tobytes())
        pixels.append(x)
        labels.append(y)
    return np.vstack(pixels), np.concatenate(labels)


def test_user_cifar10_binary_files(tmp_path: Path) -> None:
    pixels, labels = _cifar(tmp_path, 4, 1)
    spec = {"kind": "cifar10", "path": str(tmp_path)}
    assert dataset_shape(spec) == (20, 3072, 10)
    data = load_dataset(spec)
    np.testing.assert_array_equal(data.X_train, pixels[:20] / 255.0)
    np.testing.assert_array_equal(data.y_train, labels[:20])
    np.testing.assert_array_equal(data.X_test, pixels[20:] / 255.0)
    parts, ys = load_partitions(spec, 3, [2, 0])
    rows = partition_rows(20, 3)
    np.testing.assert_array_equal(parts[0], data.X_train[rows[2]])  # spans files 4 and 5
    np.testing.assert_array_equal(ys[1], data.y_train[rows[0]])
    # a truncated file is refused with its name, before any record is read
    (tmp_path / "data_batch_3.bin").write_bytes(b"\0" * 3000)
    with pytest.raises(LearningSpecError, match="data_batch_3.bin: 3000 bytes"):
        dataset_shape(spec)
    (tmp_path / "data_batch_3.bin").unlink()
    with pytest.raises(LearningSpecError, match="missing CIFAR-10 files"):
        load_dataset(spec)


def test_minibatch_rows_depend_only_on_seed_iteration_partition() -> None:
    a = batch_rows(100, 8, 3, 5, 2)
    np.testing.assert_array_equal(a, batch_rows(100, 8, 3, 5, 2))
    assert len(a) == 8 and len(set(a.tolist())) == 8 and np.all(np.diff(a) > 0)
    assert not np.array_equal(a, batch_rows(100, 8, 3, 6, 2))  # next iteration
    assert not np.array_equal(a, batch_rows(100, 8, 3, 5, 1))  # other partition
    assert not np.array_equal(a, batch_rows(100, 8, 4, 5, 2))  # other seed
    np.testing.assert_array_equal(batch_rows(5, 8, 0, 0, 0), np.arange(5))
    assert rows_per_iteration(10, 3, None) == 10
    assert rows_per_iteration(10, 3, 3) == 9  # partitions 4, 3, 3
    assert rows_per_iteration(10, 3, 4) == 10
