"""Reading MNIST from the user's files: IDX (optionally gzipped) or a ``.npz``.

IDX format (LeCun): two zero bytes, a type code, the number of dimensions, then one big-endian
uint32 per dimension, then the data in big-endian order. Every size is checked before the data
is touched, so a truncated or corrupt file gives a clear ``LearningSpecError``.

``read_idx_rows(path, indices)`` reads only some records (rows along the first axis): a plain
file through ``np.memmap`` (only the pages of those rows are read), a gzipped one by
stream-decompressing chunk by chunk and keeping the wanted rows, so the memory used is
O(rows kept + one chunk), not O(file).
"""

from __future__ import annotations

import gzip
import stat
import struct
from pathlib import Path
from typing import BinaryIO

import numpy as np

from common.learning.errors import LearningSpecError

_IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}

# (images, labels) file stems of the train and test sets, as distributed.
MNIST_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


# A data file read whole (IDX) larger than this, on disk or decompressed, is refused: a
# device, a FIFO or a gzip bomb must not exhaust memory (MNIST's largest file is 47 MB).
MAX_DATA_BYTES = 4 * 1024**3


def check_data_file(path: Path, field: str = "", max_bytes: int = MAX_DATA_BYTES) -> None:
    """A regular file no larger than ``max_bytes``, or a one-line error naming ``field``."""
    try:
        st = path.stat()
    except FileNotFoundError:
        raise LearningSpecError(field, f"{path}: no such file") from None
    except OSError as exc:
        raise LearningSpecError(field, f"{path}: cannot read ({exc.strerror})") from None
    if not stat.S_ISREG(st.st_mode):
        raise LearningSpecError(field, f"{path}: not a regular file (a device, FIFO or folder)")
    if st.st_size > max_bytes:
        raise LearningSpecError(
            field, f"{path}: {st.st_size} bytes, more than the cap of {max_bytes} bytes"
        )


def _read_bytes(path: Path, max_bytes: int = MAX_DATA_BYTES) -> bytes:
    check_data_file(path, "", max_bytes)
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as fh:
                raw = fh.read(max_bytes + 1)
            if len(raw) > max_bytes:
                raise LearningSpecError(
                    "", f"{path}: decompresses to more than the cap of {max_bytes} bytes"
                )
            return raw
        return path.read_bytes()
    except FileNotFoundError:
        raise LearningSpecError("", f"{path}: no such file") from None
    except (OSError, EOFError) as exc:  # gzip.BadGzipFile is an OSError
        raise LearningSpecError("", f"{path}: cannot read ({exc})") from None


def _parse_header(raw: bytes, path: Path) -> tuple[np.dtype, tuple[int, ...], int]:
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise LearningSpecError("", f"{path}: not an IDX file (bad magic number)")
    dtype = _IDX_DTYPES.get(raw[2])
    if dtype is None:
        raise LearningSpecError("", f"{path}: unknown IDX type code 0x{raw[2]:02x}")
    ndim = raw[3]
    if ndim < 1 or len(raw) < 4 + 4 * ndim:
        raise LearningSpecError("", f"{path}: truncated IDX header ({ndim} dimensions)")
    shape = struct.unpack(f">{ndim}I", raw[4 : 4 + 4 * ndim])
    return dtype, tuple(shape), 4 + 4 * ndim


def read_idx(path: str | Path) -> np.ndarray:
    """The array stored in an IDX file (``.gz`` is decompressed), in native byte order."""
    path = Path(path)
    raw = _read_bytes(path)
    dtype, shape, offset = _parse_header(raw, path)
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(raw) - offset != expected:
        raise LearningSpecError(
            "",
            f"{path}: IDX header says shape {shape} ({expected} data bytes) "
            f"but the file holds {len(raw) - offset}",
        )
    data = np.frombuffer(raw, dtype=dtype, offset=offset).reshape(shape)
    return data.astype(dtype.newbyteorder("="))


def _open(path: Path) -> BinaryIO:
    check_data_file(path)
    try:
        if path.suffix == ".gz":
            return gzip.open(path, "rb")  # type: ignore[return-value]
        return path.open("rb")
    except FileNotFoundError:
        raise LearningSpecError("", f"{path}: no such file") from None
    except OSError as exc:
        raise LearningSpecError("", f"{path}: cannot read ({exc})") from None


def _read_header(fh: BinaryIO, path: Path) -> tuple[np.dtype, tuple[int, ...], int]:
    try:
        head = fh.read(4)
        if len(head) == 4:
            head += fh.read(4 * head[3])
    except (OSError, EOFError) as exc:
        raise LearningSpecError("", f"{path}: cannot read ({exc})") from None
    return _parse_header(head, path)


def read_idx_shape(path: str | Path) -> tuple[int, ...]:
    """The shape in an IDX file's header (only the header is read, gzipped or not)."""
    path = Path(path)
    with _open(path) as fh:
        return _read_header(fh, path)[1]


def check_indices(indices: np.ndarray, n: int, path: Path) -> np.ndarray:
    idx = np.asarray(indices)
    if idx.ndim != 1 or (idx.size and not np.issubdtype(idx.dtype, np.integer)):
        raise ValueError(f"indices: must be a 1-D integer array, got {idx.dtype}{idx.shape}")
    idx = idx.astype(np.int64)
    if idx.size and (idx.min() < 0 or idx.max() >= n):
        raise ValueError(f"indices: must be in 0..{n - 1} for {path}, got {idx.min()}..{idx.max()}")
    return idx


