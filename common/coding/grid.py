"""The full grid check (issue 16): every homogeneous (n <= 8, m <= 64, s_e, s_w) at the bound.

74,880 codes, each of which takes make_code up to seconds: too slow one by one. But a
homogeneous code's numerics are made of two tiers, and each depends on far less than the code:

- the worker tier of every edge is the cyclic placement of m workers tolerating s_w; its
  distinct holder sets depend only on (m, s_w) -- with K_i = t L (L = m / gcd(m, s_w + 1) the
  smallest), position p has the holders of position floor(p / t) of the smallest placement --
  and items with equal holders have equal columns, so the tier's weights, estimate and error
  are those of :func:`tier_family` (m, s_w) (2,080 families, not 74,880 codes);
- the edge tier likewise depends only on (n, s_e) (36 families);
- the code's estimate and the Lagrange/Gaussian choice (``gauss_choice``, the builder's own
  function) compose the two: with equal per-edge errors c, tier_error(edge, c·1) = (δ_e, c A_e).

Each family is built with the builder's functions (``lagrange_tier`` with its ordering search,
``gauss_tier`` with its seed search), then *verified* on patterns drawn independently of the
ones the searches scored (another seed, twice the samples, every cyclic window, exhaustive up
to ``VERIFY_EXHAUSTIVE``): the seed and ordering searches pick the best of up to 12 tiers on
their own patterns, so re-using those patterns would flatter the result. The composed error
bound δ_e + A_e (δ_w + A_w ε + ε) then bounds the decode error of every pattern of the code
made of those tier patterns (the edge decode error enters the master's decode weighted by
|a_i B^e_ik|, the triangle inequality does the rest); ``bench_coding`` also measures the
worst codes end to end with real vectors (``measured_decode_error``) and checks that
make_code builds exactly the tiers this module assumed.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from common.coding.hierarchical import gauss_choice, wide_choice
from common.coding.numerics import EPS, pattern_array, tier_eps, tier_error, tier_estimate
from common.coding.placement import coverage, cyclic_placement
from common.coding.tier import Tier, gauss_tier, lagrange_tier, widen

VERIFY_SEED = 7919  # not the builder's 0: independent patterns
VERIFY_SAMPLES = 4_000
VERIFY_EXHAUSTIVE = 20_000
MAX_EDGES = 8
MAX_WORKERS = 64


def tier_family(N: int, s: int) -> tuple[tuple[int, ...], ...]:
    """Distinct holder sets (sorted) of the cyclic placement of N nodes tolerating s stragglers,
    from the real placement function at its smallest size (see the module docstring)."""
    L = N // math.gcd(N, s + 1)
    placement = cyclic_placement([N], 0, s, L)
    _, holders = coverage(placement, L, 0, s)
    return tuple(sorted(set(holders[0].values())))


@dataclass(frozen=True)
class TierNumbers:
    """One built tier family: the builder's estimate terms and the independent verification."""

    tier: Tier
    delta: float  # builder's patterns: worst |e_k - 1|
    amp: float  # builder's patterns: worst sum |a_j B_jk|
    verified_delta: float
    verified_amp: float
    patterns: int  # verification patterns

    @property
    def estimate(self) -> float:
        return tier_estimate(self.tier)

    @property
    def verified(self) -> float:
        return self.verified_delta + self.verified_amp * tier_eps(self.tier)


class FamilyCache:
    """Tier families built once: (N, s, kind) -> TierNumbers."""

    def __init__(self) -> None:
        self.tiers: dict[tuple[int, int, str], TierNumbers] = {}
        self.errors: dict[tuple[int, int, str], tuple[float, float]] = {}

    def get(self, N: int, s: int, kind: str) -> TierNumbers:
        key = (N, s, kind)
        if key not in self.tiers:
            holders = tier_family(N, s)
            if kind == "wide":  # the wide version of the gauss family (same seed)
                tier = widen(self.get(N, s, "gauss").tier)
            else:
                tier = (gauss_tier if kind == "gauss" else lagrange_tier)(N, s, holders)
            delta, amp = tier_error(tier)
            pats = pattern_array(N, s, VERIFY_EXHAUSTIVE, VERIFY_SAMPLES, VERIFY_SEED, tier.points)
            vd, va = tier_error(tier, None, VERIFY_EXHAUSTIVE, VERIFY_SAMPLES, VERIFY_SEED)
            self.tiers[key] = TierNumbers(tier, delta, amp, vd, va, len(pats))
        return self.tiers[key]

    def plain_error(self, tier: Tier) -> tuple[float, float]:
        """(δ, A) of a tier on the builder's patterns (unweighted), once per family."""
        key = (tier.N, tier.s, tier.kind)
        if key not in self.errors:
            self.errors[key] = tier_error(tier)
        return self.errors[key]

    def alternative(self, tier: Tier) -> Tier:
        return self.get(tier.N, tier.s, "gauss").tier

    def numbers(self, tier: Tier) -> TierNumbers:
        kind = "lagrange" if tier.kind != "gauss" else "wide" if tier.wide else "gauss"
        return self.get(tier.N, tier.s, kind)


