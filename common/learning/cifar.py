"""Reading CIFAR-10 from the user's files, "CIFAR-10 binary version" layout.

The directory holds ``data_batch_1.bin`` .. ``data_batch_5.bin`` (training, 10,000 records
each) and ``test_batch.bin``; each record is one label byte (0..9) then 3072 pixel bytes: the
red, green and blue 32x32 planes, row-major (so a record is already channel-first, as
``common.learning.cnn`` expects with ``channels: 3``). Files are read through ``np.memmap``,
so only the records asked for are touched. Sizes are checked before any record is read.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from common.learning.errors import LearningSpecError

RECORD_PIXELS = 3 * 32 * 32
RECORD_BYTES = 1 + RECORD_PIXELS
CIFAR_FILES = {
    "train": tuple(f"data_batch_{i}.bin" for i in range(1, 6)),
    "test": ("test_batch.bin",),
}


def _files(directory: Path, split: str) -> list[Path]:
    if not directory.is_dir():
        raise LearningSpecError("path", f"{directory}: not a directory of CIFAR-10 binary files")
    paths = [directory / name for name in CIFAR_FILES[split]]
    missing = [p.name for p in paths if not p.is_file()]
    if missing:
        raise LearningSpecError("path", f"{directory}: missing CIFAR-10 files {missing}")
    for p in paths:
        size = p.stat().st_size
        if size == 0 or size % RECORD_BYTES:
            raise LearningSpecError(
                "path",
                f"{p}: {size} bytes is not a whole number of {RECORD_BYTES}-byte CIFAR-10 records",
            )
    return paths


def cifar_count(directory: str | Path, split: str) -> int:
    """Records of the train/test split, from file sizes only."""
    return sum(p.stat().st_size // RECORD_BYTES for p in _files(Path(directory), split))


def read_cifar_rows(
    directory: str | Path, split: str, records: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """``(pixels (n, 3072) uint8, labels (n,) uint8)`` of the given records (in that order)."""
    paths = _files(Path(directory), split)
    maps = [np.memmap(p, dtype=np.uint8, mode="r").reshape(-1, RECORD_BYTES) for p in paths]
    starts = np.cumsum([0] + [len(m) for m in maps])
    records = np.asarray(records, dtype=np.int64)
    if records.size and (records.min() < 0 or records.max() >= starts[-1]):
        raise LearningSpecError("path", f"{directory}: record outside 0..{starts[-1] - 1}")
    out = np.empty((len(records), RECORD_BYTES), dtype=np.uint8)
    which = np.searchsorted(starts, records, side="right") - 1
    for f, m in enumerate(maps):
        sel = which == f
        if sel.any():
            out[sel] = m[records[sel] - starts[f]]
    labels = out[:, 0].copy()
    if labels.size and labels.max() > 9:
        raise LearningSpecError("path", f"{directory}: CIFAR-10 label {labels.max()} > 9")
    return out[:, 1:], labels
