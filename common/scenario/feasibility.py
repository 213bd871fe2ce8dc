"""The feasibility rule of the equal-load construction (spec section 2), checked on the
scenario so a bad tolerance is rejected with the field name before any code is built:

    s_e <= n - 1,   s_w <= min_i m_i - 1,   (s_e + 1) * max_i m_i <= sum_i m_i,

and for the flat schemes s <= M - 1. (The coding core enforces the same rule with
``InfeasibleCodeError``; this module only words it for the scenario file.)
"""

from __future__ import annotations

from common.coding import minimal_K, smallest_equal_load
from common.scenario.fields import ScenarioError, join


def largest_feasible_s_e(workers_per_edge: tuple[int, ...]) -> int:
    """Largest s_e with s_e <= n - 1 and (s_e + 1) * max m_i <= sum m_i."""
    n, M, m_max = len(workers_per_edge), sum(workers_per_edge), max(workers_per_edge)
    return min(n - 1, M // m_max - 1)


def check_code(
    s_e: int, s_w: int, s: int, workers_per_edge: tuple[int, ...], path: str, K: int | None = None
) -> None:
    """Raise ``ScenarioError`` on ``<path>.s_e`` / ``.s_w`` / ``.s`` / ``.K`` if infeasible."""
    wpe = list(workers_per_edge)
    n, M, m_min, m_max = len(wpe), sum(wpe), min(wpe), max(wpe)
    best = largest_feasible_s_e(workers_per_edge)
    if s_e > n - 1:
        raise ScenarioError(
            join(path, "s_e"),
            f"{s_e} is infeasible for {n} edges: the master needs at least one edge "
            f"(s_e <= n - 1 = {n - 1}); largest feasible s_e is {best}",
        )
    if s_e > best:
        ell = smallest_equal_load(wpe, s_e, 0)
        raise ScenarioError(
            join(path, "s_e"),
            f"{s_e} is infeasible for workers_per_edge {wpe}: equal loads need "
            f"(s_e + 1) * max m_i <= sum m_i, i.e. {s_e + 1} * {m_max} <= {M} fails "
            f"(the largest edge would have to hold more than every partition); "
            f"largest feasible s_e is {best} (with s_e = {s_e} and s_w = 0 the smallest "
            f"equal load any placement reaches is {ell}, not the bound {s_e + 1}/{M})",
        )
    if s_w > m_min - 1:
        raise ScenarioError(
            join(path, "s_w"),
            f"{s_w} is infeasible for workers_per_edge {wpe}: every edge needs at least one "
            f"worker (s_w <= min m_i - 1 = {m_min - 1}); largest feasible s_w is {m_min - 1}",
        )
    if s > M - 1:
        raise ScenarioError(
            join(path, "s"),
            f"{s} is infeasible for {M} workers: the flat schemes need s <= M - 1 = {M - 1}",
        )
    if K is not None:
        K0 = minimal_K(wpe, s_e, s_w)
        if K % K0:
            raise ScenarioError(
                join(path, "K"),
                f"{K} does not give integer loads for workers_per_edge {wpe} with "
                f"s_e = {s_e}, s_w = {s_w}: K must be a multiple of {K0}",
            )