@dataclass(frozen=True)
class GridCode:
    """One homogeneous code of the grid and its figures."""

    n: int
    m: int
    s_e: int
    s_w: int
    variant: str  # "fr" (0/1, no rounding) or "lagrange" (some real-coded tier)
    edge_kind: str
    worker_kind: str
    edge_seed: int | None
    worker_seed: int | None
    estimate: float  # the builder's estimate (what make_code checks against its tolerance)
    verified: float  # composed bound on independent patterns
    worker_wide: bool = False  # the worker tiers are wide (extended precision)

    @property
    def label(self) -> str:
        return f"n={self.n} m={self.m} s_e={self.s_e} s_w={self.s_w}"


def homogeneous_configs(
    max_edges: int = MAX_EDGES, max_workers: int = MAX_WORKERS
) -> Iterator[tuple[int, int, int, int]]:
    """(n, m, s_e, s_w) of every feasible homogeneous code; (m, s_w) outermost so each worker
    family is visited in one block."""
    for m in range(1, max_workers + 1):
        for s_w in range(m):
            for n in range(1, max_edges + 1):
                for s_e in range(n):
                    yield n, m, s_e, s_w


def grid_code(cache: FamilyCache, n: int, m: int, s_e: int, s_w: int) -> GridCode:
    """The tiers make_code builds for ``[m] * n`` at (s_e, s_w), and their figures."""
    if n % (s_e + 1) == 0 and m % (s_w + 1) == 0:  # the 0/1 variant: no rounding at all
        return GridCode(n, m, s_e, s_w, "fr", "fr", "fr", None, None, 0.0, 0.0)
    edge = cache.get(n, s_e, "lagrange").tier
    worker = cache.get(m, s_w, "lagrange").tier
    real = {"lagrange", "gauss"}
    if edge.kind not in real and worker.kind not in real:
        return GridCode(n, m, s_e, s_w, "fr", edge.kind, worker.kind, None, None, 0.0, 0.0)
    edge_error = cache.plain_error

    def estimate(e: Tier, workers: Sequence[Tier]) -> float:
        d, a = edge_error(e)
        return d + a * (tier_estimate(workers[0]) + EPS)

    choice = gauss_choice(edge, [worker] * n, estimate, cache.alternative)
    if choice is not None:
        if choice["edge"] is not None:
            edge = cache.get(n, s_e, "gauss").tier
        if choice["workers"][0] is not None:
            worker = cache.get(m, s_w, "gauss").tier
            wide = wide_choice([worker] * n)
            if wide is not None and wide[0]:
                worker = cache.get(m, s_w, "wide").tier
    est = estimate(edge, [worker])
    if edge.kind in real:
        e_num = cache.numbers(edge)
        e_delta, e_amp = e_num.verified_delta, e_num.verified_amp
    else:  # unit / fr edge tier: exact weights, amplification from the builder's patterns
        e_delta, e_amp = edge_error(edge)
    w_err = cache.numbers(worker).verified if worker.kind in real else 0.0
    verified = e_delta + e_amp * (w_err + EPS)
    return GridCode(
        n,
        m,
        s_e,
        s_w,
        "lagrange",
        edge.kind,
        worker.kind,
        edge.seed,
        worker.seed,
        est,
        verified,
        worker.wide,
    )


def full_grid(
    max_edges: int = MAX_EDGES, max_workers: int = MAX_WORKERS, cache: FamilyCache | None = None
) -> list[GridCode]:
    """Every homogeneous code with n <= max_edges, m <= max_workers, all s_e < n, s_w < m."""
    cache = cache or FamilyCache()
    return [grid_code(cache, *c) for c in homogeneous_configs(max_edges, max_workers)]
