"""One tier of a code: N nodes, tolerance s, items with holder sets, and its decoder.

A :class:`Tier` is what both levels of a hierarchical code (the edges under the master, the
workers under one edge) and the single level of a flat code are made of. Five kinds:

- ``lagrange``: the polynomial code of spec §3 (any holder sets with |T_k| >= s+1);
- ``gauss``: the same support with seeded random Gaussian coefficients (common/coding/gauss.py),
  stable for any tier size; chosen where the Lagrange points are not accurate enough;
- ``fr``: fractional repetition, nodes in groups of s+1, each item held by one whole group,
  all coefficients 1 (no numerical error);
- ``unit``: s = 0, every node must answer, coefficient 1/|T_k| for each holder, weights 1;
- ``ignore``: not a code: the first N-s answers are summed and rescaled by N/(N-s).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from common.coding.errors import DecodeError
from common.coding.gauss import (
    GAUSS_SEEDS,
    LD,
    gauss_decode_weights,
    gauss_encoding_matrix,
    gauss_generator,
    warn_if_narrow,
    wide_batch_weights,
    wide_encoding_matrix,
)
from common.coding.lagrange import (
    DEFAULT_POINTS,
    decode_weights,
    encoding_matrix,
    ordering_candidates,
    tier_points,
)

TIER_KINDS = ("lagrange", "gauss", "fr", "unit", "ignore")
SEARCH_MAX_N = 32  # larger tiers use the first ordering: the search would cost seconds
SMALL_TIER_SETS = 70  # a Gaussian tier with at most this many straggler sets (N <= 8) ...
SMALL_TIER_SEEDS = 64  # ... picks its seed among this many by its worst amplification
_CACHE_SIZE = 256  # responder sets remembered per tier (decode runs every iteration)


@dataclass(frozen=True, eq=False)
class Tier:
    """A one-level code. ``B`` has shape (N, n_items); ``holders[k]`` are the nodes of item k."""

    kind: str
    N: int
    s: int
    holders: tuple[tuple[int, ...], ...]
    B: np.ndarray
    points: np.ndarray | None = None
    beta: float = 0.0
    group: np.ndarray | None = None  # fr only: group id of each node (-1: holds nothing)
    label: str = "tier"  # used in error messages, e.g. "edge 2" or "master"
    order: int = 0  # lagrange only: index into ordering_candidates(N) for "equi-search"
    seed: int | None = None  # gauss only: the seed of G and u
    gen: np.ndarray | None = None  # gauss only: G, shape (N, N - s)
    target: np.ndarray | None = None  # gauss only: u, shape (N - s,)
    # gauss only, extended precision (docs/numerics.md "Wide tiers"): B to longdouble, the
    # weights refined to longdouble, vectors sent as hi + lo and combined in longdouble. ``B``
    # is then this matrix rounded to float64.
    B_wide: np.ndarray | None = None
    _cache: dict[tuple[int, ...], np.ndarray] = field(default_factory=dict, repr=False)

    @property
    def wide(self) -> bool:
        return self.B_wide is not None

    @property
    def needed(self) -> int:
        """Responders needed to decode: N - s."""
        return self.N - self.s

    def weights(self, responders: Sequence[int], what: str = "nodes") -> np.ndarray:
        """Decode weights, one per responder in the order given; only the first N-s non-zero.

        Raises :class:`DecodeError` for too few, repeated or out-of-range responders.
        """
        return self.wide_weights(responders, what).astype(np.float64)

    def wide_weights(self, responders: Sequence[int], what: str = "nodes") -> np.ndarray:
        """As :meth:`weights`, in longdouble for a wide tier (float64 for the others)."""
        resp = [int(r) for r in responders]
        if len(resp) < self.needed:
            raise DecodeError(
                f"{self.label}: needs {self.needed} of its {self.N} {what} (tolerates "
                f"{self.s} stragglers) but only {len(resp)} responded: short by "
                f"{self.needed - len(resp)}"
            )
        bad = [r for r in resp if not 0 <= r < self.N]
        if bad:
            raise DecodeError(f"{self.label}: responders {bad} out of range 0..{self.N - 1}")
        if len(set(resp)) != len(resp):
            raise DecodeError(f"{self.label}: repeated responders in {resp}")
        first = resp[: self.needed]
        key = tuple(sorted(first))
        w_sorted = self._cache.get(key)
        if w_sorted is None:
            w_sorted = self._compute(key)
            if len(self._cache) >= _CACHE_SIZE:
                self._cache.pop(next(iter(self._cache)), None)
            self._cache[key] = w_sorted
        out = np.zeros(len(resp), dtype=w_sorted.dtype)
        pos = {node: idx for idx, node in enumerate(key)}
        out[: self.needed] = [w_sorted[pos[r]] for r in first]
        return out

    def _compute(self, nodes: tuple[int, ...]) -> np.ndarray:
        """Weights for a sorted responder set of exactly N - s nodes."""
        if self.kind == "lagrange":
            assert self.points is not None
            return decode_weights(self.points[list(nodes)], self.beta)
        if self.kind == "gauss":
            assert self.gen is not None and self.target is not None
            if self.wide:
                return wide_batch_weights(self.gen, self.target, [nodes])[0]
            return gauss_decode_weights(self.gen, self.target, nodes)
        if self.kind == "unit":
            return np.ones(len(nodes))
        if self.kind == "ignore":
            return np.full(len(nodes), self.N / len(nodes))
        # fr: the first responder of each group gets weight 1 (N - s answers cover every group)
        assert self.group is not None
        w = np.zeros(len(nodes))
        seen: set[int] = set()
        for idx, node in enumerate(nodes):
            g = int(self.group[node])
            if g >= 0 and g not in seen:
                seen.add(g)
                w[idx] = 1.0
        return w


def frozen(a: np.ndarray) -> np.ndarray:
    """Mark an array read-only: codes are shared by every iteration and must not drift."""
    a.flags.writeable = False
    return a


def lagrange_tier(
    N: int,
    s: int,
    holders: Sequence[Sequence[int]],
    points: str = DEFAULT_POINTS,
    label: str = "",
    order: int | None = None,
) -> Tier:
    """A Lagrange tier over holder sets with |T_k| >= s+1 (``unit`` when s = 0, ``fr`` when
    the holder sets already are disjoint groups).

    With ``points="equi-search"`` and ``order=None`` every ordering candidate (for N up to
    ``SEARCH_MAX_N``) is scored by its worst-case error estimate and the best kept; pass the
    recorded ``order`` to rebuild the same tier without searching.
    """
    hs = tuple(tuple(int(x) for x in T) for T in holders)
    if s == 0:
        B = np.zeros((N, len(hs)))
        for k, T in enumerate(hs):
            B[list(T), k] = 1.0 / len(T)
        return Tier("unit", N, 0, hs, B, label=label or "tier")
    if disjoint_groups(hs):
        # the placement already is a fractional repetition at this tier: 0/1, no rounding
        return fr_tier(N, s, hs, label=label)
    if points != "equi-search" or order is not None:
        return _lagrange(N, s, hs, points, label, order or 0)
    if N > SEARCH_MAX_N:
        return _lagrange(N, s, hs, points, label, 0)
    return _lagrange(N, s, hs, points, label, best_order(N, s, tuple(sorted(set(hs))), points))


@functools.lru_cache(maxsize=256)
def best_order(N: int, s: int, holder_sets: tuple[tuple[int, ...], ...], points: str) -> int:
    """Index of the ordering candidate with the smallest worst-case error estimate.

    Depends only on the distinct holder sets (given sorted); cached because the optimiser
    and the services rebuild the same codes. Candidates are compared in quarter-decades and
    the first wins ties, so last-bit differences between platforms' libm cannot flip the
    choice (short of a score landing on a bucket edge).
    """
    from common.coding.numerics import EPS, tier_error

    best: tuple[int, int] | None = None
    for idx in range(len(ordering_candidates(N))):
        tier = _lagrange(N, s, holder_sets, points, "search", idx)
        delta, amp = tier_error(tier, exhaustive_limit=500, samples=300)
        score = math.floor(4 * math.log10(max(delta + amp * EPS, 1e-300)))
        if best is None or score < best[0]:
            best = (score, idx)
    assert best is not None
    return best[1]


def _lagrange(
    N: int, s: int, hs: tuple[tuple[int, ...], ...], points: str, label: str, order: int
) -> Tier:
    pts, beta = tier_points(N, points, order)
    B = encoding_matrix(pts, beta, hs)
    return Tier("lagrange", N, s, hs, B, points=pts, beta=beta, label=label or "tier", order=order)


def gauss_tier(
    N: int,
    s: int,
    holders: Sequence[Sequence[int]],
    label: str = "",
    seed: int | None = None,
    wide: bool = False,
) -> Tier:
    """A random-Gaussian tier over holder sets with |T_k| >= s+1 (``unit`` when s = 0, ``fr``
    when the holder sets are disjoint groups, as for :func:`lagrange_tier`).

    With ``seed=None`` the seeds 0..GAUSS_SEEDS-1 are scored by their worst-case error
    estimate and the best kept (the choice travels in the code's spec); pass the recorded
    ``seed`` to rebuild the same tier without searching. ``wide``: the extended-precision
    version of the same code (:func:`widen`).
    """
    hs = tuple(tuple(int(x) for x in T) for T in holders)
    if s == 0 or disjoint_groups(hs):
        return lagrange_tier(N, s, hs, label=label)
    if seed is None:
        seed = best_seed(N, s, tuple(sorted(set(hs))))
    tier = _gauss(N, s, hs, label, seed)
    return widen(tier) if wide else tier


def widen(tier: Tier) -> Tier:
    """The wide (extended-precision) version of a Gaussian tier: same G, u and support; B and
    the decode weights refined to longdouble (common/coding/gauss.py). Warns once where
    longdouble is only float64."""
    if tier.kind != "gauss" or tier.gen is None or tier.target is None:
        raise ValueError(f"{tier.label}: only a gauss tier can be wide, not {tier.kind}")
    if tier.wide:
        return tier
    warn_if_narrow()
    B_wide = wide_encoding_matrix(tier.gen, tier.target, tier.holders)
    return Tier(
        "gauss",
        tier.N,
        tier.s,
        tier.holders,
        frozen(B_wide.astype(np.float64)),
        label=tier.label,
        seed=tier.seed,
        gen=tier.gen,
        target=tier.target,
        B_wide=frozen(B_wide.astype(LD)),
    )


@functools.lru_cache(maxsize=256)
def best_seed(N: int, s: int, holder_sets: tuple[tuple[int, ...], ...]) -> int:
    """The seed (of 0..GAUSS_SEEDS-1) with the smallest worst-case error estimate; compared
    in quarter-decades, the first winning ties (as :func:`best_order`).

    A tier with at most ``SMALL_TIER_SETS`` straggler sets (the master's tier, n <= 8) is
    scored instead over ``SMALL_TIER_SEEDS`` seeds by its worst amplification over every set
    (it multiplies the worker tiers' errors; measured at n = 8, s_e = 4: 156 with seed 0 of
    0..5, 61 with the best of 64). Larger tiers are scored with the full estimate
    (``tier_estimate``: the same patterns the code's estimate uses, and remembered for it):
    a 300-pattern score picked seeds whose full estimate was up to 20x worse (Gaussian
    submatrices have a heavy-tailed condition number)."""
    from common.coding.numerics import tier_error, tier_estimate

    if math.comb(N, N - s) <= SMALL_TIER_SETS:
        # a tiny tier (the master's, n <= 8): every straggler set is scored, over many seeds,
        # by its worst amplification A, which multiplies every error below it (the worker
        # tiers'); compared in 1/16 decades, the first winning ties
        scored = []
        for seed in range(SMALL_TIER_SEEDS):
            _, amp = tier_error(_gauss(N, s, holder_sets, "search", seed), exhaustive_limit=10**4)
            scored.append((math.floor(16 * math.log10(max(amp, 1e-300))), seed))
        return min(scored)[1]
    best: tuple[int, int] | None = None
    for seed in range(GAUSS_SEEDS):
        est = tier_estimate(_gauss(N, s, holder_sets, "search", seed))
        score = math.floor(4 * math.log10(max(est, 1e-300)))
        if best is None or score < best[0]:
            best = (score, seed)
    assert best is not None
    return best[1]


def _gauss(N: int, s: int, hs: tuple[tuple[int, ...], ...], label: str, seed: int) -> Tier:
    G, u = gauss_generator(N, s, seed)
    B = gauss_encoding_matrix(G, u, hs)
    return Tier("gauss", N, s, hs, B, label=label or "tier", seed=int(seed), gen=G, target=u)


def disjoint_groups(holders: Sequence[Sequence[int]]) -> bool:
    """True when any two holder sets are equal or disjoint (they then partition their nodes)."""
    owner: dict[int, frozenset[int]] = {}
    for T in holders:
        group = frozenset(T)
        for node in group:
            if owner.setdefault(node, group) != group:
                return False
    return True


def fr_tier(N: int, s: int, holders: Sequence[Sequence[int]], label: str = "") -> Tier:
    """A 0/1 fractional-repetition tier: holder sets pairwise equal or disjoint, each >= s+1.

    Every holder gets coefficient 1; the decoder gives weight 1 to the first responder of each
    group (N - s responders meet every group, since missing one takes s+1 stragglers).
    """
    hs = tuple(tuple(int(x) for x in T) for T in holders)
    if not disjoint_groups(hs) or any(len(T) < s + 1 for T in hs):
        raise ValueError("fr tier: holder sets must be disjoint groups of >= s+1 nodes")
    B = np.zeros((N, len(hs)))
    group = np.full(N, -1, dtype=np.int64)
    for k, T in enumerate(hs):
        B[list(T), k] = 1.0
        group[list(T)] = min(T)
    return Tier("fr", N, s, hs, B, group=group, label=label or "tier")


def ignore_tier(N: int, s: int, holders: Sequence[Sequence[int]], label: str = "") -> Tier:
    """Uncoded placement, waits for N - s nodes and rescales by N/(N - s) (approximate)."""
    hs = tuple(tuple(int(x) for x in T) for T in holders)
    B = np.zeros((N, len(hs)))
    for k, T in enumerate(hs):
        B[list(T), k] = 1.0 / len(T)
    return Tier("ignore", N, s, hs, B, label=label or "tier")
