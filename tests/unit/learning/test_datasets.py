"""Datasets: digits, synthetic, MNIST from IDX files (plain and gzipped) and .npz written here."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest

from common.learning import (
    LearningSpecError,
    build_model,
    dataset_shape,
    load_dataset,
    partition_rows,
)
from common.learning.idx import read_idx


def test_digits_shapes_split_and_standardisation() -> None:
    ds = load_dataset({"kind": "digits", "test_fraction": 0.2, "seed": 0})
    assert ds.X_train.shape == (1438, 64) and ds.X_test.shape == (359, 64)
    assert ds.y_train.dtype == np.int64 and set(np.unique(ds.y_train)) == set(range(10))
    assert dataset_shape({"kind": "digits"}) == (1438, 64, 10)
    np.testing.assert_allclose(ds.X_train.mean(axis=0), 0.0, atol=1e-12)
    stds = ds.X_train.std(axis=0)
    assert np.all((np.abs(stds - 1.0) < 1e-9) | (stds == 0.0))  # constant pixels stay 0


def test_digits_split_is_deterministic_by_seed() -> None:
    a, b = load_dataset({"kind": "digits", "seed": 4}), load_dataset({"kind": "digits", "seed": 4})
    c = load_dataset({"kind": "digits", "seed": 5})
    np.testing.assert_array_equal(a.X_train, b.X_train)
    assert not np.array_equal(a.y_train, c.y_train)


def test_gradient_descent_on_digits_learns() -> None:
    ds = load_dataset({"kind": "digits"})
    model = build_model({"kind": "logreg", "l2": 1e-4}, ds.n_features, ds.n_classes)
    params = model.init_params(0)
    start = model.loss(params, ds.X_train, ds.y_train)
    for _ in range(60):
        # coded training's update: the sum of partition gradients over n_train
        parts = partition_rows(ds.n_train, 9)
        g = sum(model.gradient_sum(params, ds.X_train[r], ds.y_train[r]) for r in parts)
        params = params - 0.5 * g / ds.n_train
    assert model.loss(params, ds.X_train, ds.y_train) < 0.25 * start
    assert model.accuracy(params, ds.X_test, ds.y_test) > 0.9


def test_synthetic_is_deterministic_and_matches_its_shape() -> None:
    spec = {"kind": "synthetic", "n_samples": 300, "n_features": 2000, "n_classes": 5, "seed": 9}
    a, b = load_dataset(spec), load_dataset(spec)
    np.testing.assert_array_equal(a.X_train, b.X_train)
    assert dataset_shape(spec) == (a.n_train, 2000, 5) == (240, 2000, 5)
    other = load_dataset({**spec, "seed": 10})
    assert not np.array_equal(a.X_train, other.X_train)


def test_synthetic_refuses_a_matrix_too_big_for_memory() -> None:
    spec = {"kind": "synthetic", "n_samples": 1_000_000, "n_features": 1_000_000}
    with pytest.raises(LearningSpecError, match="n_features: n_samples \\* n_features"):
        dataset_shape(spec)


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"kind": "cifar"}, "kind"),
        ({"kind": "digits", "test_fraction": 1.5}, "test_fraction"),
        ({"kind": "digits", "n_samples": 5}, "n_samples"),
        ({"kind": "digits", "seed": -1}, "seed"),
        ({"kind": "synthetic", "n_classes": 1}, "n_classes"),
        ({"kind": "synthetic", "n_features": "many"}, "n_features"),
        ({"kind": "cifar10"}, "path"),
        ({"kind": "mnist", "path": ""}, "path"),
        ({"kind": "mnist", "minibatch": 0}, "minibatch"),
        ({"kind": "mnist", "path": "x", "test_fraction": 0.2}, "test_fraction"),
        ({"kind": "mnist", "path": "x", "max_train": 0}, "max_train"),
    ],
)
def test_bad_data_spec_names_the_field(spec: dict, field: str) -> None:
    with pytest.raises(LearningSpecError) as info:
        dataset_shape(spec)
    assert info.value.field == field


# ---- IDX / MNIST -------------------------------------------------------------------------


def write_idx(path: Path, array: np.ndarray, code: int = 0x08, gz: bool = False) -> Path:
    header = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    raw = header + array.astype(array.dtype.newbyteorder(">")).tobytes()
    if gz:
        path = path.with_name(path.name + ".gz")
        path.write_bytes(gzip.compress(raw))
    else:
        path.write_bytes(raw)
    return path


def write_mnist_dir(folder: Path, n_train: int = 12, n_test: int = 5, gz: bool = False) -> Path:
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, (n, 4, 3), dtype=np.uint8)
        labels = (np.arange(n) % 10).astype(np.uint8)
        write_idx(folder / f"{split}-images-idx3-ubyte", images, gz=gz)
        write_idx(folder / f"{split}-labels-idx1-ubyte", labels, gz=gz)
    return folder


@pytest.mark.parametrize("gz", [False, True])
def test_mnist_from_idx_dir(tmp_path: Path, gz: bool) -> None:
    folder = write_mnist_dir(tmp_path / "mnist", gz=gz)
    spec = {"kind": "mnist", "path": str(folder)}
    ds = load_dataset(spec)
    assert ds.X_train.shape == (12, 12) and ds.X_test.shape == (5, 12)
    assert ds.X_train.min() >= 0.0 and ds.X_train.max() <= 1.0
    np.testing.assert_array_equal(ds.y_train, np.arange(12) % 10)
    assert dataset_shape(spec) == (12, 12, 10)
    small = {**spec, "max_train": 7}
    assert load_dataset(small).n_train == 7 and dataset_shape(small)[0] == 7


@pytest.mark.parametrize(
    ("code", "dtype"),
    [
        (0x08, np.uint8),
        (0x09, np.int8),
        (0x0B, np.int16),
        (0x0C, np.int32),
        (0x0D, np.float32),
        (0x0E, np.float64),
    ],
)
def test_idx_reader_types_round_trip(tmp_path: Path, code: int, dtype: type) -> None:
    array: np.ndarray = (np.arange(24).reshape(2, 3, 4) - 5).astype(dtype)
    if dtype is np.uint8:
        array = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    back = read_idx(write_idx(tmp_path / "a.idx", array, code))
    np.testing.assert_array_equal(back, array)
    assert back.dtype == np.dtype(dtype)


def test_mnist_from_npz(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    path = tmp_path / "mnist.npz"
    np.savez(
        path,
        x_train=rng.integers(0, 256, (10, 28, 28), dtype=np.uint8),
        y_train=np.arange(10) % 10,
        x_test=rng.integers(0, 256, (4, 28, 28), dtype=np.uint8),
        y_test=np.arange(4),
    )
    ds = load_dataset({"kind": "mnist", "path": str(path)})
    assert ds.X_train.shape == (10, 784) and ds.n_classes == 10
    assert dataset_shape({"kind": "mnist", "path": str(path)}) == (10, 784, 10)


def test_npz_missing_arrays(tmp_path: Path) -> None:
    path = tmp_path / "bad.npz"
    np.savez(path, x_train=np.zeros((2, 2)))
    with pytest.raises(LearningSpecError, match="lacks arrays"):
        load_dataset({"kind": "mnist", "path": str(path)})


def test_missing_mnist_file_names_it(tmp_path: Path) -> None:
    folder = write_mnist_dir(tmp_path / "m")
    (folder / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(LearningSpecError, match="missing MNIST file t10k-labels-idx1-ubyte"):
        load_dataset({"kind": "mnist", "path": str(folder)})
    with pytest.raises(LearningSpecError, match="no such file or directory"):
        load_dataset({"kind": "mnist", "path": str(tmp_path / "nowhere")})


@pytest.mark.parametrize(
    ("mangle", "match"),
    [
        (lambda raw: b"\x01" + raw[1:], "bad magic"),
        (lambda raw: raw[:2] + b"\x42" + raw[3:], "unknown IDX type"),
        (lambda raw: raw[:-3], "header says shape"),
        (lambda raw: raw + b"\x00", "header says shape"),
        (lambda raw: raw[:6], "truncated IDX header"),
    ],
)
def test_corrupt_idx_rejected(tmp_path: Path, mangle, match: str) -> None:
    good = write_idx(tmp_path / "x.idx", np.zeros((3, 2, 2), dtype=np.uint8))
    good.write_bytes(mangle(good.read_bytes()))
    with pytest.raises(LearningSpecError, match=match):
        read_idx(good)


def test_corrupt_gzip_rejected(tmp_path: Path) -> None:
    path = tmp_path / "x.idx.gz"
    path.write_bytes(b"not gzip at all")
    with pytest.raises(LearningSpecError, match="cannot read"):
        read_idx(path)


def test_label_out_of_range_rejected(tmp_path: Path) -> None:
    folder = write_mnist_dir(tmp_path / "m")
    write_idx(folder / "train-labels-idx1-ubyte", np.full(12, 11, dtype=np.uint8))
    with pytest.raises(LearningSpecError, match="labels must be in 0..9"):
        load_dataset({"kind": "mnist", "path": str(folder)})
