"""The public entry points of ``common.perf`` (docs/architecture.md): plan a scheme, and
time a plan exactly or by Monte Carlo. Everything takes a :class:`SystemModel`."""

from __future__ import annotations

import dataclasses
import itertools
from dataclasses import dataclass

import numpy as np

from common.coding import (
    DEFAULT_TOLERANCE,
    Tolerances,
    code_from_spec,
    fixed_tolerances,
    is_feasible,
)
from common.coding import scheme as scheme_row
from common.perf.exact import (
    DEFAULT_GRID,
    ExactUnavailableError,
    check_exact_applies,
    exact_distribution,
)
from common.perf.fit import optimisation_model
from common.perf.jncss import best_fixed_tolerances, greedy_jncss
from common.perf.model import compile_plan
from common.perf.montecarlo import MCResult, simulate_compiled
from common.perf.plan import InfeasiblePlanError, Plan, full_selection, make_plan
from common.perf.system import SystemModel

SCORE_ITERATIONS = (
    4000  # Monte Carlo draws when a fixed scheme's best s is chosen without the exact method
)


def expected_time(
    system: SystemModel,
    plan: Plan,
    method: str = "exact",
    *,
    grid: int = DEFAULT_GRID,
    iterations: int = 100_000,
    rng: np.random.Generator | None = None,
) -> float:
    """Expected iteration time of ``plan`` in seconds, ``method`` "exact" or "mc"."""
    if method == "exact":
        return exact_distribution(compile_plan(system, plan), grid).mean_s
    if method == "mc":
        gen = rng if rng is not None else np.random.default_rng(0)
        return simulate_compiled(compile_plan(system, plan), iterations, gen).mean_s
    raise ValueError(f"method={method!r}: must be 'exact' or 'mc'")


def simulate_plan(
    system: SystemModel, plan: Plan, iterations: int, rng: np.random.Generator
) -> MCResult:
    """Per-iteration times (``.times``, shape (iterations,)) and edge finish times."""
    return simulate_compiled(compile_plan(system, plan), iterations, rng)


def exact_available(system: SystemModel, plan: Plan) -> bool:
    try:
        check_exact_applies(compile_plan(system, plan))
    except ExactUnavailableError:
        return False
    return True


def score(system: SystemModel, plan: Plan) -> float:
    """E[T] for ranking plans: exact where it applies, else a seeded Monte Carlo estimate."""
    c = compile_plan(system, plan)
    try:
        return exact_distribution(c, 512).mean_s
    except ExactUnavailableError:
        return simulate_compiled(c, SCORE_ITERATIONS, np.random.default_rng(0)).mean_s


@dataclass(frozen=True)
class Communication:
    """Per iteration: messages and bytes into the master and into each selected edge
    (every message sent, including late ones that are discarded)."""

    master_messages: int
    master_bytes: int
    edge_messages: tuple[int, ...]
    edge_bytes: tuple[int, ...]


def communication(system: SystemModel, plan: Plan) -> Communication:
    b = system.gradient_bytes
    per_edge = plan.workers_per_edge
    master_msgs = plan.n_workers if plan.is_flat else len(plan.edges)
    return Communication(
        master_msgs, master_msgs * b, tuple(per_edge), tuple(m * b for m in per_edge)
    )


def flat_candidates(scheme: str, n_workers: int) -> list[int]:
    """Tolerances s tried when a flat scheme's s is chosen (flat schemes are scored by Monte
    Carlo, so not every s of a large cluster is tried): flat-frc every s with (s+1) | M;
    flat-crc 0..15 and then one less than each power of two below M."""
    if scheme == "flat-frc":
        return [d - 1 for d in range(1, n_workers + 1) if n_workers % d == 0]
    cands = set(range(min(n_workers, 16)))
    k = 16
    while k < n_workers:
        cands.add(k - 1)
        k *= 2
    return sorted(cands)


def _best(system: SystemModel, plans: list[Plan], what: str) -> Plan:
    if not plans:
        raise InfeasiblePlanError(f"{what}: no feasible tolerance on this topology")
    return min(plans, key=lambda p: score(system, p))


