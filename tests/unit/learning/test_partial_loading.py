"""Loading a subset of rows: load_partitions / load_test_set / read_idx_rows equal the full
loaders bit for bit, and materialise O(the rows asked for), not O(the dataset)."""

from __future__ import annotations

import gzip
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from common.learning import (
    LearningSpecError,
    load_dataset,
    load_partitions,
    load_test_set,
    partition_rows,
)
from common.learning import idx as idx_module
from common.learning.idx import read_idx, read_idx_rows, read_idx_shape
from common.learning.npz import npz_shape, read_npz_rows
from common.learning.synthetic import rows_per_block, synthetic_rows
from tests.unit.learning.test_datasets import write_idx, write_mnist_dir


def _all_partitions_equal_full(spec: dict[str, Any], K: int) -> None:
    full = load_dataset(spec)
    order = list(range(K))[::-1]  # any order: the result follows it
    X_parts, y_parts = load_partitions(spec, K, order)
    rows = partition_rows(full.n_train, K)
    for k, X, y in zip(order, X_parts, y_parts, strict=True):
        np.testing.assert_array_equal(X, full.X_train[rows[k]])
        np.testing.assert_array_equal(y, full.y_train[rows[k]])
        assert X.dtype == np.float64 and y.dtype == np.int64 and X.flags.c_contiguous
    X_all = np.concatenate(X_parts[::-1])
    assert X_all.tobytes() == full.X_train.tobytes()  # bit for bit, not just close
    assert np.concatenate(y_parts[::-1]).tobytes() == full.y_train.tobytes()


@pytest.mark.parametrize(
    ("n", "d", "K"),
    [(300, 7, 9), (1000, 2000, 7), (50, 300_000, 4), (2, 1, 1)],  # many rows/block .. 1 row/block
)
def test_synthetic_partitions_concatenate_to_the_training_set(n: int, d: int, K: int) -> None:
    spec = {"kind": "synthetic", "n_samples": n, "n_features": d, "n_classes": 3, "seed": 5}
    if n == 2:
        spec["test_fraction"] = 0.0
    _all_partitions_equal_full(spec, K)


def test_synthetic_ranges_are_independent_of_each_other() -> None:
    d = 1000
    per = rows_per_block(d)
    whole = synthetic_rows(3, 4, d, 0.5, 0, 3 * per + 5)
    for a, b in [(0, 0), (1, 2), (per - 1, per + 1), (per, 2 * per), (2 * per + 3, 3 * per + 5)]:
        X, y = synthetic_rows(3, 4, d, 0.5, a, b)
        np.testing.assert_array_equal(X, whole[0][a:b])
        np.testing.assert_array_equal(y, whole[1][a:b])
    # negative controls: another seed, another block
    assert not np.array_equal(synthetic_rows(4, 4, d, 0.5, 0, 3)[0], whole[0][:3])
    assert not np.array_equal(synthetic_rows(3, 4, d, 0.5, per, per + 3)[0], whole[0][:3])
    with pytest.raises(ValueError, match="start <= stop"):
        synthetic_rows(3, 4, d, 0.5, 5, 4)


def test_synthetic_is_learnable_data() -> None:
    # labels follow the centres: the nearest centre classifies low-noise rows correctly
    X, y = synthetic_rows(0, 5, 50, 0.1, 0, 400)
    centres = np.random.default_rng([0, 0]).standard_normal((5, 50))
    nearest = np.argmin(((X[:, None, :] - centres[None]) ** 2).sum(axis=2), axis=1)
    assert np.mean(nearest == y) > 0.99 and len(np.unique(y)) == 5


def test_digits_partitions_equal_the_training_set() -> None:
    _all_partitions_equal_full({"kind": "digits", "seed": 2}, 9)


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("max_train", [None, 23])
def test_mnist_idx_partitions_equal_the_training_set(
    tmp_path: Path, gz: bool, max_train: int | None
) -> None:
    folder = write_mnist_dir(tmp_path / "m", n_train=40, n_test=6, gz=gz)
    spec = {"kind": "mnist", "path": str(folder), "max_train": max_train, "seed": 3}
    _all_partitions_equal_full(spec, 5)


@pytest.mark.parametrize("compressed", [False, True])
def test_mnist_npz_partitions_equal_the_training_set(tmp_path: Path, compressed: bool) -> None:
    rng = np.random.default_rng(1)
    path = tmp_path / "m.npz"
    np.savez(
        path,
        x_train=rng.integers(0, 256, (17, 4, 4), dtype=np.uint8),
        y_train=np.arange(17) % 10,
        x_test=rng.integers(0, 256, (3, 4, 4), dtype=np.uint8),
        y_test=np.arange(3),
    )
    _all_partitions_equal_full({"kind": "mnist", "path": str(path)}, 4)


