"""The simulator: every scheme on one system, side by side, plus the sweeps behind the plots.

Pure maths (numpy): no files, no plotting. ``hgc simulate`` and ``hgc optimize`` format what
these functions return. Every scheme is simulated with the same seed (common random numbers),
so ratios between schemes are sharper than the absolute times.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from common.coding import Tolerances, table_order
from common.perf.api import communication, exact_available, expected_time, plan_scheme
from common.perf.fit import optimisation_model
from common.perf.jncss import MAX_EXHAUSTIVE, exhaustive_jncss, greedy_jncss
from common.perf.model import compile_plan
from common.perf.montecarlo import simulate_compiled
from common.perf.plan import InfeasiblePlanError, Plan
from common.perf.ratio import ratio_or_none
from common.perf.system import SystemModel, WorkerProfile

Progress = Callable[[str], None]


@dataclass(frozen=True)
class SchemeResult:
    name: str
    plan: Plan
    mean_s: float
    stderr_s: float
    p50_s: float
    p95_s: float
    p99_s: float
    exact_mean_s: float | None  # None where the exact method does not apply
    master_ingress_bytes: int
    master_ingress_messages: int
    edge_ingress_bytes: tuple[int, ...]
    speedup_vs_uncoded: float | None  # None when either mean is ~0 (no meaningful ratio)
    times: np.ndarray  # (N,) per-iteration times, seconds

    def row(self) -> dict[str, Any]:
        """The flat, JSON-able summary (no per-iteration times)."""
        return {
            "scheme": self.name,
            "plan": self.plan.describe(),
            "K": self.plan.K,
            "D": self.plan.D,
            "mean_s": self.mean_s,
            "stderr_s": self.stderr_s,
            "p50_s": self.p50_s,
            "p95_s": self.p95_s,
            "p99_s": self.p99_s,
            "exact_mean_s": self.exact_mean_s,
            "speedup_vs_uncoded": self.speedup_vs_uncoded,
            "master_ingress_bytes": self.master_ingress_bytes,
            "master_ingress_messages": self.master_ingress_messages,
        }


def compare_schemes(
    system: SystemModel,
    schemes: Sequence[str],
    tol: Tolerances,
    iterations: int,
    seed: int,
    progress: Progress | None = None,
) -> list[SchemeResult]:
    """Simulate every scheme (in the registry's table order, "uncoded" always included), each
    on the plan the planner gives it under ``tol`` (``plan_scheme``: the one planning path).

    A scheme whose tolerances are infeasible on this topology is skipped with a progress
    message naming the reason (never silently).
    """
    names = table_order([*schemes, "uncoded"])
    out: list[SchemeResult] = []
    base_mean = None
    for name in names:
        started = time.perf_counter()
        try:
            plan = plan_scheme(system, name, tol)
        except InfeasiblePlanError as exc:
            if progress:
                progress(f"{name}: skipped: {exc}")
            continue
        c = compile_plan(system, plan)
        mc = simulate_compiled(c, iterations, np.random.default_rng(seed))
        exact = expected_time(system, plan) if exact_available(system, plan) else None
        comm = communication(system, plan)
        if name == "uncoded":
            base_mean = mc.mean_s
        q50, q95, q99 = np.quantile(mc.times, [0.5, 0.95, 0.99])
        out.append(
            SchemeResult(
                name,
                plan,
                mc.mean_s,
                mc.stderr_s,
                float(q50),
                float(q95),
                float(q99),
                exact,
                comm.master_bytes,
                comm.master_messages,
                comm.edge_bytes,
                ratio_or_none(base_mean, mc.mean_s),
                mc.times,
            )  # fmt: skip
        )
        if progress:
            progress(
                f"{name}: {plan.describe()} mean {mc.mean_s:.4f} s "
                f"({time.perf_counter() - started:.1f} s)"
            )
    return out


def gap(found: float, best: float) -> float | None:
    """Relative excess of ``found`` over ``best`` (0 when both are ~0)."""
    r = ratio_or_none(found, best)
    if r is None:
        return 0.0 if abs(found - best) <= 1e-12 else None
    return r - 1.0


def scale_stragglers(system: SystemModel, factor: float) -> SystemModel:
    """The system with every worker's mean straggling time (1/rate) multiplied by ``factor``
    (0 = no stragglers at all); markov slowdowns scale as ``1 + factor (slowdown - 1)``."""

    def scaled(w: WorkerProfile) -> WorkerProfile:
        rate = float("inf") if factor == 0 else w.rate / factor
        return dataclasses.replace(w, rate=rate)

    workers = tuple(tuple(scaled(w) for w in row) for row in system.workers)
    st = system.straggler
    if st.kind == "markov":
        st = dataclasses.replace(st, slowdown=1.0 + factor * (st.slowdown - 1.0))
    return dataclasses.replace(system, workers=workers, straggler=st)


def slow_edge(system: SystemModel, edge: int, factor: float) -> SystemModel:
    """The system with edge ``edge``'s uplink ``factor`` times slower: bandwidth divided by,
    latency and jitter multiplied by ``factor``."""
    edges = list(system.edges)
    up = edges[edge].uplink
    slower = dataclasses.replace(
        up,
        latency_s=up.latency_s * factor,
        jitter_s=up.jitter_s * factor,
        bandwidth_bytes_per_s=up.bandwidth_bytes_per_s / factor,
    )
    edges[edge] = dataclasses.replace(edges[edge], uplink=slower)
    return dataclasses.replace(system, edges=tuple(edges))


def sweep(
    systems: Sequence[tuple[float, SystemModel]],
    schemes: Sequence[str],
    tol: Tolerances,
    iterations: int,
    seed: int,
    progress: Progress | None = None,
    label: str = "x",
) -> list[dict[str, Any]]:
    """Mean iteration time and speed-up vs uncoded of every scheme for each (x, system)."""
    rows: list[dict[str, Any]] = []
    for k, (x, sys_) in enumerate(systems):
        for r in compare_schemes(sys_, schemes, tol, iterations, seed):
            rows.append(
                {label: x, "scheme": r.name, "mean_s": r.mean_s,
                 "speedup_vs_uncoded": r.speedup_vs_uncoded, "plan": r.plan.describe()}
            )  # fmt: skip
        if progress:
            progress(f"sweep {label}={x}: {k + 1}/{len(systems)} done")
    return rows


def optimizer_report(system: SystemModel, exhaustive_limit: int = MAX_EXHAUSTIVE) -> dict[str, Any]:
    """Greedy JNCSS (and, when the instance is small enough, exhaustive search and the gap),
    plus the hetero variant, as a JSON-able dict."""
    opt = optimisation_model(system)
    started = time.perf_counter()
    greedy = greedy_jncss(opt)
    elapsed = time.perf_counter() - started
    uncoded = expected_time(opt, plan_scheme(opt, "uncoded"))
    out: dict[str, Any] = {
        **_candidate_dict(greedy.best.plan, greedy.best.mean_s),
        "scheme": "hgc-jncss",
        "method": greedy.method,
        "evaluations": greedy.evaluations,
        "search_s": elapsed,
        "uncoded_expected_time_s": uncoded,
        "speedup_vs_uncoded": ratio_or_none(uncoded, greedy.best.mean_s),
        "alternatives": [_candidate_dict(c.plan, c.mean_s) for c in greedy.alternatives],
        "model": "trace fitted by shifted-exponential" if opt is not system else "as given",
    }
    hetero = greedy_jncss(opt, hetero=True)
    out["hetero"] = _candidate_dict(hetero.best.plan, hetero.best.mean_s)
    if _enumerable(system, exhaustive_limit):
        ex = exhaustive_jncss(opt)
        out["exhaustive"] = {
            **_candidate_dict(ex.best.plan, ex.best.mean_s),
            "evaluations": ex.evaluations,
            "greedy_gap": gap(greedy.best.mean_s, ex.best.mean_s),
        }
    return out


def _enumerable(system: SystemModel, limit: int) -> bool:
    count = system.n_edges * max(system.workers_per_edge)
    for m in system.workers_per_edge:
        count *= 2**m
    return count <= limit


def _candidate_dict(plan: Plan, mean_s: float) -> dict[str, Any]:
    return {
        "s_e": plan.s_e,
        "s_w": plan.s_w,
        "edges": list(plan.edges),
        "workers": [list(w) for w in plan.workers],
        "expected_time_s": mean_s,
        "plan": plan.describe(),
    }
