"""Plans: which nodes take part, under which scheme, with which loads.

A :class:`Plan` is what the optimiser outputs and what the runtime model evaluates. The
maths here is the load side of the spec (§2): equal loads ``(s_e+1)(s_w+1)/M`` over the
*selected* workers for the hierarchical schemes, ``(s+1)/M`` for flat schemes, ``1/M``
uncoded, and arbitrary per-worker loads for ``hgc-hetero`` (from its placement).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from common.coding import (
    Code,
    InfeasibleCodeError,
    Tolerances,
    check_scheme,
    code_from_spec,
)
from common.coding import scheme as scheme_row
from common.perf.system import SystemModel

# One infeasibility error for codes and plans: the coding core's rule is the only rule.
InfeasiblePlanError = InfeasibleCodeError


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
        return scheme_row(self.scheme).is_flat

    @functools.cached_property
    def code(self) -> Code:
        """The code ``code_spec`` describes, built once per plan (the planner hands over the
        plan with the code it already built and checked)."""
        return code_from_spec(self.code_spec)

    @property
    def K(self) -> int:
        return int(self.code.K)

    @property
    def D(self) -> int:
        """Partitions of the most loaded worker."""
        return int(self.code.D)

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
        K = self.code_spec.get("K")
        return f"{self.scheme} {tol}{'' if K is None else f' K={K}'} [{sel}]"


def full_selection(system: SystemModel) -> tuple[tuple[int, ...], tuple[tuple[int, ...], ...]]:
    """All edges and all workers of ``system``."""
    edges = tuple(range(system.n_edges))
    workers = tuple(tuple(range(m)) for m in system.workers_per_edge)
    return edges, workers


def equal_loads(workers_per_edge: Sequence[int], fraction: float) -> tuple[tuple[float, ...], ...]:
    return tuple((fraction,) * m for m in workers_per_edge)


def make_plan(
    scheme_name: str,
    edges: Sequence[int],
    workers: Sequence[Sequence[int]],
    *,
    s_e: int = 0,
    s_w: int = 0,
    s: int = 0,
    K: int | None = None,
) -> Plan:
    """A plan with equal loads for one of the fixed schemes (or ``hgc-jncss`` /
    ``hgc-best-fixed``, which build ``hgc``) on a selection, every tolerance given.

    Feasibility is the coding core's (``check_scheme``): :class:`InfeasiblePlanError` names
    the violated condition. The code is not built here (the optimiser makes many plans):
    ``code_spec`` holds the scheme, topology, tolerances and K, and ``plan.code`` builds it.
    """
    row = scheme_row(scheme_name)
    if row.code == "hgc-hetero":
        raise ValueError(f"scheme={scheme_name!r}: use common.perf.hetero.make_hetero_plan")
    edges_t = tuple(int(e) for e in edges)
    workers_t = tuple(tuple(int(j) for j in w) for w in workers)
    if len(edges_t) != len(workers_t):
        raise ValueError("workers: one worker list per selected edge is needed")
    m = [len(w) for w in workers_t]
    if not m or min(m) < 1:
        raise InfeasiblePlanError("selection: every selected edge needs at least one worker")
    total = sum(m)
    spec: dict[str, Any]
    if row.is_flat:
        tol = check_scheme(row.name, m, Tolerances(s=s, K=K))
        assert tol.s is not None and tol.K is not None
        spec = {"scheme": row.code, "workers_per_edge": m, "s": tol.s, "K": tol.K}
        loads = equal_loads(m, (tol.s + 1) / total)
        return Plan(row.name, edges_t, workers_t, spec, s=tol.s, loads=loads)
    if row.family == "optimised":  # the optimiser has chosen: an hgc code on its selection
        tol = check_scheme("hgc", m, Tolerances(s_e, s_w, K=K))
    else:
        given = Tolerances(s_e if "s_e" in row.takes else 0, s_w if "s_w" in row.takes else 0)
        tol = check_scheme(row.name, m, Tolerances(given.s_e, given.s_w, K=K))
    assert tol.s_e is not None and tol.s_w is not None and tol.K is not None
    # ignore keeps the uncoded placement: load 1/M, result not exact
    fraction = 1 / total if row.code == "ignore" else (tol.s_e + 1) * (tol.s_w + 1) / total
    spec = {
        "scheme": row.code,
        "workers_per_edge": m,
        "s_e": tol.s_e,
        "s_w": tol.s_w,
        "K": tol.K,
    }
    return Plan(
        row.name, edges_t, workers_t, spec, s_e=tol.s_e, s_w=tol.s_w, loads=equal_loads(m, fraction)
    )


def plan_loads(plan: Plan) -> list[np.ndarray]:
    """Per selected edge, the load fractions of its selected workers, shape ``(m_p,)``.

    A plan built without ``loads`` (e.g. by hand from a code spec) gets them from its code.
    """
    if plan.loads:
        return [np.asarray(row, dtype=float) for row in plan.loads]
    code = plan.code
    return [
        np.array([code.load_fraction(p, q) for q in range(len(ws))])
        for p, ws in enumerate(plan.workers)
    ]