def _mnist_npz(tmp_path: Path) -> dict[str, Any]:
    path = tmp_path / "t.npz"
    rng = np.random.default_rng(2)
    np.savez(
        path,
        x_train=rng.integers(0, 256, (8, 2, 2), dtype=np.uint8),
        y_train=np.arange(8) % 10,
        x_test=rng.integers(0, 256, (5, 2, 2), dtype=np.uint8),
        y_test=np.arange(5),
    )
    return {"kind": "mnist", "path": str(path)}


@pytest.mark.parametrize(
    "make_spec",
    [
        lambda tmp: {"kind": "synthetic", "n_samples": 500, "n_features": 30, "seed": 1},
        lambda tmp: {"kind": "digits", "seed": 7},
        lambda tmp: {"kind": "mnist", "path": str(write_mnist_dir(tmp / "a", gz=False))},
        lambda tmp: {"kind": "mnist", "path": str(write_mnist_dir(tmp / "b", gz=True))},
        _mnist_npz,
    ],
)
def test_test_set_alone_equals_the_full_loaders(
    tmp_path: Path, make_spec: Callable[[Path], dict[str, Any]]
) -> None:
    spec = make_spec(tmp_path)
    full = load_dataset(spec)
    X, y, c = load_test_set(spec)
    assert X.tobytes() == full.X_test.tobytes() and X.shape == full.X_test.shape
    np.testing.assert_array_equal(y, full.y_test)
    assert c == full.n_classes and len(y) > 0


def test_bad_partitions_are_named() -> None:
    spec = {"kind": "digits"}
    with pytest.raises(ValueError, match="partitions: 9 outside 0..8"):
        load_partitions(spec, 9, [0, 9])
    with pytest.raises(TypeError, match="partitions: must be integers"):
        load_partitions(spec, 9, [1.0])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="K: 5000 partitions need at least"):
        load_partitions(spec, 5000, [0])
    with pytest.raises(LearningSpecError) as info:
        load_partitions({"kind": "synthetic", "n_features": 0}, 2, [0])
    assert info.value.field == "n_features"


# ---- IDX records ---------------------------------------------------------------------------


