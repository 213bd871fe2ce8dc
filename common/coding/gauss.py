"""Random-Gaussian gradient codes for one tier: stable for any tier size (docs/numerics.md).

The Lagrange tier of spec §3 is B = V C with V the N x (N-s) Vandermonde matrix of the points
(row i = (1, α_i, ..., α_i^{N-s-1})) and the decode row v(β). Replacing V by a seeded random
Gaussian N x r matrix G (r = N - s) and v(β) by a random Gaussian target u in R^r keeps the
whole argument and the support, but not the ill-conditioning of real Vandermonde matrices:

- item k (held by T_k, |T_k| >= s+1) gets the minimum-norm c_k in R^r with
  G[j] c_k = 0 for every non-holder j (at most r - 1 equations) and u . c_k = 1;
  its encoding column is B[:, k] = G c_k (zero outside T_k, by construction);
- the decode weights of a responder set F (|F| = r) solve G[F]^T a = u (least squares on
  the survivor rows, via SVD); then a^T B[F, k] = u . c_k = 1 for every item.

Exact in exact arithmetic whenever every r x r submatrix G[F] and every constraint system is
non-singular, which holds with probability 1 for Gaussian G. G and u are drawn by numpy's
PCG64 generator from ``seed`` (platform-independent), so a node rebuilds the same code from
the seed shipped in the code's spec.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

GAUSS_SEEDS = 6  # seeds 0..GAUSS_SEEDS-1 tried by the builder; the best one is shipped


def gauss_generator(N: int, s: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(G, u): G of shape (N, N - s) and u of shape (N - s,), standard normal from ``seed``."""
    if not 0 <= s < N:
        raise ValueError(f"s: a tier of {N} nodes tolerates 0..{N - 1} stragglers, got {s}")
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"seed: must be an integer >= 0, got {seed!r}")
    rng = np.random.default_rng(int(seed))
    G = rng.standard_normal((N, N - s))
    u = rng.standard_normal(N - s)
    return G, u


def gauss_encoding_matrix(
    G: np.ndarray, u: np.ndarray, holders: Sequence[Sequence[int]]
) -> np.ndarray:
    """(N, n_items) encoding matrix, zero outside each item's holders (see module docstring).

    Items with the same holder set share one column (computed once); the holder sets of
    exactly s + 1 nodes (a square system) are solved together in one batched LU.
    """
    N, r = G.shape
    keys = [tuple(sorted(int(x) for x in T)) for T in holders]
    distinct = list(dict.fromkeys(keys))
    columns: dict[tuple[int, ...], np.ndarray] = {}
    square: list[tuple[int, ...]] = []  # |non-holders| = r - 1: one batched solve for all
    for k, key in enumerate(keys):
        if N - len(key) > r - 1:
            raise ValueError(
                f"holders: item {k} has {len(key)} holders; a tier of {N} nodes "
                f"tolerating {N - r} stragglers needs at least {N - r + 1}"
            )
    for key in distinct:
        if N - len(key) == r - 1:
            square.append(key)
        else:  # more holders than needed: the minimum-norm c of the under-determined system
            columns[key] = _column(G, u, key, None)
    if square:
        nons = np.array([[j for j in range(N) if j not in set(key)] for key in square])
        systems = np.concatenate([G[nons], np.broadcast_to(u, (len(square), 1, r))], axis=1)
        rhs = np.zeros((len(square), r, 1))
        rhs[:, -1, 0] = 1.0
        try:
            cs = np.linalg.solve(systems, rhs)[..., 0]
        except np.linalg.LinAlgError:
            cs = None
        for t, key in enumerate(square):
            columns[key] = _column(G, u, key, None if cs is None else cs[t])
    B = np.zeros((N, len(holders)))
    for k, key in enumerate(keys):
        B[:, k] = columns[key]
    return B


def _column(G: np.ndarray, u: np.ndarray, key: tuple[int, ...], c: np.ndarray | None) -> np.ndarray:
    """G c, zeroed exactly off the holders ``key``; c by least squares when not given."""
    N = G.shape[0]
    held = set(key)
    non = [j for j in range(N) if j not in held]
    if c is None:
        system = np.vstack([G[non], u[None, :]])
        rhs = np.zeros(len(non) + 1)
        rhs[-1] = 1.0
        c = np.linalg.lstsq(system, rhs, rcond=None)[0]
    col = G @ c
    col[non] = 0.0  # exactly zero off the support (G[non] c is zero up to rounding)
    return col


def gauss_decode_weights(G: np.ndarray, u: np.ndarray, rows: Sequence[int]) -> np.ndarray:
    """(len(rows),) weights a with a^T G[rows] = u.

    For exactly N - s rows (the decoder's case) the square system is solved by LU with
    partial pivoting (backward stable; the measured errors are in docs/numerics.md); other
    row counts, or a numerically singular square system, by least squares (SVD).
    """
    sub = G[list(rows)]
    if sub.shape[0] == sub.shape[1]:
        try:
            return np.linalg.solve(sub.T, u)
        except np.linalg.LinAlgError:
            pass
    return np.linalg.lstsq(sub.T, u, rcond=None)[0]


def gauss_batch_weights(
    G: np.ndarray, u: np.ndarray, sets: Sequence[Sequence[int]] | np.ndarray
) -> np.ndarray:
    """(len(sets), N - s) weights of many responder sets of exactly N - s rows at once (one
    batched LU solve; the error estimate runs thousands). Same result as
    :func:`gauss_decode_weights` row by row."""
    idx = np.asarray(sets, dtype=np.int64)
    if idx.ndim != 2 or idx.shape[1] != G.shape[1]:
        return np.array([gauss_decode_weights(G, u, F) for F in sets])
    stack = np.transpose(G[idx], (0, 2, 1))
    try:
        return np.linalg.solve(stack, np.broadcast_to(u, idx.shape)[..., None])[..., 0]
    except np.linalg.LinAlgError:
        return np.array([gauss_decode_weights(G, u, F) for F in sets])