def read_idx_rows(path: str | Path, indices: np.ndarray) -> np.ndarray:
    """Records ``indices`` (along the first axis) of an IDX file, in native byte order.

    Parameters
    ----------
    path : path to an IDX file, ``.gz`` or plain
    indices : (r,) int array of record numbers, any order, repeats allowed

    Returns
    -------
    (r, *shape[1:]) array equal to ``read_idx(path)[indices]``; the file's size is checked
    against its header as ``read_idx`` does.
    """
    path = Path(path)
    with _open(path) as fh:
        dtype, shape, offset = _read_header(fh, path)
        idx = check_indices(indices, shape[0], path)
        if path.suffix == ".gz":
            out = stream_rows(fh, path, dtype, shape, idx)
    if path.suffix != ".gz":
        out = _memmap_rows(path, dtype, shape, offset, idx)
    return out.astype(dtype.newbyteorder("="))


def _size_error(path: Path, shape: tuple[int, ...], expected: int, got: int) -> LearningSpecError:
    return LearningSpecError(
        "",
        f"{path}: IDX header says shape {shape} ({expected} data bytes) but the file holds {got}",
    )


def _memmap_rows(
    path: Path, dtype: np.dtype, shape: tuple[int, ...], offset: int, idx: np.ndarray
) -> np.ndarray:
    expected = int(np.prod(shape)) * dtype.itemsize
    got = path.stat().st_size - offset
    if got != expected:
        raise _size_error(path, shape, expected, got)
    if expected == 0:
        return np.zeros((len(idx), *shape[1:]), dtype=dtype)
    data = np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=shape)
    try:
        return np.array(data[idx])  # fancy indexing copies only the wanted rows
    finally:
        del data


# Bytes decompressed per read while streaming a gzipped file.
STREAM_CHUNK_BYTES = 1 << 20


def stream_rows(
    fh: BinaryIO, path: Path, dtype: np.dtype, shape: tuple[int, ...], idx: np.ndarray
) -> np.ndarray:
    """Rows ``idx`` of the C-order array of ``shape`` whose data ``fh`` is positioned at.

    Reads ``STREAM_CHUNK_BYTES`` at a time, keeps the wanted rows, then checks the stream
    ends exactly where ``shape`` says (``LearningSpecError`` otherwise).
    """
    row_bytes = int(np.prod(shape[1:])) * dtype.itemsize
    out = np.empty((len(idx), *shape[1:]), dtype=dtype)
    order = np.argsort(idx, kind="stable")
    sorted_idx = idx[order]
    per_chunk = max(1, STREAM_CHUNK_BYTES // max(row_bytes, 1))
    pos, row = 0, 0  # pos: next position in sorted_idx; row: first record of this chunk
    try:
        while row < shape[0]:
            n = min(per_chunk, shape[0] - row)
            raw = fh.read(n * row_bytes)
            if len(raw) != n * row_bytes:
                got = row * row_bytes + len(raw)
                raise _size_error(path, shape, shape[0] * row_bytes, got)
            end = int(np.searchsorted(sorted_idx, row + n, side="left"))
            if end > pos:
                chunk = np.frombuffer(raw, dtype=dtype).reshape(n, *shape[1:])
                out[order[pos:end]] = chunk[sorted_idx[pos:end] - row]
                pos = end
            row += n
        extra = len(fh.read(1))
    except (OSError, EOFError) as exc:
        raise LearningSpecError("", f"{path}: cannot read ({exc})") from None
    if extra:
        expected = shape[0] * row_bytes
        raise _size_error(path, shape, expected, expected + extra)
    return out


def find_idx(directory: Path, stem: str) -> Path:
    """``directory/stem`` or ``stem.gz`` (also the ``t10k-images.idx3-ubyte`` spelling)."""
    candidates = [
        stem,
        stem + ".gz",
        stem.replace("-idx", ".idx"),
        stem.replace("-idx", ".idx") + ".gz",
    ]
    for name in candidates:
        if (directory / name).is_file():
            return directory / name
    raise LearningSpecError(
        "path", f"{directory}: missing MNIST file {stem} (looked for {', '.join(candidates)})"
    )


def load_mnist_arrays(path: str | Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(x_train, y_train, x_test, y_test)`` from an IDX directory or a ``.npz`` file.

    Images come back as given (e.g. uint8, shape (n, 28, 28)); labels as given.
    """
    path = Path(path)
    if path.is_dir():
        arrays = []
        for split in ("train", "test"):
            images, labels = (read_idx(find_idx(path, stem)) for stem in MNIST_FILES[split])
            arrays += [images, labels]
        return arrays[0], arrays[1], arrays[2], arrays[3]
    if path.suffix == ".npz":
        return _load_npz(path)
    if not path.exists():
        raise LearningSpecError("path", f"{path}: no such file or directory")
    raise LearningSpecError("path", f"{path}: expected a directory of IDX files or a .npz file")


def _load_npz(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    keys = ("x_train", "y_train", "x_test", "y_test")
    try:
        with np.load(path, allow_pickle=False) as npz:
            missing = [k for k in keys if k not in npz.files]
            if missing:
                raise LearningSpecError(
                    "path", f"{path}: .npz lacks arrays {missing} (needs {', '.join(keys)})"
                )
            return npz["x_train"], npz["y_train"], npz["x_test"], npz["y_test"]
    except FileNotFoundError:
        raise LearningSpecError("path", f"{path}: no such file") from None
    except (OSError, ValueError) as exc:
        if isinstance(exc, LearningSpecError):
            raise
        raise LearningSpecError("path", f"{path}: not a readable .npz ({exc})") from None
