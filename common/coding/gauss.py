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
