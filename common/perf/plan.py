"""Plans: which nodes take part, under which scheme, with which loads.

A :class:`Plan` is what the optimiser outputs and what the runtime model evaluates. The
maths here is the load side of the spec (§2): equal loads ``(s_e+1)(s_w+1)/M`` over the
*selected* workers for the hierarchical schemes, ``(s+1)/M`` for flat schemes, ``1/M``
uncoded, and arbitrary per-worker loads for ``hgc-hetero`` (from its placement).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from common.perf.system import SystemModel

HIERARCHICAL = ("uncoded", "hgc", "fr", "worker-gc", "edge-gc", "ignore")
FLAT = ("flat-frc", "flat-crc")
OPTIMISED = ("hgc-jncss", "hgc-hetero")
PLAN_SCHEMES = HIERARCHICAL + FLAT + OPTIMISED


class InfeasiblePlanError(ValueError):
    """The requested tolerances cannot be met on the selected nodes; the message says why."""


@dataclass(frozen=True)
class Plan:
    """One scheme on one selection of nodes.

    ``edges`` are topology indices of the selected edges; ``workers[p]`` the topology indices
    (inside edge ``edges[p]``) of its selected workers. ``code_spec`` rebuilds the code over
    the selection (positions in the selection) with ``common.coding.code_from_spec``.
    ``loads[p][q]`` is the load fraction D/K of the q-th selected worker of the p-th selected
    edge. For flat schemes ``s`` is the tolerance over all selected workers and ``s_e = s_w = 0``.
    """

    scheme: str
    edges: tuple[int, ...]
    workers: tuple[tuple[int, ...], ...]
    code_spec: dict[str, Any]
    s_e: int = 0
    s_w: int = 0
    s: int = 0
    loads: tuple[tuple[float, ...], ...] = field(default=())

    @property
    def is_flat(self) -> bool:
        return self.scheme in FLAT

    @property
    def workers_per_edge(self) -> tuple[int, ...]:
        return tuple(len(w) for w in self.workers)

    @property
    def n_workers(self) -> int:
        return sum(self.workers_per_edge)

    @property
    def edges_needed(self) -> int:
        return len(self.edges) - self.s_e

    def workers_needed(self, p: int) -> int:
        return len(self.workers[p]) - self.s_w

    def describe(self) -> str:
        sel = ", ".join(
            f"edge-{e}:{len(w)}w" for e, w in zip(self.edges, self.workers, strict=True)
        )
        tol = f"s={self.s}" if self.is_flat else f"s_e={self.s_e} s_w={self.s_w}"
        return f"{self.scheme} {tol} [{sel}]"


def full_selection(system: SystemModel) -> tuple[tuple[int, ...], tuple[tuple[int, ...], ...]]:
    """All edges and all workers of ``system``."""
    edges = tuple(range(system.n_edges))
    workers = tuple(tuple(range(m)) for m in system.workers_per_edge)
    return edges, workers


def check_hgc_feasible(workers_per_edge: Sequence[int], s_e: int, s_w: int) -> None:
    """Raise :class:`InfeasiblePlanError` unless equal loads can meet the bound (spec §2).

    Conditions: ``0 <= s_e <= n - 1``, ``0 <= s_w <= min_i m_i - 1`` and
    ``(s_e + 1) max_i m_i <= sum_i m_i``.
    """
    m = list(workers_per_edge)
    n = len(m)
    if n == 0 or min(m, default=0) < 1:
        raise InfeasiblePlanError("selection: every selected edge needs at least one worker")
    if s_e < 0 or s_e > n - 1:
        raise InfeasiblePlanError(f"s_e={s_e}: must be in [0, {n - 1}] for {n} edges")
    if s_w < 0 or s_w > min(m) - 1:
        raise InfeasiblePlanError(
            f"s_w={s_w}: must be in [0, {min(m) - 1}] (the smallest edge has {min(m)} workers)"
        )
    if (s_e + 1) * max(m) > sum(m):
        raise InfeasiblePlanError(
            f"s_e={s_e}: equal loads need (s_e+1)*max(m_i) <= sum(m_i), but "
            f"{s_e + 1}*{max(m)} > {sum(m)}; largest feasible s_e is {sum(m) // max(m) - 1}"
        )


def is_hgc_feasible(workers_per_edge: Sequence[int], s_e: int, s_w: int) -> bool:
    try:
        check_hgc_feasible(workers_per_edge, s_e, s_w)
    except InfeasiblePlanError:
        return False
    return True


def check_flat_feasible(scheme: str, n_workers: int, s: int) -> None:
    """Flat codes tolerate ``0 <= s <= M - 1``; FRC also needs ``(s + 1) | M``."""
    if s < 0 or s > n_workers - 1:
        raise InfeasiblePlanError(f"s={s}: must be in [0, {n_workers - 1}] for {n_workers} workers")
    if scheme == "flat-frc" and n_workers % (s + 1) != 0:
        ok = [d - 1 for d in range(1, n_workers + 1) if n_workers % d == 0]
        raise InfeasiblePlanError(
            f"s={s}: flat-frc needs (s+1) to divide M={n_workers}; possible s: {ok}"
        )


def minimal_k(workers_per_edge: Sequence[int], s_e: int, s_w: int) -> int:
    """Smallest K with K(s_e+1)m_i/M and K(s_e+1)(s_w+1)/M integers (spec §3 step 0)."""
    m = list(workers_per_edge)
    total = sum(m)
    for k in range(1, total + 1):
        if all(k * (s_e + 1) * mi % total == 0 for mi in m) and (
            k * (s_e + 1) * (s_w + 1) % total == 0
        ):
            return k
    return total


def equal_loads(workers_per_edge: Sequence[int], fraction: float) -> tuple[tuple[float, ...], ...]:
    return tuple((fraction,) * m for m in workers_per_edge)


def make_plan(
    scheme: str,
    edges: Sequence[int],
    workers: Sequence[Sequence[int]],
    *,
    s_e: int = 0,
    s_w: int = 0,
    s: int = 0,
    K: int | None = None,
) -> Plan:
    """A plan with equal loads for one of the fixed schemes (or ``hgc-jncss``) on a selection.

    Raises :class:`InfeasiblePlanError` naming the violated condition.
    """
    if scheme not in PLAN_SCHEMES or scheme == "hgc-hetero":
        allowed = [x for x in PLAN_SCHEMES if x != "hgc-hetero"]
        raise ValueError(f"scheme={scheme!r}: make_plan takes one of {allowed}")
    edges_t = tuple(int(e) for e in edges)
    workers_t = tuple(tuple(int(j) for j in w) for w in workers)
    if len(edges_t) != len(workers_t):
        raise ValueError("workers: one worker list per selected edge is needed")
    m = [len(w) for w in workers_t]
    total = sum(m)
    spec: dict[str, Any]
    if scheme in FLAT:
        check_flat_feasible(scheme, total, s)
        fraction = (s + 1) / total
        spec = {"scheme": scheme, "workers_per_edge": m, "s": s}
        if K is not None:
            spec["K"] = K
        return Plan(scheme, edges_t, workers_t, spec, s=s, loads=equal_loads(m, fraction))
    if scheme == "uncoded":
        s_e = s_w = 0
    elif scheme == "worker-gc":
        s_e = 0
    elif scheme == "edge-gc":
        s_w = 0
    if scheme == "ignore":
        # uncoded placement, fewer responders awaited: load 1/M, result not exact
        check_hgc_feasible(m, 0, 0)
        if not (0 <= s_e <= len(m) - 1 and 0 <= s_w <= min(m) - 1):
            raise InfeasiblePlanError(
                f"ignore: need 0 <= s_e <= {len(m) - 1} and 0 <= s_w <= {min(m) - 1}"
            )
        fraction = 1 / total
    else:
        check_hgc_feasible(m, s_e, s_w)
        fraction = (s_e + 1) * (s_w + 1) / total
    code_scheme = "hgc" if scheme == "hgc-jncss" else scheme
    spec = {
        "scheme": code_scheme,
        "workers_per_edge": m,
        "s_e": s_e,
        "s_w": s_w,
        # ignore keeps the uncoded placement, whose K is the uncoded one
        "K": K if K is not None else minimal_k(m, *((0, 0) if scheme == "ignore" else (s_e, s_w))),
    }
    return Plan(scheme, edges_t, workers_t, spec, s_e=s_e, s_w=s_w, loads=equal_loads(m, fraction))


def plan_loads(plan: Plan) -> list[np.ndarray]:
    """Per selected edge, the load fractions of its selected workers, shape ``(m_p,)``.

    A plan built without ``loads`` (e.g. by hand from a code spec) gets them from its code.
    """
    if plan.loads:
        return [np.asarray(row, dtype=float) for row in plan.loads]
    from common.coding import code_from_spec

    code = code_from_spec(plan.code_spec)
    return [
        np.array([code.load_fraction(p, q) for q in range(len(ws))])
        for p, ws in enumerate(plan.workers)
    ]