# ---------------------------------------------------------------- wide (extended precision)
#
# A Gaussian tier's float64 decode error has a heavy tail over responder sets: the rounding of
# B and of every coded vector is amplified by ~cond(G[F]), and a random square submatrix has
# P(sigma_min < t / sqrt(r)) ~ t, so more patterns always find worse ones (docs/numerics.md).
# A *wide* tier removes that floor: c_k, B = G c_k and the decode weights are computed to
# ``np.longdouble`` by iterative refinement (float64 LU/least-squares corrections, residuals in
# longdouble), the worker accumulates its coded vector in longdouble and sends it as
# hi (float64) + lo (float32), and the edge combines sum_j a_j (hi_j + lo_j) in longdouble and
# rounds once to float64. G and u stay the float64 numbers of ``gauss_generator`` (exact).

LD = np.longdouble
LD_EPS = float(np.finfo(LD).eps)
# the hi + lo split keeps |x - hi - lo| <= 2^-24 |x - hi| <= 2^-77 |x| (lo rounded to float32)
SPLIT_EPS = 2.0**-77
WIDE_EPS = max(LD_EPS, SPLIT_EPS)  # unit rounding of the wide pipeline's vector arithmetic
# longdouble is 80-bit x87 on x86-64 Linux (eps 1.1e-19) and binary128 on Linux arm64; on
# macOS arm64 and Windows it is float64 and a wide tier is only as accurate as float64
WIDE_AVAILABLE = LD_EPS <= 1e-18
REFINE_STEPS = 3  # each step gains ~ -log10(cond * 2.2e-16) digits; 3 reach longdouble at 1e9
_warned: list[bool] = []


def warn_if_narrow() -> None:
    """One WARNING line on stderr (once per process) when longdouble is only float64 here."""
    if WIDE_AVAILABLE or _warned:
        return
    _warned.append(True)
    import sys

    print(
        f"WARNING: np.longdouble has eps {LD_EPS:.3g} on this platform (no extended precision):"
        " wide Gaussian tiers decode at float64 accuracy here (docs/numerics.md)",
        file=sys.stderr,
    )


def wide_encoding_matrix(
    G: np.ndarray, u: np.ndarray, holders: Sequence[Sequence[int]]
) -> np.ndarray:
    """(N, n_items) longdouble encoding matrix: :func:`gauss_encoding_matrix` refined.

    Column k is G c_k with c_k solving G[non-holders] c = 0, u . c = 1 to longdouble accuracy
    (float64 start, then ``REFINE_STEPS`` corrections by least squares on the longdouble
    residual); exactly 0 off the holders.
    """
    N, r = G.shape
    keys = [tuple(sorted(int(x) for x in T)) for T in holders]
    G_ld = G.astype(LD)
    cols: dict[tuple[int, ...], np.ndarray] = {}
    for k, key in enumerate(keys):
        if key in cols:
            continue
        held = set(key)
        non = [j for j in range(N) if j not in held]
        if len(non) > r - 1:
            raise ValueError(
                f"holders: item {k} has {len(key)} holders; a tier of {N} nodes "
                f"tolerating {N - r} stragglers needs at least {N - r + 1}"
            )
        M = np.vstack([G[non], u[None, :]])
        rhs = np.zeros(len(non) + 1, dtype=LD)
        rhs[-1] = 1
        # the float64 column's c: least squares on the float64 column restricted to G
        c = np.linalg.lstsq(M, rhs.astype(np.float64), rcond=None)[0].astype(LD)
        M_ld = M.astype(LD)
        for _ in range(REFINE_STEPS):
            res = rhs - M_ld @ c
            c = c + np.linalg.lstsq(M, res.astype(np.float64), rcond=None)[0].astype(LD)
        col = G_ld @ c
        col[non] = 0
        cols[key] = col
    B = np.zeros((N, len(keys)), dtype=LD)
    for k, key in enumerate(keys):
        B[:, k] = cols[key]
    return B


def wide_batch_weights(
    G: np.ndarray, u: np.ndarray, sets: Sequence[Sequence[int]] | np.ndarray
) -> np.ndarray:
    """(len(sets), N - s) longdouble weights a with G[F]^T a = u to longdouble accuracy: the
    float64 LU solution (:func:`gauss_batch_weights`), then ``REFINE_STEPS`` corrections, each
    a float64 LU solve of the residual computed in longdouble."""
    idx = np.asarray(sets, dtype=np.int64)
    a = gauss_batch_weights(G, u, idx).astype(LD)
    if idx.ndim != 2 or idx.shape[1] != G.shape[1] or len(idx) == 0:
        return a
    stack = np.transpose(G[idx], (0, 2, 1))  # (count, r, r): G[F]^T
    stack_ld = stack.astype(LD)
    u_ld = u.astype(LD)
    for _ in range(REFINE_STEPS):
        res = u_ld[None, :] - np.einsum("cij,cj->ci", stack_ld, a)
        try:
            d = np.linalg.solve(stack, res.astype(np.float64)[..., None])[..., 0]
        except np.linalg.LinAlgError:
            r64 = res.astype(np.float64)
            d = np.array(
                [np.linalg.lstsq(S, v, rcond=None)[0] for S, v in zip(stack, r64, strict=True)]
            )
        a = a + d.astype(LD)
    return a
