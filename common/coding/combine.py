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


# ---------------------------------------------------------------- wide tiers (docs/numerics.md)


def split_wide(z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A longdouble vector as the pair a worker of a wide tier sends: hi = z rounded to float64
    and lo = (z - hi) rounded to float32, so |z - hi - lo| <= 2^-77 |z| (below longdouble's
    own rounding on x86-64): 12 bytes per element instead of 8."""
    hi = z.astype(np.float64)
    lo = (z - hi.astype(np.longdouble)).astype(np.float32)
    return hi, lo


def combine_wide(
    his: Sequence[np.ndarray], los: Sequence[np.ndarray], weights: np.ndarray
) -> np.ndarray:
    """sum_j w_j (hi_j + lo_j) accumulated in longdouble and rounded once to float64: the edge
    decode of a wide tier (``weights`` from ``edge_decode_weights_wide``, longdouble)."""
    if not len(his) == len(los) == len(weights):
        raise ValueError(
            f"combine_wide: {len(his)} vectors, {len(los)} lo parts, {len(weights)} weights"
        )
    idx = [t for t in range(len(weights)) if weights[t] != 0]
    if not idx:
        raise ValueError("combine_wide: every weight is zero")
    shape = np.shape(his[idx[0]])
    for t in idx:
        if np.shape(his[t]) != shape or np.shape(los[t]) != shape:
            raise ValueError(f"combine_wide: vector {t} or its lo part is not of shape {shape}")
    acc = np.zeros(shape, dtype=np.longdouble)
    for t in idx:
        w = np.longdouble(weights[t])
        acc += w * (np.asarray(his[t]).astype(np.longdouble) + np.asarray(los[t]))
    return acc.astype(np.float64)
