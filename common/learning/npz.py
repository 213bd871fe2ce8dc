"""Reading some rows of an array in a ``.npz`` (MNIST as ``x_train``, ``y_train``, ...).

A ``.npz`` is a zip of ``.npy`` members. A member is opened as a stream (stored or deflated
alike), its ``.npy`` header parsed, and the wanted rows kept chunk by chunk
(``idx.stream_rows``), so the memory used is O(rows kept + one chunk). Fortran-ordered
arrays and unknown ``.npy`` versions cannot be cut by rows from a stream: they are loaded
whole (rare: ``np.savez`` writes C order, version 1.0).
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import BinaryIO

import numpy as np
from numpy.lib import format as npy_format

from common.learning.errors import LearningSpecError
from common.learning.idx import check_data_file, check_indices, stream_rows


def _member(archive: zipfile.ZipFile, path: Path, key: str) -> str:
    name = key + ".npy"
    if name not in archive.namelist():
        raise LearningSpecError("path", f"{path}: .npz lacks array {key!r}")
    return name


def _header(fh: BinaryIO, path: Path, key: str) -> tuple[tuple[int, ...], bool, np.dtype] | None:
    """``(shape, fortran_order, dtype)`` or None for a .npy version we do not parse."""
    try:
        version = npy_format.read_magic(fh)
        if version == (1, 0):
            shape, fortran, dtype = npy_format.read_array_header_1_0(fh)
        elif version == (2, 0):
            shape, fortran, dtype = npy_format.read_array_header_2_0(fh)
        else:
            return None
    except ValueError as exc:
        raise LearningSpecError("path", f"{path}: array {key!r} is not a .npy ({exc})") from None
    if dtype.hasobject:
        raise LearningSpecError("path", f"{path}: array {key!r} holds Python objects")
    return tuple(shape), bool(fortran), dtype


def _open_archive(path: Path) -> zipfile.ZipFile:
    check_data_file(path, "path")
    try:
        return zipfile.ZipFile(path)
    except FileNotFoundError:
        raise LearningSpecError("path", f"{path}: no such file") from None
    except (OSError, zipfile.BadZipFile) as exc:
        raise LearningSpecError("path", f"{path}: not a readable .npz ({exc})") from None


def npz_shape(path: str | Path, key: str) -> tuple[int, ...]:
    """Shape of array ``key`` in the ``.npz`` at ``path``, from its header only."""
    path = Path(path)
    with _open_archive(path) as archive, archive.open(_member(archive, path, key)) as fh:
        head = _header(fh, path, key)  # type: ignore[arg-type]
    if head is None:
        return tuple(_load_whole(path, key).shape)
    return head[0]


def _load_whole(path: Path, key: str) -> np.ndarray:
    with np.load(path, allow_pickle=False) as npz:
        return np.asarray(npz[key])


def read_npz_rows(path: str | Path, key: str, indices: np.ndarray) -> np.ndarray:
    """Rows ``indices`` (first axis) of array ``key``: equals ``np.load(path)[key][indices]``.

    Parameters
    ----------
    path : a ``.npz`` file
    key : array name inside it (``x_train`` ...)
    indices : (r,) int array, any order, repeats allowed

    Returns
    -------
    (r, *shape[1:]) array of the stored dtype, native byte order.
    """
    path = Path(path)
    try:
        with _open_archive(path) as archive, archive.open(_member(archive, path, key)) as fh:
            head = _header(fh, path, key)  # type: ignore[arg-type]
            if head is not None and not (head[1] and len(head[0]) > 1) and head[0]:
                shape, _, dtype = head
                idx = check_indices(indices, shape[0], path)
                rows = stream_rows(fh, path, dtype, shape, idx)  # type: ignore[arg-type]
                return rows.astype(dtype.newbyteorder("="))
    except (OSError, zipfile.BadZipFile, EOFError) as exc:
        raise LearningSpecError("path", f"{path}: not a readable .npz ({exc})") from None
    whole = _load_whole(path, key)
    if whole.ndim == 0:
        raise LearningSpecError("path", f"{path}: array {key!r} is a scalar, expected rows")
    rows = whole[check_indices(indices, whole.shape[0], path)]
    return rows.astype(rows.dtype.newbyteorder("="))
