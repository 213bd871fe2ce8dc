"""The public entry points of ``common.perf`` (docs/architecture.md): plan a scheme, and
time a plan exactly or by Monte Carlo. Everything takes a :class:`SystemModel`."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

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
from common.perf.plan import (
    FLAT,
    PLAN_SCHEMES,
    InfeasiblePlanError,
    Plan,
    full_selection,
    is_hgc_feasible,
    make_plan,
)
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
    s_e: int | None = None,
    s_w: int | None = None,
    s: int | None = None,
) -> Plan:
    """A plan for ``scheme`` on ``system``.

    Fixed schemes use every node; a tolerance left as ``None`` is chosen to minimise E[T]
    (``hgc``/``fr``: both; ``worker-gc``: s_w; ``edge-gc``: s_e; flat: s). ``ignore`` needs
    both tolerances. ``hgc-jncss``/``hgc-hetero`` optimise nodes and tolerances (greedy JNCSS).
    """
    if scheme not in PLAN_SCHEMES:
        raise ValueError(f"scheme={scheme!r}: must be one of {list(PLAN_SCHEMES)}")
    edges, workers = full_selection(system)
    m = system.workers_per_edge
    n = system.n_edges
    if scheme == "hgc-jncss":
        return greedy_jncss(optimisation_model(system)).best.plan
    if scheme == "hgc-hetero":
        return greedy_jncss(optimisation_model(system), hetero=True).best.plan
    if scheme == "uncoded":
        return make_plan(scheme, edges, workers)
    if scheme in FLAT:
        if s is not None:
            return make_plan(scheme, edges, workers, s=s)
        total = system.n_workers
        plans = [make_plan(scheme, edges, workers, s=x) for x in flat_candidates(scheme, total)]
        return _best(system, plans, scheme)
    if scheme == "ignore":
        if s_e is None or s_w is None:
            raise ValueError("ignore: s_e and s_w are required (ignoring more is always faster)")
        return make_plan(scheme, edges, workers, s_e=s_e, s_w=s_w)
    se_range = [0] if scheme == "worker-gc" else ([s_e] if s_e is not None else range(n))
    sw_range = [0] if scheme == "edge-gc" else ([s_w] if s_w is not None else range(min(m)))
    if (
        s_e is not None
        and s_w is not None
        or (scheme == "worker-gc" and s_w is not None)
        or (scheme == "edge-gc" and s_e is not None)
    ):
        return make_plan(scheme, edges, workers, s_e=next(iter(se_range)), s_w=next(iter(sw_range)))
    if system.straggler.kind == "trace":  # no exact screening: score every pair (small)
        pairs = [p for p in itertools.product(se_range, sw_range) if is_hgc_feasible(m, *p)]
    else:
        pairs = best_fixed_tolerances(system, list(se_range), list(sw_range))
    plans = [make_plan(scheme, edges, workers, s_e=a, s_w=b) for a, b in pairs]
    return _best(system, plans, scheme)
