"""Worst-case float64 decode error of a code, estimated tier by tier (docs/numerics.md).

For a responder set F of one tier, the decoded coefficient of item k is
e_k(F) = sum_{j in F} a_j B[j, k] (exactly 1 in exact arithmetic). We record

- δ(F) = max_k |e_k(F) - 1|: the error already in the float64 weights and coefficients;
- A(F) = max_k sum_{j in F} |a_j B[j, k]|: the amplification of rounding in the vectors.

The relative error of the decoded gradient is bounded, to first order, by δ + A·ε. For two
tiers, edge i's output carries its own worker-tier error ε_i, which the master weights
amplify: err ≤ max_F [δ_e(F) + max_k sum_{i in F} |a_i B^e[i,k]| (ε_i + ε)].
Patterns are enumerated exhaustively up to ``exhaustive_limit`` straggler sets, otherwise a
seeded random sample plus the adversarial consecutive (cyclic) windows.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Callable, Iterator

import numpy as np

from common.coding.gauss import LD, WIDE_EPS, gauss_batch_weights, wide_batch_weights
from common.coding.tier import Tier

EPS = float(np.finfo(np.float64).eps)


def tier_eps(tier: Tier) -> float:
    """Unit rounding of a tier's vector arithmetic: float64, or the wide pipeline's (longdouble
    accumulation, hi + lo vectors) for a wide tier, whose output is then rounded once to
    float64 (the ε the hierarchical estimate adds per edge)."""
    return WIDE_EPS if tier.wide else EPS


EXHAUSTIVE_LIMIT = 5_000
SAMPLES = 2_000


def straggler_patterns(
    N: int,
    s: int,
    exhaustive_limit: int = EXHAUSTIVE_LIMIT,
    samples: int = SAMPLES,
    seed: int = 0,
    points: np.ndarray | None = None,
) -> Iterator[tuple[int, ...]]:
    """Sorted responder sets of size N - s: all of them, or adversarial ones + a random sample.

    The adversarial straggler sets are the cyclic windows of s consecutive node indices and,
    when ``points`` is given, the windows of s consecutive points in increasing order.
    """
    for row in pattern_array(N, s, exhaustive_limit, samples, seed, points).tolist():
        yield tuple(row)


def pattern_array(
    N: int,
    s: int,
    exhaustive_limit: int = EXHAUSTIVE_LIMIT,
    samples: int = SAMPLES,
    seed: int = 0,
    points: np.ndarray | None = None,
) -> np.ndarray:
    """The patterns of :func:`straggler_patterns` as a read-only (count, N - s) int64 array.

    Remembered per arguments: every tier of one size is scored on the same patterns (the seed
    and ordering searches score up to 12 tiers each), and drawing them is Python-level work.
    """
    base = _base_patterns(N, s, exhaustive_limit, samples, seed)
    if points is None or math.comb(N, s) <= exhaustive_limit:
        return base
    # the windows of consecutive points (not cached: every ordering has its own)
    order = np.argsort(points)
    gone = np.array([order[start : start + s] for start in range(N - s + 1)], dtype=np.int64)
    out = np.unique(np.concatenate([base, _complement(N, gone)]), axis=0)
    out.flags.writeable = False
    return out


def _complement(N: int, gone: np.ndarray) -> np.ndarray:
    """Sorted responder rows (count, N - s) of the straggler rows ``gone`` (count, s)."""
    keep = np.ones((len(gone), N), dtype=bool)
    keep[np.arange(len(gone))[:, None], gone] = False
    return np.nonzero(keep)[1].reshape(len(gone), N - gone.shape[1])


@functools.lru_cache(maxsize=1024)
def _base_patterns(N: int, s: int, exhaustive_limit: int, samples: int, seed: int) -> np.ndarray:
    """Every pattern (in the order of ``itertools.combinations`` of the stragglers), or the
    cyclic windows of node indices and ``samples`` random ones, sorted, without repeats."""
    if s == 0:
        out = np.arange(N, dtype=np.int64)[None, :]
    elif math.comb(N, s) <= exhaustive_limit:
        gone = np.array(list(itertools.combinations(range(N), s)), dtype=np.int64)
        out = _complement(N, gone)
    else:
        cyclic = (np.arange(N)[:, None] + np.arange(s)[None, :]) % N
        rng = np.random.default_rng(seed)
        drawn = np.array([rng.choice(N, size=s, replace=False) for _ in range(samples)])
        drawn = drawn.reshape(samples, s).astype(np.int64)
        out = np.unique(_complement(N, np.concatenate([cyclic, drawn])), axis=0)
    out = np.ascontiguousarray(out, dtype=np.int64)
    out.flags.writeable = False
    return out


def adversarial_patterns(N: int, s: int, points: np.ndarray | None = None) -> list[tuple[int, ...]]:
    """Sorted responder sets (size N - s) whose stragglers are consecutive, without repeats.

    First the N cyclic windows of s consecutive node indices (wrap-around included: the worst
    case of the cyclic placements), then, when ``points`` (shape (N,)) is given, the
    N - s + 1 windows of s consecutive points in increasing order (the stragglers bunched at
    one end or in the middle of the interval).
    """
    windows = [{(start + t) % N for t in range(s)} for start in range(N)]
    if points is not None:
        order = np.argsort(points).tolist()
        windows += [set(order[start : start + s]) for start in range(N - s + 1)]
    out: dict[tuple[int, ...], None] = {}
    for gone in windows:
        out.setdefault(tuple(j for j in range(N) if j not in gone), None)
    return list(out)


def _distinct_columns(tier: Tier) -> tuple[np.ndarray, list[tuple[int, ...]]]:
    """Columns of B with distinct holder sets (items sharing holders have equal columns)."""
    first: dict[tuple[int, ...], int] = {}
    for k, T in enumerate(tier.holders):
        first.setdefault(tuple(sorted(T)), k)
    cols = list(first.values())
    B = tier.B if tier.B_wide is None else tier.B_wide
    return B[:, cols], list(first)


def tier_error(
    tier: Tier,
    node_error: np.ndarray | None = None,
    exhaustive_limit: int = EXHAUSTIVE_LIMIT,
    samples: int = SAMPLES,
    seed: int = 0,
) -> tuple[float, float]:
    """Worst (δ, A) of one tier over its straggler patterns; see the module docstring.

    If ``node_error`` (shape (N,)) is given, A is weighted by it: max_k sum_j |a_j B_jk| ε_j.
    ``seed`` draws the random patterns (the builder scores with 0; a verification draws others).
    """
    if tier.N == 0 or tier.B.shape[1] == 0:
        return 0.0, 0.0
    idx = pattern_array(tier.N, tier.s, exhaustive_limit, samples, seed, tier.points)
    return tier_error_on(tier, idx, node_error)


def tier_error_on(
    tier: Tier, idx: np.ndarray, node_error: np.ndarray | None = None
) -> tuple[float, float]:
    """Worst (δ, A) of one tier over the responder sets ``idx`` (shape (count, N - s)).

    The weights of all sets come from one batched computation and are scattered into a
    (count, N) matrix W (zero off each set), so δ and A are two matrix products with the
    distinct columns of B, W B and |W| |B|, instead of a gather of B's rows per set.
    """
    B, _ = _distinct_columns(tier)
    dtype = LD if tier.wide else np.float64
    absB = np.abs(B).astype(np.float64)
    if node_error is not None:
        absB = absB * node_error[:, None]
    worst_delta = 0.0
    worst_amp = 0.0
    chunk = max(1, 4_000_000 // max(1, tier.N * max(idx.shape[1], B.shape[1])))
    rows_of = np.arange(min(chunk, len(idx)))[:, None]
    for lo in range(0, len(idx), chunk):  # bounded memory for many sets of large tiers
        sets = idx[lo : lo + chunk]
        W = np.zeros((len(sets), tier.N), dtype=dtype)
        W[rows_of[: len(sets)], sets] = batch_weights(tier, sets)
        worst_delta = max(worst_delta, float(np.max(np.abs(W @ B - 1))))
        worst_amp = max(worst_amp, float(np.max(np.abs(W).astype(np.float64) @ absB)))
    return worst_delta, worst_amp


def batch_weights(tier: Tier, sets: np.ndarray) -> np.ndarray:
    """(count, N - s) decode weights of sorted responder sets (each row as ``Tier._compute``)."""
    if tier.kind == "gauss":  # one batched LU solve instead of thousands of small ones
        assert tier.gen is not None and tier.target is not None
        if tier.wide:
            return wide_batch_weights(tier.gen, tier.target, sets)
        return gauss_batch_weights(tier.gen, tier.target, sets)
    if tier.kind == "lagrange":
        assert tier.points is not None
        return batch_lagrange_weights(tier.points[sets], tier.beta)
    return np.array([tier._compute(tuple(F)) for F in sets.tolist()])


def batch_lagrange_weights(points: np.ndarray, beta: float) -> np.ndarray:
    """Row-wise :func:`common.coding.lagrange.decode_weights` of ``points`` (count, r), the
    same operations on a stack (the barycentric form, normalised in log magnitude)."""
    count, r = points.shape
    if r == 1:
        return np.ones((count, 1))
    diff = points[:, :, None] - points[:, None, :]
    eye = np.eye(r, dtype=bool)
    diff[:, eye] = 1.0
    log_w = -np.log(np.abs(diff)).sum(axis=2)
    sgn_w = np.prod(np.sign(diff), axis=2)
    w = sgn_w * np.exp(log_w - log_w.max(axis=1, keepdims=True))
    t = w / (beta - points)
    return t / t.sum(axis=1, keepdims=True)


_TIER_ESTIMATES: dict[tuple, float] = {}
_TIER_ESTIMATES_MAX = 8192  # small floats; the full grid (bench_coding) scores ~4,000 tiers


def tier_key(tier: Tier) -> tuple:
    """What determines a tier's coefficients and decoder (tiers with equal keys are equal)."""
    pts = None if tier.points is None else tier.points.tobytes()
    holders = tuple(sorted(map(tuple, tier.holders)))
    return (tier.kind, tier.N, tier.s, pts, tier.beta, tier.seed, holders, tier.wide)


