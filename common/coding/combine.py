"""The hot-path linear combination: out = sum_j w_j v_j, in place, no temporaries."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

_BLOCK = 1 << 15  # float64 elements per block: 256 KiB, fits in L2


def combine(
    vectors: Sequence[np.ndarray], weights: np.ndarray, out: np.ndarray | None = None
) -> np.ndarray:
    """Weighted sum of equal-length vectors, skipping zero weights.

    Parameters
    ----------
    vectors : r arrays of shape (P,) (float64 gradients).
    weights : (r,) decode weights (from ``edge_decode_weights`` / ``master_decode_weights``).
    out : optional preallocated (P,) float64 buffer, overwritten.

    Returns
    -------
    (P,) float64: ``out``. One pass per non-zero weight (an axpy into ``out``); weights of
    exactly 1 skip the multiply, so 0/1 codes cost the same as a plain sum.
    """
    if len(vectors) != len(weights):
        raise ValueError(f"combine: {len(vectors)} vectors but {len(weights)} weights")
    idx = [t for t in range(len(weights)) if weights[t] != 0.0]
    if not idx:
        raise ValueError("combine: every weight is zero")
    shape = np.shape(vectors[idx[0]])
    for t in idx:
        if np.shape(vectors[t]) != shape:
            raise ValueError(f"combine: vector {t} has shape {np.shape(vectors[t])}, not {shape}")
    if out is None:
        out = np.empty(shape, dtype=np.float64)
    elif out.shape != shape:
        raise ValueError(f"combine: out has shape {out.shape}, vectors {shape}")
    # Work block by block so the scaled copy stays in cache: one read of each vector and one
    # read+write of ``out`` per block, the same memory traffic as a plain sum.
    scratch = np.empty(min(_BLOCK, out.size), dtype=np.float64)
    flat_out = out.reshape(-1)
    flats = {t: np.asarray(vectors[t]).reshape(-1) for t in idx}
    for lo in range(0, flat_out.size, _BLOCK):
        hi = min(lo + _BLOCK, flat_out.size)
        o = flat_out[lo:hi]
        tmp = scratch[: hi - lo]
        for n_done, t in enumerate(idx):
            w = float(weights[t])
            v = flats[t][lo:hi]
            if n_done == 0:
                if w == 1.0:
                    np.copyto(o, v)
                else:
                    np.multiply(v, w, out=o)
            elif w == 1.0:
                np.add(o, v, out=o)
            else:
                np.multiply(v, w, out=tmp)
                np.add(o, tmp, out=o)
    return out