def plan_scheme(
    system: SystemModel,
    scheme: str,
    tolerances: Tolerances | None = None,
    *,
    tolerance: float | None = DEFAULT_TOLERANCE,
) -> Plan:
    """The planner: the plan ``scheme`` runs on ``system`` (every caller -- the simulator, the
    optimiser report, ``hgc run``, its predictions, ``hgc compose``, the clusters -- plans here).

    The scheme's registry row says which of ``tolerances`` it takes (``common.coding.schemes``):
    fixed schemes use every node, with a tolerance left ``None`` chosen to minimise E[T] and
    ``tolerances.K`` honoured; ``hgc-best-fixed`` chooses (s_e, s_w) on every node;
    ``hgc-jncss`` / ``hgc-hetero`` choose nodes and tolerances (greedy JNCSS). The search runs
    on ``optimisation_model(system)`` (a trace replaced by its fit).

    The returned plan is complete: its code is built once, checked against ``tolerance`` (the
    estimated worst decode error; ``None`` skips the check) and shipped whole in
    ``plan.code_spec`` (K, point orderings, ...), so every node rebuilds the very same code.
    Raises :class:`InfeasiblePlanError` (an ``InfeasibleCodeError``) naming the condition.
    """
    tol = fixed_tolerances(scheme, tolerances or Tolerances())
    plan = _choose(optimisation_model(system), scheme, tol)
    return complete(plan, tolerance)


def complete(plan: Plan, tolerance: float | None = DEFAULT_TOLERANCE) -> Plan:
    """``plan`` with its code built (and checked) once and its spec completed from the code."""
    code = code_from_spec(plan.code_spec, tolerance=tolerance)
    done = dataclasses.replace(plan, code_spec=dict(code.spec()))
    done.__dict__["code"] = code  # the cached_property Plan.code: never built twice
    return done


def _choose(system: SystemModel, scheme: str, tol: Tolerances) -> Plan:
    row = scheme_row(scheme)
    edges, workers = full_selection(system)
    m = system.workers_per_edge
    if scheme == "hgc-jncss":
        return greedy_jncss(system).best.plan
    if scheme == "hgc-hetero":
        return greedy_jncss(system, hetero=True).best.plan
    if scheme == "hgc-adaptive":
        # its first plan is JNCSS's (equal loads: the least sensitive to a model that misses
        # the runtime's overheads -- measured: on the drifting scenario's first phase the
        # hetero plan, predicted 10 % faster, ran 6-12 % slower); the master re-plans, hetero
        # included, from measurements
        return dataclasses.replace(greedy_jncss(system).best.plan, scheme=scheme)
    if row.is_flat:
        if tol.s is not None:
            return make_plan(scheme, edges, workers, s=tol.s, K=tol.K)
        total = system.n_workers
        plans = [
            make_plan(scheme, edges, workers, s=x, K=tol.K) for x in flat_candidates(scheme, total)
        ]
        return _best(system, plans, scheme)
    if scheme == "hgc-best-fixed":
        tol = Tolerances()
    if tol.s_e is not None and tol.s_w is not None:
        return make_plan(scheme, edges, workers, s_e=tol.s_e, s_w=tol.s_w, K=tol.K)
    if scheme == "ignore":
        raise InfeasiblePlanError(
            "ignore: s_e and s_w are required (ignoring more is always faster)", "s_e"
        )
    se_range = [tol.s_e] if tol.s_e is not None else list(range(system.n_edges))
    sw_range = [tol.s_w] if tol.s_w is not None else list(range(min(m)))
    if system.straggler.kind == "trace":  # no exact screening: score every pair (small)
        pairs = [p for p in itertools.product(se_range, sw_range) if is_feasible(m, *p)]
    else:
        pairs = best_fixed_tolerances(system, se_range, sw_range)
    plans = [make_plan(scheme, edges, workers, s_e=a, s_w=b, K=tol.K) for a, b in pairs]
    return _best(system, plans, scheme)
