"""JNCSS: Joint Node and Coding-Scheme Selection (spec §5, our algorithm).

Minimise the exact expected iteration time over the selected edges, the selected workers of
each edge and the tolerances (s_e, s_w), subject to feasibility on the selection.

- :func:`greedy_jncss`: for every (s_e, s_w) (pruned by a lower bound), start from all nodes
  and repeatedly apply the single removal — the slowest remaining worker of one edge, or a
  whole edge — that lowers E[T] most; stop when no removal helps. Workers are ranked by their
  mean arrival time, so within an edge only the slowest is a candidate (dropping a faster one
  instead never helps when arrival times are stochastically ordered).
- :func:`exhaustive_jncss`: every subset of edges and of workers, every (s_e, s_w); for
  instances small enough to enumerate, to measure the greedy's gap.

Both search with a coarse grid and re-evaluate the winners on the default grid. The load is
``(s_e+1)(s_w+1)/M_selected`` (``hgc-jncss``) or speed-proportional (``hgc-hetero``).
K does not change the modelled time (only D/K does); the plan carries the smallest valid K.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from common.perf.exact import DEFAULT_GRID, exact_distribution
from common.perf.hetero import make_hetero_plan
from common.perf.model import compile_plan
from common.perf.plan import InfeasiblePlanError, Plan, is_hgc_feasible, make_plan
from common.perf.system import SystemModel

SEARCH_GRID = 384
MAX_EXHAUSTIVE = 200_000  # selections x tolerance pairs

Selection = tuple[tuple[int, ...], tuple[tuple[int, ...], ...]]


@dataclass(frozen=True)
class Candidate:
    plan: Plan
    mean_s: float


@dataclass(frozen=True)
class OptimizeResult:
    best: Candidate
    alternatives: tuple[Candidate, ...]  # best plan of other (s_e, s_w), ascending E[T]
    evaluations: int
    method: str  # "greedy" | "exhaustive"


def evaluate(system: SystemModel, plan: Plan, grid: int = SEARCH_GRID) -> float:
    """Exact E[T] (seconds) of ``plan`` on a grid of ``grid`` points."""
    return exact_distribution(compile_plan(system, plan), grid).mean_s


def _builder(system: SystemModel, hetero: bool) -> Callable[[Selection, int, int], Plan | None]:
    def build(sel: Selection, s_e: int, s_w: int) -> Plan | None:
        edges, workers = sel
        m = [len(w) for w in workers]
        if not m or min(m) < s_w + 1 or len(m) < s_e + 1:
            return None
        if hetero:
            try:
                return make_hetero_plan(system, edges, workers, s_e, s_w)
            except ValueError:
                return None
        if not is_hgc_feasible(m, s_e, s_w):
            return None
        try:
            return make_plan("hgc-jncss", edges, workers, s_e=s_e, s_w=s_w)
        except InfeasiblePlanError:
            return None

    return build


def _worker_keys(system: SystemModel, load: float) -> list[list[float]]:
    """Mean arrival time (seconds after the edge got the model) of every worker at ``load``."""
    b = float(system.gradient_bytes)
    return [
        [
            2 * w.link.mean_transfer_s(b)
            + load * (w.shift_s + (0.0 if np.isinf(w.rate) else 1.0 / w.rate))
            for w in profiles
        ]
        for profiles in system.workers
    ]


def _rank(keys: list[list[float]]) -> list[list[int]]:
    """Per edge, worker indices from fastest to slowest."""
    return [sorted(range(len(k)), key=lambda j, k=k: (k[j], j)) for k in keys]  # type: ignore[misc]


def _lower_bound(system: SystemModel, s_e: int, s_w: int) -> float:
    """No plan with these tolerances can beat this (seconds): the fastest conceivable worker
    at the smallest conceivable load, with the fastest edge's deterministic costs."""
    load = (s_e + 1) * (s_w + 1) / system.n_workers
    b = float(system.gradient_bytes)
    worker = min(
        w.link.latency_s * 2 + 2 * b / w.link.bandwidth_bytes_per_s + w.shift_s * load
        for row in system.workers
        for w in row
    )
    edge = min(
        e.uplink.latency_s * 2 + 2 * b / e.uplink.bandwidth_bytes_per_s for e in system.edges
    )
    return max(worker + edge, 0.0)


def _start_selection(
    system: SystemModel, rank: list[list[int]], s_e: int, s_w: int
) -> Selection | None:
    """All nodes, minus what makes (s_e, s_w) impossible: edges with too few workers, and the
    slowest workers of the largest edges while (s_e+1) max m_i > M."""
    edges = [e for e in range(system.n_edges) if system.workers_per_edge[e] >= s_w + 1]
    workers = {e: list(rank[e]) for e in edges}
    if len(edges) < s_e + 1:
        return None
    while (s_e + 1) * max(len(w) for w in workers.values()) > sum(len(w) for w in workers.values()):
        big = max(edges, key=lambda e: len(workers[e]))
        if len(workers[big]) <= s_w + 1:
            return None
        workers[big].pop()
    return tuple(edges), tuple(tuple(workers[e]) for e in edges)