def tier_estimate(tier: Tier) -> float:
    """δ + A·ε of one tier on its own (its worst-case relative decode error, first order; ε
    is :func:`tier_eps`: the wide pipeline's for a wide tier);
    remembered per :func:`tier_key` (the builders compare the same tiers several times)."""
    key = tier_key(tier)
    if key not in _TIER_ESTIMATES:
        if len(_TIER_ESTIMATES) >= _TIER_ESTIMATES_MAX:
            _TIER_ESTIMATES.pop(next(iter(_TIER_ESTIMATES)))
        delta, amp = tier_error(tier)
        _TIER_ESTIMATES[key] = delta + amp * tier_eps(tier)
    return _TIER_ESTIMATES[key]


def hierarchical_error_estimate(code: object) -> float:
    """δ_e + max_F max_k sum_i |a_i B^e_ik| (ε_i + ε), with ε_i = δ_i + A_i ε per edge."""
    edge_tier: Tier = code.edge_tier  # type: ignore[attr-defined]
    worker_tiers: tuple[Tier, ...] = code.worker_tiers  # type: ignore[attr-defined]
    per_edge = np.array([tier_estimate(tier) for tier in worker_tiers])
    delta_e, amp_e = tier_error(edge_tier, node_error=per_edge + EPS)
    return delta_e + amp_e


