"""Lagrange ("polynomial") gradient codes for one tier, in float64 (spec §3, step 3).

One tier has N nodes at distinct real points α_0..α_{N-1}, a decode point β outside them and a
tolerance s; item k is held by the node set T_k (|T_k| >= s+1). The encoding coefficient of
node i for item k is c_k(α_i) with

    c_k(x) = prod_{j not in T_k} (x - α_j) / (β - α_j),

and the decoder for a responder set F (|F| = N - s) is the Lagrange basis at β on F. Both are
computed in forms that neither overflow nor lose accuracy for N up to thousands: products in
log-magnitude form, decode weights in the barycentric form (which sums to 1 by construction).
The choice of points is measured in docs/numerics.md.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

# Point families measured in docs/numerics.md; the default is the best one measured.
POINT_KINDS = (
    "equi-search",
    "equi-bitrev",
    "equi-sorted",
    "cheb-bitrev",
    "cheb-sorted",
    "cheb-end",
    "integers",
)
DEFAULT_POINTS = "equi-search"
MAX_CANDIDATES = 12  # orderings tried by "equi-search"


def bit_reversal_ranks(N: int) -> np.ndarray:
    """(N,) ranks: node j gets the rank of bit-reverse(j) among 0..N-1 (a low-discrepancy order).

    Index-consecutive node sets (the holders and the adversarial stragglers of the cyclic
    placements) are then spread over the whole interval instead of bunched at one end.
    """
    bits = max(1, (N - 1).bit_length())
    keys = [int(format(j, f"0{bits}b")[::-1], 2) for j in range(N)]
    return np.argsort(np.argsort(keys))


def ordering_candidates(N: int) -> list[np.ndarray]:
    """Deterministic list of node->point rank orderings tried by ``equi-search``.

    Index 0 is the bit-reversal order, 1 the golden-ratio (Kronecker) order, then the stride
    orders j -> j*t mod N for the strides t coprime to N, nearest to N/φ² and N/φ first;
    at most ``MAX_CANDIDATES``.
    """
    out = [bit_reversal_ranks(N)]
    if N <= 2:
        return out
    phi = (math.sqrt(5.0) - 1.0) / 2.0
    out.append(np.argsort(np.argsort((np.arange(N) * phi) % 1.0, kind="stable")))
    strides = sorted(
        (t for t in range(2, N - 1) if math.gcd(t, N) == 1),
        key=lambda t: (min(abs(t - N * phi * phi), abs(t - N * phi)), t),
    )
    for t in strides[: MAX_CANDIDATES - 2]:
        out.append((np.arange(N) * t) % N)
    return out


def tier_points(N: int, kind: str = DEFAULT_POINTS, order: int = 0) -> tuple[np.ndarray, float]:
    """Evaluation points α (shape (N,)) and decode point β for an N-node tier.

    ``equi-search`` (default): the equispaced points below, in the ordering
    ``ordering_candidates(N)[order]``; the tier builder tries every candidate and keeps the
    one with the smallest worst-case error (the choice travels in the code's spec).
    ``equi-bitrev``: N equispaced points of [-1, 1] assigned to node indices in
    bit-reversal order; β midway between the two central points (for odd N, between the
    centre and its right neighbour). ``equi-sorted``: the same in increasing order.
    ``cheb-bitrev`` / ``cheb-sorted``: first-kind Chebyshev nodes -cos((2j+1)π/2N), same β rule.
    ``cheb-end``: Chebyshev nodes in increasing order, β = 1 (just outside, at the end).
    ``integers``: α = 1..N, β = 0 (the spec's worked example; unstable for large N).
    See docs/numerics.md for the measured comparison.
    """
    if N < 1:
        raise ValueError(f"N: a tier needs at least one node, got {N}")
    if kind not in POINT_KINDS:
        raise ValueError(f"points: unknown kind {kind!r}; known: {', '.join(POINT_KINDS)}")
    if kind == "integers":
        return np.arange(1, N + 1, dtype=np.float64), 0.0
    if N == 1:
        return np.zeros(1), 1.0
    j = np.arange(N)
    if kind.startswith("equi"):
        pts = (2.0 * j - (N - 1)) / (N - 1)  # exactly symmetric about 0
    else:
        pts = -np.cos((2 * j + 1) * np.pi / (2 * N))
    if kind == "cheb-end":
        return pts, 1.0
    # β between the two central points: 0 for even N; for odd N (0 is a point) the midpoint of
    # the centre and its right neighbour
    beta = 0.0 if N % 2 == 0 else float(pts[N // 2 + 1]) / 2
    if kind == "equi-search":
        cands = ordering_candidates(N)
        if not 0 <= order < len(cands):
            raise ValueError(f"order: {order} out of range 0..{len(cands) - 1} for N={N}")
        pts = pts[cands[order]]
    elif kind.endswith("bitrev"):
        pts = pts[bit_reversal_ranks(N)]
    return pts, beta


def encoding_matrix(
    points: np.ndarray, beta: float, holders: Sequence[Sequence[int]]
) -> np.ndarray:
    """Encoding coefficients B[i, k] = c_k(α_i) of one tier.

    Parameters
    ----------
    points : (N,) float64, distinct, none equal to ``beta``.
    beta : decode point.
    holders : for each of the n_items items, the node indices holding it.

    Returns
    -------
    (N, n_items) float64, zero outside the holders.

    For a holder i of item k, c_k(α_i) = R_i / prod_{j in T_k, j != i} d_ij where
    d_ij = (α_i - α_j)/(β - α_j) and R_i = prod_{j != i} d_ij; R_i is kept as sign and log
    magnitude so no intermediate product overflows. Cost O(N² + sum_k |T_k|²).
    """
    N = len(points)
    diff = points[:, None] - points[None, :]
    with np.errstate(divide="ignore"):
        logd = np.log(np.abs(diff)) - np.log(np.abs(beta - points))[None, :]
    sgnd = np.sign(diff) * np.sign(beta - points)[None, :]
    np.fill_diagonal(logd, 0.0)
    np.fill_diagonal(sgnd, 1.0)
    log_r = logd.sum(axis=1)
    sgn_r = np.prod(sgnd, axis=1)
    B = np.zeros((N, len(holders)))
    columns: dict[tuple[int, ...], tuple[np.ndarray, np.ndarray]] = {}
    for k, T in enumerate(holders):
        key = tuple(T)
        if key not in columns:  # items with the same holders share one column: compute once
            t = np.asarray(key, dtype=np.int64)
            sub_log = logd[np.ix_(t, t)].sum(axis=1)
            sub_sgn = np.prod(sgnd[np.ix_(t, t)], axis=1)
            columns[key] = (t, sgn_r[t] * sub_sgn * np.exp(log_r[t] - sub_log))
        t, values = columns[key]
        B[t, k] = values
    return B


def decode_weights(points: np.ndarray, beta: float) -> np.ndarray:
    """Lagrange basis at β on the given points, in barycentric form.

    Parameters
    ----------
    points : (r,) float64, distinct, none equal to β.

    Returns
    -------
    (r,) float64 weights a with sum_j a_j p(α_j) = p(β) for every polynomial p of degree < r.

    a_j = (w_j/(β-α_j)) / sum_l (w_l/(β-α_l)) with w_j = 1/prod_{l != j}(α_j - α_l); any
    common scale of w cancels, so w is normalised in log form to avoid under/overflow.
    """
    r = len(points)
    if r == 1:
        return np.ones(1)
    diff = points[:, None] - points[None, :]
    np.fill_diagonal(diff, 1.0)
    log_w = -np.log(np.abs(diff)).sum(axis=1)
    sgn_w = np.prod(np.sign(diff), axis=1)
    w = sgn_w * np.exp(log_w - log_w.max())
    t = w / (beta - points)
    return t / t.sum()
