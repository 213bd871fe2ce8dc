"""Reading MNIST from the user's files: IDX (optionally gzipped) or a ``.npz``.

IDX format (LeCun): two zero bytes, a type code, the number of dimensions, then one big-endian
uint32 per dimension, then the data in big-endian order. Every size is checked before the data
is touched, so a truncated or corrupt file gives a clear ``LearningSpecError``.
"""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

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


def _read_bytes(path: Path) -> bytes:
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as fh:
                return fh.read()
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


def read_idx_shape(path: str | Path) -> tuple[int, ...]:
    """The shape in an IDX file's header (the whole file is read only if gzipped)."""
    path = Path(path)
    if path.suffix == ".gz":
        return _parse_header(_read_bytes(path), path)[1]
    try:
        with path.open("rb") as fh:
            head = fh.read(4 + 4 * 255)
    except FileNotFoundError:
        raise LearningSpecError("", f"{path}: no such file") from None
    return _parse_header(head, path)[1]


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
