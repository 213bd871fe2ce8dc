"""The load trade-off of spec §2: the bound, the feasibility conditions and the smallest K.

Every function here is pure integer/rational arithmetic so that the messages it produces (and
the K it picks) are identical on every node.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from fractions import Fraction

import numpy as np

from common.coding.errors import InfeasibleCodeError


def check_topology(workers_per_edge: Sequence[int]) -> tuple[int, ...]:
    """Validate a topology: at least one edge, every edge with >= 1 worker (ints, not bools)."""
    m = tuple(workers_per_edge)
    if len(m) == 0:
        raise InfeasibleCodeError("workers_per_edge: need at least one edge", "workers_per_edge")
    for i, mi in enumerate(m):
        if isinstance(mi, bool) or not isinstance(mi, int | np.integer):
            raise InfeasibleCodeError(
                f"workers_per_edge[{i}]: must be an integer, got {mi!r}", "workers_per_edge"
            )
        if mi < 1:
            raise InfeasibleCodeError(
                f"workers_per_edge[{i}]: must be >= 1, got {mi}", "workers_per_edge"
            )
    return tuple(int(mi) for mi in m)


def _check_tolerance(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise InfeasibleCodeError(f"{name}: must be an integer, got {value!r}", name)
    if value < 0:
        raise InfeasibleCodeError(f"{name}: must be >= 0, got {value}", name)


def optimal_load_fraction(workers_per_edge: Sequence[int], s_e: int, s_w: int) -> Fraction:
    """The Theorem-1 bound D/K >= (s_e+1)(s_w+1)/M as an exact fraction."""
    m = check_topology(workers_per_edge)
    return Fraction((s_e + 1) * (s_w + 1), sum(m))


def optimal_load(workers_per_edge: Sequence[int], s_e: int = 0, s_w: int = 0) -> float:
    """The Theorem-1 bound (s_e+1)(s_w+1)/M on the per-worker load D/K, as a float.

    It is the load every equal-load HGC code meets exactly when :func:`is_feasible` holds.
    """
    return float(optimal_load_fraction(workers_per_edge, s_e, s_w))


def largest_feasible_s_e(workers_per_edge: Sequence[int]) -> int:
    """Largest s_e with (s_e+1)·max m_i <= M and s_e <= n-1 (equal loads at the bound)."""
    m = check_topology(workers_per_edge)
    return min(len(m) - 1, sum(m) // max(m) - 1)


def largest_feasible_s_w(workers_per_edge: Sequence[int]) -> int:
    """Largest s_w tolerated in every edge: min m_i - 1."""
    return min(check_topology(workers_per_edge)) - 1


def smallest_equal_load(workers_per_edge: Sequence[int], s_e: int, s_w: int) -> Fraction:
    """Smallest equal per-worker load D/K that ANY placement tolerating (s_e, s_w) can reach.

    Edge i can cover at most min(1, ℓ·m_i/(s_w+1)) of the partitions at load ℓ (each partition
    it covers needs s_w+1 holders among its m_i workers), and the edges together must cover every
    partition s_e+1 times: sum_i min(1, ℓ m_i/(s_w+1)) >= s_e+1. The left side is piecewise
    linear and increasing in ℓ, so the smallest ℓ is found exactly by walking its breakpoints.
    Requires s_e <= n-1 and s_w <= min m_i - 1.
    """
    m = sorted(check_topology(workers_per_edge), reverse=True)
    need = s_e + 1
    # With the t largest edges saturated (covering everything), the rest share the remainder.
    for t in range(len(m) + 1):
        rest = sum(m[t:])
        if rest == 0:
            break
        ell = Fraction((need - t) * (s_w + 1), rest)
        # valid if the t saturated edges really are saturated and the others are not
        if (
            ell >= 0
            and all(ell * mi >= s_w + 1 for mi in m[:t])
            and (t == len(m) or ell * m[t] <= s_w + 1)
        ):
            return max(ell, optimal_load_fraction(m, s_e, s_w))
    return Fraction(1)


def is_feasible(workers_per_edge: Sequence[int], s_e: int, s_w: int) -> bool:
    """True when an equal-load code at the bound exists (spec §2), i.e. exactly when
    :func:`check_feasible` passes; cheap, since the optimiser asks it for every candidate."""
    m = workers_per_edge
    if len(m) == 0 or min(m) < 1:
        return False
    return 0 <= s_e < len(m) and 0 <= s_w < min(m) and (s_e + 1) * max(m) <= sum(m)


def check_feasible(workers_per_edge: Sequence[int], s_e: int, s_w: int) -> tuple[int, ...]:
    """Raise :class:`InfeasibleCodeError` naming the violated condition and what is possible."""
    m = check_topology(workers_per_edge)
    _check_tolerance("s_e", s_e)
    _check_tolerance("s_w", s_w)
    n, M = len(m), sum(m)
    if s_e >= n:
        raise InfeasibleCodeError(
            f"s_e={s_e} >= n_edges={n}: at most n_edges-1 edge stragglers can be tolerated; "
            f"the largest feasible s_e for workers_per_edge={list(m)} is {largest_feasible_s_e(m)}",
            "s_e",
        )
    if s_w >= min(m):
        raise InfeasibleCodeError(
            f"s_w={s_w} >= min workers_per_edge={min(m)} (edge {m.index(min(m))}): "
            f"the largest feasible s_w is {min(m) - 1}",
            "s_w",
        )
    if (s_e + 1) * max(m) > M:
        ell = smallest_equal_load(m, s_e, s_w)
        raise InfeasibleCodeError(
            f"(s_e+1)*max(workers_per_edge) = {(s_e + 1) * max(m)} > sum(workers_per_edge) = {M}: "
            f"equal loads cannot meet the bound {optimal_load_fraction(m, s_e, s_w)} "
            f"(edge {m.index(max(m))} would have to hold more than all partitions); "
            f"the largest feasible s_e for this topology is {largest_feasible_s_e(m)}, "
            f"and with s_e={s_e}, s_w={s_w} the smallest achievable equal load is {ell}"
            f"{'' if ell.denominator == 1 else f' (~{float(ell):.4g})'}; build such a placement "
            f"with code_from_placement",
            "s_e",
        )
    return m


def minimal_K(workers_per_edge: Sequence[int], s_e: int, s_w: int) -> int:
    """Smallest K with K(s_e+1)m_i/M and K(s_e+1)(s_w+1)/M integers (spec §3, step 0)."""
    m = check_feasible(workers_per_edge, s_e, s_w)
    M = sum(m)
    K = 1
    for num in [(s_e + 1) * mi for mi in m] + [(s_e + 1) * (s_w + 1)]:
        K = math.lcm(K, M // math.gcd(M, num))
    return K


# Largest K accepted: the placement and encoding matrices grow as M x K (K = 900000 took
# 8 s and 748 MB); more partitions than this is more than any data set here has rows.
MAX_K = 100_000


def check_K(workers_per_edge: Sequence[int], s_e: int, s_w: int, K: int | None) -> int:
    """Return K (the minimal one when None) after checking that it gives integer loads
    and is at most ``MAX_K``."""
    K0 = minimal_K(workers_per_edge, s_e, s_w)
    if K is None:
        return K0
    if isinstance(K, bool) or not isinstance(K, int | np.integer) or K < 1:
        raise InfeasibleCodeError(f"K: must be a positive integer, got {K!r}", "K")
    if K > MAX_K:
        raise InfeasibleCodeError(
            f"K={K}: must be <= {MAX_K} (memory and time grow with K); "
            f"valid K for this topology are the multiples of {K0} up to {MAX_K}",
            "K",
        )
    if K % K0:
        raise InfeasibleCodeError(
            f"K={K}: K(s_e+1)m_i/M and K(s_e+1)(s_w+1)/M must be integers; "
            f"valid K for this topology are the multiples of {K0}",
            "K",
        )
    return int(K)
