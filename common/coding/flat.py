"""Flat gradient codes over all M workers (Tandon et al., ICML 2017); edges only relay.

``flat-frc``: fractional repetition, workers in groups of s+1 (needs (s+1) | M), 0/1
coefficients. ``flat-crc``: cyclic repetition, worker w holds slots w..w+s (mod M), with the
Lagrange coefficients of spec §3 standing in for Tandon's random-matrix construction (any M - s
rows decode, deterministically and with a measured error). Both have load (s+1)/M.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from common.coding.bounds import MAX_K, check_topology
from common.coding.errors import DecodeError, InfeasibleCodeError
from common.coding.hierarchical import GAUSS_SWITCH
from common.coding.lagrange import DEFAULT_POINTS
from common.coding.placement import Placement
from common.coding.tier import Tier, fr_tier, frozen, gauss_tier, lagrange_tier

FLAT_SCHEMES = ("flat-frc", "flat-crc")


@dataclass(frozen=True, eq=False)
class FlatCode:
    """One-tier code over the M workers; ``decode_weights`` takes (edge, worker) pairs."""

    scheme: str
    n_edges: int
    workers_per_edge: tuple[int, ...]
    s: int
    K: int
    placement: Placement
    worker_coefficients: tuple[tuple[np.ndarray, ...], ...]
    tier: Tier = field(repr=False)
    points: str = DEFAULT_POINTS
    exact: bool = True
    is_flat: bool = True
    _memo: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def variant(self) -> str:
        """``fr`` (0/1, flat-frc) or ``lagrange`` (flat-crc, polynomial or Gaussian), as for
        hierarchical codes."""
        if self.tier.kind in ("fr", "unit"):
            return "fr"
        return "lagrange" if self.tier.kind == "gauss" else self.tier.kind

    @property
    def M(self) -> int:
        return sum(self.workers_per_edge)

    @property
    def D(self) -> int:
        return max(len(p) for edge in self.placement for p in edge)

    @property
    def workers_needed_total(self) -> int:
        return self.M - self.s

    def load_fraction(self, i: int, j: int) -> float:
        return len(self.placement[i][j]) / self.K

    def flat_index(self, i: int, j: int) -> int:
        """Global index of worker (i, j) among the M workers (edge-major)."""
        if not 0 <= i < self.n_edges or not 0 <= j < self.workers_per_edge[i]:
            raise DecodeError(f"worker ({i}, {j}) is not in topology {list(self.workers_per_edge)}")
        return sum(self.workers_per_edge[:i]) + j

    def decode_weights(self, responders: Sequence[tuple[int, int]]) -> np.ndarray:
        """(len(responders),) master weights; only the first M - s are non-zero."""
        return self.tier.weights([self.flat_index(i, j) for i, j in responders], "workers")

    def decode_error_estimate(self) -> float:
        if "error" not in self._memo:
            from common.coding.numerics import tier_error

            delta, amp = tier_error(self.tier)
            self._memo["error"] = delta + amp * float(np.finfo(float).eps)
        return float(self._memo["error"])

    def spec(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "scheme": self.scheme,
            "workers_per_edge": list(self.workers_per_edge),
            "s": self.s,
            "K": self.K,
        }
        if self.points != DEFAULT_POINTS:
            out["points"] = self.points
        if self.tier.kind == "lagrange":
            out["order"] = self.tier.order
        if self.tier.kind == "gauss":
            out["gauss"] = self.tier.seed  # the seed of the Gaussian tier (docs/code-json.md)
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "scheme": self.scheme,
            "n_edges": self.n_edges,
            "workers_per_edge": list(self.workers_per_edge),
            "s": self.s,
            "K": self.K,
            "D": self.D,
            "exact": self.exact,
            "variant": self.variant,
            "placement": [[list(p) for p in edge] for edge in self.placement],
            "worker_coefficients": [
                [[float(c) for c in coefs] for coefs in edge] for edge in self.worker_coefficients
            ],
            "edge_targets": None,
        }


def flat_unit(scheme: str, M: int, s: int) -> int:
    """The partitions of one repetition: K must be a multiple of this (the smallest K)."""
    return M // (s + 1) if scheme == "flat-frc" else M


def check_flat(scheme: str, workers_per_edge: Sequence[int], s: int, K: int | None) -> int:
    """Raise :class:`InfeasibleCodeError` (``field`` s or K) unless ``scheme`` can tolerate
    ``s`` of the M workers with ``K`` partitions; return K (the smallest one when None)."""
    m = check_topology(workers_per_edge)
    M = sum(m)
    if isinstance(s, bool) or not isinstance(s, int | np.integer) or not 0 <= s < M:
        raise InfeasibleCodeError(
            f"s={s!r}: flat codes tolerate 0 <= s <= M-1 = {M - 1} stragglers among M={M} workers",
            "s",
        )
    if scheme == "flat-frc" and M % (s + 1):
        ok = [d - 1 for d in range(1, M + 1) if M % d == 0]
        raise InfeasibleCodeError(
            f"flat-frc needs (s+1) to divide M: s+1={s + 1} does not divide M={M}; "
            f"use flat-crc (any s <= {M - 1}) or flat-frc with s in {ok}",
            "s",
        )
    unit = flat_unit(scheme, M, int(s))
    if K is None:
        return unit
    if isinstance(K, bool) or not isinstance(K, int | np.integer) or K < 1 or K % unit:
        raise InfeasibleCodeError(f"K={K!r}: {scheme} needs K a positive multiple of {unit}", "K")
    if K > MAX_K:
        raise InfeasibleCodeError(
            f"K={K}: must be <= {MAX_K} (memory and time grow with K); valid K for {scheme} "
            f"are the multiples of {unit} up to {MAX_K}",
            "K",
        )
    return int(K)


def make_flat(
    scheme: str,
    workers_per_edge: Sequence[int],
    s: int,
    K: int | None,
    points: str,
    order: int | None = None,
    seed: int | None = None,
    fixed: bool = False,
) -> FlatCode:
    """Build ``flat-frc`` or ``flat-crc`` tolerating any s of the M workers.

    ``flat-crc`` uses a Gaussian tier when ``seed`` is given (from a spec), a Lagrange tier
    when ``fixed`` (a spec with an ``order``) or ``points`` is not the default; otherwise
    Lagrange unless its estimated worst decode error exceeds ``GAUSS_SWITCH`` and the
    Gaussian tier's is smaller.
    """
    m = check_topology(workers_per_edge)
    M = sum(m)
    K = check_flat(scheme, m, s, K)
    unit = flat_unit(scheme, M, s)
    per = K // unit
    if scheme == "flat-frc":
        slots = [[w // (s + 1)] for w in range(M)]
        holders = [tuple(range(q * (s + 1), (q + 1) * (s + 1))) for q in range(unit)]
    else:
        slots = [[(w + t) % M for t in range(s + 1)] for w in range(M)]
        holders = [tuple(sorted((q - t) % M for t in range(s + 1))) for q in range(unit)]
    item_holders = [holders[k // per] for k in range(K)]
    if scheme == "flat-frc":
        tier = fr_tier(M, s, item_holders, label="master")
    elif seed is not None:
        tier = gauss_tier(M, s, item_holders, "master", seed)
    else:
        tier = lagrange_tier(M, s, item_holders, points, "master", order)
        if not fixed and tier.kind == "lagrange" and points == DEFAULT_POINTS:
            from common.coding.numerics import tier_estimate

            est = tier_estimate(tier)
            if est > GAUSS_SWITCH:
                alt = gauss_tier(M, s, item_holders, "master")
                if tier_estimate(alt) < est:
                    tier = alt
    flat_parts = [tuple(q * per + r for q in slots[w] for r in range(per)) for w in range(M)]
    placement = []
    coefs = []
    w = 0
    for mi in m:
        placement.append(tuple(flat_parts[w + j] for j in range(mi)))
        coefs.append(tuple(frozen(tier.B[w + j, list(flat_parts[w + j])]) for j in range(mi)))
        w += mi
    return FlatCode(
        scheme=scheme,
        n_edges=len(m),
        workers_per_edge=m,
        s=int(s),
        K=K,
        placement=tuple(placement),
        worker_coefficients=tuple(coefs),
        tier=tier,
        points=points,
    )