def hierarchical_pattern_count(code: object) -> int:
    """Number of distinct decodes: sum over edge sets F (|F| = n - s_e) of prod C(m_i, s_w).

    That sum is the elementary symmetric polynomial of degree n - s_e in the per-edge counts,
    computed by dynamic programming (enumerating the edge sets would take C(n, s_e) steps).
    """
    m = code.workers_per_edge  # type: ignore[attr-defined]
    n, s_e, s_w = len(m), code.s_e, code.s_w  # type: ignore[attr-defined]
    e = [1] + [0] * n  # e[d]: sum over d-subsets of the edges seen so far
    for mi in m:
        c = math.comb(mi, s_w)
        for d in range(n, 0, -1):
            e[d] += e[d - 1] * c
    return e[n - s_e]


def pattern_decoder(
    code: object, P: int = 8, seed: int = 0
) -> tuple[Callable[[tuple[int, ...], dict[int, tuple[int, ...]]], float], np.random.Generator]:
    """``decode(F, choice)``: the relative error of the runtime's decode (module docstring of
    :func:`measured_decode_error`) for edge responders ``F`` and worker responders
    ``choice[i]`` of each edge in F, on random partition gradients g_k (shape (K, P), standard
    normal from ``seed``); and the generator, to draw patterns from after the gradients."""
    from common.coding.combine import combine_wide, split_wide

    rng = np.random.default_rng(seed)
    G = rng.standard_normal((code.K, P))  # type: ignore[attr-defined]
    want = G.sum(axis=0)
    n = code.n_edges  # type: ignore[attr-defined]
    wide = [bool(code.worker_tiers[i].wide) for i in range(n)]  # type: ignore[attr-defined]
    G_ld = G.astype(LD)

    def coded(i: int, j: int, p: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray | None]:
        """What worker (i, j) sends: float64 z, or for a wide tier hi + lo (the runtime's
        pipeline: longdouble coefficients and accumulation, then ``split_wide``)."""
        if not len(p):
            return np.zeros(P), (np.zeros(P, dtype=np.float32) if wide[i] else None)
        if wide[i]:
            c = code.worker_coefficients_wide(i, j)  # type: ignore[attr-defined]
            return split_wide(c @ G_ld[list(p)])
        return np.asarray(code.worker_coefficients[i][j]) @ G[list(p)], None  # type: ignore[attr-defined]

    z = [[coded(i, j, tuple(p)) for j, p in enumerate(code.placement[i])] for i in range(n)]  # type: ignore[attr-defined]
    edge_out: dict[tuple[int, tuple[int, ...]], np.ndarray] = {}

    def y(i: int, F_i: tuple[int, ...]) -> np.ndarray:
        if (i, F_i) not in edge_out:
            if wide[i]:
                w = code.edge_decode_weights_wide(i, F_i)  # type: ignore[attr-defined]
                los = [z[i][j][1] for j in F_i]
                edge_out[(i, F_i)] = combine_wide(
                    [z[i][j][0] for j in F_i], [lo for lo in los if lo is not None], w
                )
            else:
                w = code.edge_decode_weights(i, F_i)  # type: ignore[attr-defined]
                edge_out[(i, F_i)] = sum(
                    (wj * z[i][j][0] for wj, j in zip(w, F_i, strict=True)), np.zeros(P)
                )
        return edge_out[(i, F_i)]

    def decode(F: tuple[int, ...], choice: dict[int, tuple[int, ...]]) -> float:
        a = code.master_decode_weights(F)  # type: ignore[attr-defined]
        got = sum((ai * y(i, choice[i]) for ai, i in zip(a, F, strict=True)), np.zeros(P))
        return float(np.linalg.norm(got - want) / np.linalg.norm(want))

    return decode, rng