def _neighbours(
    system: SystemModel, sel: Selection, keys: list[list[float]], s_w: int, width: int
) -> list[Selection]:
    """The removals worth trying: the ``width`` slowest last-ranked workers (one per edge)
    and the ``width`` edges whose own finish (mean arrival of the worker it waits for, plus
    its uplink both ways) is latest."""
    edges, workers = sel
    b = float(system.gradient_bytes)
    out: list[Selection] = []
    slowest = sorted(
        (p for p in range(len(edges)) if len(workers[p]) > 1),
        key=lambda p: -keys[edges[p]][workers[p][-1]],
    )
    for p in slowest[:width]:
        w = list(workers)
        w[p] = workers[p][:-1]
        out.append((edges, tuple(w)))
    if len(edges) > 1:

        def finish(p: int) -> float:
            need = max(len(workers[p]) - s_w, 1)
            up = system.edges[edges[p]].uplink.mean_transfer_s(b)
            return keys[edges[p]][workers[p][need - 1]] + 2 * up

        for p in sorted(range(len(edges)), key=lambda p: -finish(p))[:width]:
            out.append((edges[:p] + edges[p + 1 :], workers[:p] + workers[p + 1 :]))
    return out


def _refine(
    system: SystemModel, found: dict[tuple[int, int], Candidate], evals: int, method: str
) -> OptimizeResult:
    if not found:
        raise InfeasiblePlanError("no feasible (s_e, s_w) and node selection exists")
    ranked = sorted(found.values(), key=lambda c: c.mean_s)[:6]
    fine = [Candidate(c.plan, evaluate(system, c.plan, DEFAULT_GRID)) for c in ranked]
    fine.sort(key=lambda c: c.mean_s)
    return OptimizeResult(fine[0], tuple(fine[1:]), evals, method)


def _greedy_pair(
    system: SystemModel,
    build: Callable[[Selection, int, int], Plan | None],
    s_e: int,
    s_w: int,
    grid: int,
    width: int,
) -> tuple[Candidate | None, int]:
    """Greedy node removal for one (s_e, s_w): returns the best plan found and #evaluations."""
    keys = _worker_keys(system, (s_e + 1) * (s_w + 1) / system.n_workers)
    sel = _start_selection(system, _rank(keys), s_e, s_w)
    plan = None if sel is None else build(sel, s_e, s_w)
    if sel is None or plan is None:
        return None, 0
    cur, evals = evaluate(system, plan, grid), 1
    while True:
        scored = []
        for nb in _neighbours(system, sel, keys, s_w, width):
            nb_plan = build(nb, s_e, s_w)
            if nb_plan is not None:
                scored.append((evaluate(system, nb_plan, grid), nb, nb_plan))
                evals += 1
        if not scored:
            break
        value, nb, nb_plan = min(scored, key=lambda x: x[0])
        if value >= cur * (1 - 1e-9):
            break
        cur, sel, plan = value, nb, nb_plan
    return Candidate(plan, cur), evals


def greedy_jncss(
    system: SystemModel,
    *,
    hetero: bool = False,
    grid: int = SEARCH_GRID,
    width: int = 3,
    patience: int = 2,
) -> OptimizeResult:
    """Greedy JNCSS; see the module docstring.

    Tolerances are scanned s_e = 0, 1, ... and inside each s_w = 0, 1, ...; a scan stops
    after ``patience`` consecutive values that do not improve on its best, or when the lower
    bound of the next pair cannot beat the best plan found. ``width`` removals of each kind
    are tried per step.
    """
    build = _builder(system, hetero)
    found: dict[tuple[int, int], Candidate] = {}
    best = np.inf
    evals = 0
    se_stale = 0
    for s_e in range(system.n_edges):
        best_se = np.inf
        sw_stale = 0
        for s_w in range(max(system.workers_per_edge)):
            if _lower_bound(system, s_e, s_w) >= best:
                break
            cand, n_evals = _greedy_pair(system, build, s_e, s_w, grid, width)
            evals += n_evals
            if cand is None:
                continue
            found[(s_e, s_w)] = cand
            if cand.mean_s < best_se:
                best_se, sw_stale = cand.mean_s, 0
            else:
                sw_stale += 1
                if sw_stale >= patience:
                    break
        if best_se < best:
            best, se_stale = best_se, 0
        else:
            se_stale += 1
            if se_stale >= patience:
                break
    return _refine(system, found, evals, "greedy")


def _subsets(items: Sequence[int], min_size: int) -> list[tuple[int, ...]]:
    return [c for r in range(min_size, len(items) + 1) for c in itertools.combinations(items, r)]


def exhaustive_jncss(
    system: SystemModel, *, hetero: bool = False, grid: int = SEARCH_GRID
) -> OptimizeResult:
    """Every selection and every (s_e, s_w); refuses instances with too many to enumerate."""
    count = 1
    for m in system.workers_per_edge:
        count *= 2**m
    count *= system.n_edges * max(system.workers_per_edge)
    if count > MAX_EXHAUSTIVE:
        raise ValueError(
            f"exhaustive_jncss: about {count} evaluations (> {MAX_EXHAUSTIVE}); use greedy_jncss"
        )
    build = _builder(system, hetero)
    found: dict[tuple[int, int], Candidate] = {}
    evals = 0
    worker_sets = [_subsets(range(m), 1) for m in system.workers_per_edge]
    for edges in _subsets(range(system.n_edges), 1):
        for workers in itertools.product(*(worker_sets[e] for e in edges)):
            for s_e in range(len(edges)):
                for s_w in range(min(len(w) for w in workers)):
                    plan = build((edges, tuple(workers)), s_e, s_w)
                    if plan is None:
                        continue
                    value, evals = evaluate(system, plan, grid), evals + 1
                    if (s_e, s_w) not in found or value < found[(s_e, s_w)].mean_s:
                        found[(s_e, s_w)] = Candidate(plan, value)
    return _refine(system, found, evals, "exhaustive")
