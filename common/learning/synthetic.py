"""The synthetic dataset, generated block by block so that any row range costs O(its rows).

Model: ``n_classes`` centres ``centre_c ~ N(0, I_d)``; row ``r`` has a label
``y_r ~ Uniform{0..n_classes-1}`` and features ``x_r = centre_{y_r} + noise * N(0, I_d)``.

Rows are cut into blocks of ``rows_per_block(d)`` consecutive rows. Block ``b`` draws its
labels and noise from its own generator seeded with ``(seed, 1, b)``, and the centres come from
``(seed, 0)``, so a block is generated without touching any other block: the rows of a range
are bit-for-bit the rows of the same range of the whole matrix. The training set is rows
``0..n_train-1`` and the test set the rows after it; rows are i.i.d., so this contiguous split
is as good as a random one (and needs no permutation of the whole set). No standardisation:
the features are already on the unit scale of their generative model.
"""

from __future__ import annotations

import numpy as np

# Elements (float64) of noise drawn per block: 512 KiB. A range costs its output plus about
# two blocks of temporaries; smaller blocks only add per-block generator set-up time.
BLOCK_ELEMENTS = 1 << 16


def rows_per_block(n_features: int) -> int:
    """Rows in one generation block (>= 1) for ``n_features`` columns."""
    if n_features < 1:
        raise ValueError(f"n_features: must be >= 1, got {n_features}")
    return max(1, BLOCK_ELEMENTS // n_features)


def synthetic_centres(seed: int, n_classes: int, n_features: int) -> np.ndarray:
    """Class centres, shape (n_classes, n_features) float64, from ``seed`` alone."""
    return np.random.default_rng([seed, 0]).standard_normal((n_classes, n_features))


def _block(
    seed: int, b: int, n_rows: int, centres: np.ndarray, noise: float
) -> tuple[np.ndarray, np.ndarray]:
    # labels first, then noise, from the block's own stream
    rng = np.random.default_rng([seed, 1, b])
    y = rng.integers(0, centres.shape[0], size=n_rows, dtype=np.int64)
    X = rng.standard_normal((n_rows, centres.shape[1]))
    X *= noise
    X += centres[y]
    return X, y


def synthetic_rows(
    seed: int, n_classes: int, n_features: int, noise: float, start: int, stop: int
) -> tuple[np.ndarray, np.ndarray]:
    """Rows ``start..stop-1`` of the synthetic matrix.

    Parameters
    ----------
    seed, n_classes, n_features, noise
        The data spec's values.
    start, stop : int
        Global row range, ``0 <= start <= stop``.

    Returns
    -------
    X : (stop - start, n_features) float64
    y : (stop - start,) int64

    Memory: the output plus one block (``BLOCK_ELEMENTS`` float64) and the centres.
    """
    if not 0 <= start <= stop:
        raise ValueError(f"row range: need 0 <= start <= stop, got start={start} stop={stop}")
    centres = synthetic_centres(seed, n_classes, n_features)
    per = rows_per_block(n_features)
    X = np.empty((stop - start, n_features), dtype=np.float64)
    y = np.empty(stop - start, dtype=np.int64)
    for b in range(start // per, -(-stop // per)):
        lo, hi = b * per, (b + 1) * per
        Xb, yb = _block(seed, b, per, centres, noise)
        # the part of block b inside [start, stop)
        a, z = max(lo, start), min(hi, stop)
        X[a - start : z - start] = Xb[a - lo : z - lo]
        y[a - start : z - start] = yb[a - lo : z - lo]
        del Xb, yb  # before the next block is drawn
    return X, y