def measured_decode_error(
    code: object,
    P: int = 8,
    exhaustive_limit: int = 100_000,
    samples: int = 10_000,
    seed: int = 0,
) -> tuple[float, int]:
    """Worst relative error ||ĝ - Σ g_k|| / ||Σ g_k|| of the decode the runtime runs, measured
    (float64; for a wide worker tier the longdouble encode, the hi + lo split and the
    longdouble edge combine of ``common.coding.combine``).

    Random partition gradients g_k (shape (K, P), standard normal); every straggler pattern
    if there are at most ``exhaustive_limit``, otherwise ``samples`` random ones plus the
    adversarial ones: every edge set of ``adversarial_patterns`` (consecutive windows of edge
    indices, wrap-around included, and of edge points) combined with every r-th worker
    window, the same r under every edge that answers (so all edges lose their r-th window
    at once). Returns (worst error, patterns tried).
    """
    decode, rng = pattern_decoder(code, P, seed)
    n, m = code.n_edges, code.workers_per_edge  # type: ignore[attr-defined]
    worst, tried = 0.0, 0
    s_e, s_w = code.s_e, code.s_w  # type: ignore[attr-defined]
    if hierarchical_pattern_count(code) <= exhaustive_limit:
        for F in straggler_patterns(n, s_e, exhaustive_limit=10**9):
            for combo in itertools.product(
                *(list(straggler_patterns(m[i], s_w, exhaustive_limit=10**9)) for i in F)
            ):
                worst = max(worst, decode(F, dict(zip(F, combo, strict=True))))
                tried += 1
        return worst, tried
    edge_pts = code.edge_tier.points  # type: ignore[attr-defined]
    edge_sets = list(straggler_patterns(n, s_e, 0, samples // 10 + 1, seed, edge_pts))
    worker_sets = [
        list(
            straggler_patterns(
                m[i],
                s_w,
                0,
                samples // 10 + 1,
                seed + i + 1,
                code.worker_tiers[i].points,  # type: ignore[attr-defined]
            )
        )
        for i in range(n)
    ]
    for t in range(samples):
        F = edge_sets[t % len(edge_sets)]
        choice = {i: worker_sets[i][rng.integers(len(worker_sets[i]))] for i in F}
        worst = max(worst, decode(F, choice))
        tried += 1
    worker_windows = [
        adversarial_patterns(m[i], s_w, code.worker_tiers[i].points)  # type: ignore[attr-defined]
        for i in range(n)
    ]
    rounds = max(len(w) for w in worker_windows)
    for F in adversarial_patterns(n, s_e, edge_pts):
        for r in range(rounds):
            worst = max(
                worst, decode(F, {i: worker_windows[i][r % len(worker_windows[i])] for i in F})
            )
            tried += 1
    return worst, tried