@pytest.mark.parametrize("gz", [False, True])
def test_idx_rows_equal_fancy_indexing(
    tmp_path: Path, gz: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(idx_module, "STREAM_CHUNK_BYTES", 50)  # many chunks of 2 records
    array = np.random.default_rng(0).standard_normal((37, 4, 6)).astype(np.float32)
    path = write_idx(tmp_path / "a.idx", array, code=0x0D, gz=gz)
    for wanted in ([], [0], [36, 0, 5, 5, 17], list(range(37))[::-1]):
        got = read_idx_rows(path, np.asarray(wanted, dtype=np.int64))
        np.testing.assert_array_equal(got, read_idx(path)[wanted])
        assert got.dtype == np.float32 and got.shape == (len(wanted), 4, 6)
    with pytest.raises(ValueError, match="indices: must be in 0..36"):
        read_idx_rows(path, np.array([37]))


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize(
    ("mangle", "match"),
    [
        (lambda raw: raw[:-3], "header says shape"),
        (lambda raw: raw + b"\x00", "header says shape"),
        (lambda raw: b"\x01" + raw[1:], "bad magic"),
    ],
)
def test_idx_rows_reject_corrupt_files(
    tmp_path: Path, gz: bool, mangle: Callable[[bytes], bytes], match: str
) -> None:
    raw = write_idx(tmp_path / "x.idx", np.zeros((5, 3), dtype=np.uint8)).read_bytes()
    path = tmp_path / ("y.idx.gz" if gz else "y.idx")
    path.write_bytes(gzip.compress(mangle(raw)) if gz else mangle(raw))
    with pytest.raises(LearningSpecError, match=match):
        read_idx_rows(path, np.array([0]))


def test_idx_shape_of_a_gzip_reads_the_header_only(tmp_path: Path) -> None:
    noise = np.random.default_rng(0).integers(0, 256, (9, 20_000), dtype=np.uint8)
    raw = write_idx(tmp_path / "x.idx", noise).read_bytes()  # incompressible: ~180 kB gzipped
    path = tmp_path / "cut.idx.gz"
    path.write_bytes(gzip.compress(raw)[:-1000])  # the compressed stream is cut short
    assert read_idx_shape(path) == (9, 20_000)
    with pytest.raises(LearningSpecError, match="cannot read"):
        read_idx_rows(path, np.array([0]))


# ---- memory: O(rows kept) ------------------------------------------------------------------


def _peak_bytes(fn: Callable[[], object]) -> int:
    """Peak traced allocation (numpy reports its buffers to tracemalloc) while fn runs."""
    tracemalloc.start()
    try:
        result = fn()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    del result
    return peak


def test_synthetic_partition_loading_is_o_own_rows() -> None:
    spec = {"kind": "synthetic", "n_samples": 20_000, "n_features": 200, "seed": 0}
    full_bytes = 16_000 * 200 * 8
    own = _peak_bytes(lambda: load_partitions(spec, 16, [3]))  # 1/16 of the training rows
    whole = _peak_bytes(lambda: load_dataset(spec))
    assert whole >= full_bytes  # negative control: the full loader does hold everything
    assert own < 0.2 * full_bytes, (own, full_bytes)


@pytest.mark.parametrize("gz", [False, True])
def test_mnist_idx_partition_loading_is_o_own_rows(
    tmp_path: Path, gz: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(idx_module, "STREAM_CHUNK_BYTES", 1 << 16)
    folder = tmp_path / "m"
    folder.mkdir()
    n = 20_000
    images = np.random.default_rng(0).integers(0, 256, (n, 28, 28), dtype=np.uint8)
    write_idx(folder / "train-images-idx3-ubyte", images, gz=gz)
    write_idx(folder / "train-labels-idx1-ubyte", (np.arange(n) % 10).astype(np.uint8), gz=gz)
    write_idx(folder / "t10k-images-idx3-ubyte", images[:3], gz=gz)
    write_idx(folder / "t10k-labels-idx1-ubyte", np.arange(3, dtype=np.uint8), gz=gz)
    del images
    spec = {"kind": "mnist", "path": str(folder)}
    full_bytes = n * 784 * 8  # float64 training set
    own = _peak_bytes(lambda: load_partitions(spec, 20, [7]))
    whole = _peak_bytes(lambda: load_dataset(spec))
    assert whole >= full_bytes
    assert own < 0.15 * full_bytes, (own, full_bytes)


# ---- .npz members --------------------------------------------------------------------------


@pytest.mark.parametrize("compressed", [False, True])
@pytest.mark.parametrize("order", ["C", "F"])
def test_npz_rows_equal_fancy_indexing(
    tmp_path: Path, compressed: bool, order: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(idx_module, "STREAM_CHUNK_BYTES", 64)  # many chunks
    a = np.asfortranarray if order == "F" else np.ascontiguousarray
    x = a(np.random.default_rng(0).standard_normal((29, 3, 5)).astype(">f4"))
    labels = np.arange(29, dtype=np.int64)
    path = tmp_path / "a.npz"
    (np.savez_compressed if compressed else np.savez)(path, x=x, y=labels)
    assert npz_shape(path, "x") == (29, 3, 5)
    for wanted in ([], [28, 0, 4, 4], list(range(29))):
        got = read_npz_rows(path, "x", np.asarray(wanted, dtype=np.int64))
        np.testing.assert_array_equal(got, x[wanted])
        assert got.dtype == np.float32 and got.dtype.isnative
        np.testing.assert_array_equal(read_npz_rows(path, "y", np.array(wanted)), labels[wanted])
    with pytest.raises(LearningSpecError, match="lacks array 'z'"):
        read_npz_rows(path, "z", np.array([0]))
    with pytest.raises(ValueError, match="indices: must be in 0..28"):
        read_npz_rows(path, "x", np.array([29]))


def test_npz_corrupt_or_missing_is_named(tmp_path: Path) -> None:
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip")
    with pytest.raises(LearningSpecError, match="not a readable .npz"):
        read_npz_rows(bad, "x", np.array([0]))
    with pytest.raises(LearningSpecError, match="no such file"):
        npz_shape(tmp_path / "none.npz", "x")
    spec = {"kind": "mnist", "path": str(tmp_path / "none.npz")}
    with pytest.raises(LearningSpecError, match="no such file"):
        load_partitions(spec, 2, [0])


@pytest.mark.parametrize("compressed", [False, True])
def test_mnist_npz_partition_loading_is_o_own_rows(
    tmp_path: Path, compressed: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(idx_module, "STREAM_CHUNK_BYTES", 1 << 16)
    n = 20_000
    rng = np.random.default_rng(0)
    path = tmp_path / "m.npz"
    (np.savez_compressed if compressed else np.savez)(
        path,
        x_train=rng.integers(0, 256, (n, 28, 28), dtype=np.uint8),
        y_train=np.arange(n) % 10,
        x_test=rng.integers(0, 256, (3, 28, 28), dtype=np.uint8),
        y_test=np.arange(3),
    )
    spec = {"kind": "mnist", "path": str(path), "max_train": 15_000, "seed": 1}
    _all_partitions_equal_full(spec, 6)
    full_bytes = 15_000 * 784 * 8
    own = _peak_bytes(lambda: load_partitions(spec, 15, [7]))
    whole = _peak_bytes(lambda: load_dataset(spec))
    assert whole >= full_bytes
    assert own < 0.15 * full_bytes, (own, full_bytes)
