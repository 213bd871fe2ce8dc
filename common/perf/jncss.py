"""JNCSS: Joint Node and Coding-Scheme Selection (spec §5, our algorithm).

Minimise the exact expected iteration time over the selected edges, the selected workers of
each edge and the tolerances (s_e, s_w), subject to feasibility on the selection.

- :func:`greedy_jncss`: screens tolerance pairs, then searches node selections of the best
  ones jointly over edges with the frontier engine of ``common.perf.jncss_search``
  (enumeration of non-dominated per-edge options on small systems; a best-improvement
  descent from threshold starts on lattices of per-edge tables on large ones) and scores the
  winners exactly (docs/simulator.md, "JNCSS").
- hetero: candidates are re-scored with speed-proportional loads (each also with all workers
  of its selected edges), and on systems of at most 256 workers the best is polished by a
  subset local search (see :func:`_polish_subsets`) that may drop or add ANY single worker of
  a selected edge, or swap one for another.
- :func:`exhaustive_jncss`: every subset of edges and of workers, every (s_e, s_w); for
  instances small enough to enumerate, to measure the greedy's gap.

Both search with a coarse grid and re-evaluate the winners on the default grid. The load is
``(s_e+1)(s_w+1)/M_selected`` (``hgc-jncss``) or speed-proportional (``hgc-hetero``).
K does not change the modelled time (only D/K does); the plan carries the smallest valid K.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from common.coding import is_feasible
from common.perf import jncss_search as search
from common.perf.batch import SelectionEvaluator, hierarchical_cdf, support
from common.perf.exact import exact_distribution
from common.perf.hetero import default_k, hetero_counts, make_hetero_plan, worker_speed
from common.perf.model import compile_plan
from common.perf.plan import InfeasiblePlanError, Plan, make_plan
from common.perf.system import SystemModel

SEARCH_GRID = 192
SCREEN_GRID = 64  # large systems rank tolerance pairs on this grid
REFINE_GRID = 1024  # the winners are re-evaluated on this grid
REFINE_TOP = 4
BIG_REFINE = 256  # above this many workers the fine re-evaluation is batched (float32)
REFINE_MARGIN = 0.03  # only winners within 3 % of the best are re-evaluated finely
MAX_EXHAUSTIVE = 200_000  # selections x tolerance pairs
SWAP_MAX_WORKERS = 8  # swap moves (m^2 per edge) only on edges this small
POLISH_BUDGET = 96  # subset moves evaluated per polish step (a 32x32 system stays fast)
COMBINE_TOP = 6  # at a single-move optimum, try pairs of this many best moves
POLISH_MARGIN = 0.05  # polish searched pairs within 5 % of the best prefix optimum
POLISH_MARGIN_LARGE = 0.0  # large systems: polish the best pair only ...
POLISH_MAX_WORKERS = 256  # ... and only up to this many workers (exact subset moves are dear)
THRESHOLDS = 6  # descent starts keep the workers below one of this many speed levels

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
    by_pair: tuple[Candidate, ...] = ()  # the best plan of every scored (s_e, s_w)


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
        if not is_feasible(m, s_e, s_w):
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


Counts = tuple[int, ...]  # per topology edge: how many of its fastest workers take part


def _selection(counts: Counts, rank: list[list[int]]) -> Selection:
    edges = tuple(e for e, k in enumerate(counts) if k > 0)
    return edges, tuple(tuple(rank[e][: counts[e]]) for e in edges)


def _trim(counts: list[int], s_e: int, s_w: int) -> Counts | None:
    """Make (s_e, s_w) possible: drop edges with too few workers, then the slowest workers of
    the largest edges while (s_e+1) max m_i > M. None if nothing feasible remains."""
    c = [k if k >= s_w + 1 else 0 for k in counts]
    if sum(1 for k in c if k) < s_e + 1:
        return None
    while (s_e + 1) * max(c) > sum(c):
        big = int(np.argmax(c))
        if c[big] <= s_w + 1:
            return None
        c[big] -= 1
    return tuple(c)


class _Moves:
    """Single-node moves from a selection, ranked by cheap mean-time keys so that only the
    ``width`` most promising of each kind are evaluated exactly."""

    def __init__(self, system: SystemModel, keys: list[list[float]], s_w: int, width: int):
        self.keys, self.s_w, self.width = keys, s_w, width
        self.rank = _rank(keys)
        self.m = system.workers_per_edge
        b = float(system.gradient_bytes)
        self.up = [2 * e.uplink.mean_transfer_s(b) for e in system.edges]

    def finish(self, e: int, k: int) -> float:
        """Mean arrival of the worker edge e waits for with k workers, plus its uplink."""
        need = max(k - self.s_w, 1)
        return self.keys[e][self.rank[e][need - 1]] + self.up[e]

    def __call__(self, c: Counts) -> list[Counts]:
        w, rank, keys = self.width, self.rank, self.keys
        sel = [e for e, k in enumerate(c) if k > 0]
        out: list[Counts] = []

        def with_(e: int, k: int) -> None:
            x = list(c)
            x[e] = k
            out.append(tuple(x))

        drop_w = sorted((e for e in sel if c[e] > 1), key=lambda e: -keys[e][rank[e][c[e] - 1]])
        for e in drop_w[:w]:
            with_(e, c[e] - 1)
        if len(sel) > 1:
            for e in sorted(sel, key=lambda e: -self.finish(e, c[e]))[:w]:
                with_(e, 0)
        add_w = sorted((e for e in sel if c[e] < self.m[e]), key=lambda e: keys[e][rank[e][c[e]]])
        for e in add_w[:w]:
            with_(e, c[e] + 1)
        out_edges = [e for e, k in enumerate(c) if k == 0 and self.m[e] > self.s_w]
        for e in sorted(out_edges, key=lambda e: self.finish(e, self.m[e]))[:w]:
            with_(e, self.m[e])  # an edge comes back with all its workers ...
            if self.m[e] > self.s_w + 1:
                with_(e, self.s_w + 1)  # ... or with only as many as it needs
        return out


def _refine(
    system: SystemModel, found: dict[tuple[int, int], Candidate], evals: int, method: str
) -> OptimizeResult:
    if not found:
        raise InfeasiblePlanError("no feasible (s_e, s_w) and node selection exists")
    ranked = sorted(found.values(), key=lambda c: c.mean_s)
    close = [c for c in ranked[:REFINE_TOP] if c.mean_s <= ranked[0].mean_s * (1 + REFINE_MARGIN)]
    if system.n_workers <= BIG_REFINE:
        fine = [Candidate(c.plan, evaluate(system, c.plan, REFINE_GRID)) for c in close]
    else:  # the same exact CDF, batched in float32: far cheaper on thousands of workers
        scorer = _exact_scorer(system, close[0].plan.scheme == "hgc-hetero", REFINE_GRID)
        fine = []
        for c in close:
            sub = tuple(
                tuple(c.plan.workers[c.plan.edges.index(e)]) if e in c.plan.edges else ()
                for e in range(system.n_edges)
            )
            value = float(_subset_means(scorer, [sub], c.plan.s_e, c.plan.s_w)[0])
            fine.append(Candidate(c.plan, value))
    fine.sort(key=lambda c: c.mean_s)
    refined = {(c.plan.s_e, c.plan.s_w): c for c in fine}
    by_pair = tuple(refined.get(k, c) for k, c in sorted(found.items()))
    rest = [c for c in ranked[len(close) : REFINE_TOP]]  # cannot win: search-grid values
    return OptimizeResult(fine[0], tuple(fine[1:] + rest), evals, method, by_pair)


class _Scorer:
    """Scores batches of selections (counts) for one (s_e, s_w) with the batched exact CDF."""

    def __init__(self, system: SystemModel, rank: list[list[int]], hetero: bool, grid: int):
        self.system, self.rank, self.hetero = system, rank, hetero
        self.evaluator = SelectionEvaluator(system, rank, grid)
        self.speeds = [[worker_speed(system.workers[e][j]) for j in r] for e, r in enumerate(rank)]
        self.evals = 0

    def feasible(self, c: Counts, s_e: int, s_w: int) -> bool:
        m = [k for k in c if k > 0]
        if not m or min(m) < s_w + 1 or len(m) < s_e + 1:
            return False
        return self.hetero or is_feasible(m, s_e, s_w)

    def _loads(self, c: Counts, s_e: int, s_w: int) -> np.ndarray:
        out = np.zeros((len(c), self.evaluator.m))
        on = [e for e, k in enumerate(c) if k > 0]
        speeds = [self.speeds[e][: c[e]] for e in on]
        k_total = default_k(sum(c))
        _, d = hetero_counts(speeds, s_e, s_w, k_total)
        for e, row in zip(on, d, strict=True):
            out[e, : len(row)] = np.array(row) / k_total
        return out

    def __call__(self, counts: list[Counts], s_e: int, s_w: int) -> np.ndarray:
        self.evals += len(counts)
        loads = None
        if self.hetero:
            loads = np.stack([self._loads(c, s_e, s_w) for c in counts])
        return self.evaluator.means(counts, s_e, s_w, loads)


Subset = tuple[tuple[int, ...], ...]  # per topology edge: selected rank positions, ascending


def _subset_means(
    scorer: _Scorer, subsets: list[Subset], s_e: int | Sequence[int], s_w: int
) -> np.ndarray:
    """E[T] (s) of arbitrary worker subsets, shape ``(C,)`` (hetero or equal loads, as the
    scorer says); ``s_e`` one for all or one per subset.

    The same computation as :meth:`SelectionEvaluator.means`, but a worker takes part by
    membership (a boolean mask ``(C, n, m)``) instead of by being among the fastest
    ``counts[e]``; non-members never miss, exactly like padding.
    """
    ev = scorer.evaluator
    scorer.evals += len(subsets)
    c = len(subsets)
    valid = np.zeros((c, ev.n, ev.m), dtype=bool)
    loads = np.zeros((c, ev.n, ev.m))
    k_total = [default_k(sum(len(p) for p in sub)) for sub in subsets]
    s_es = [s_e] * c if isinstance(s_e, int) else list(s_e)
    for i, sub in enumerate(subsets):
        on = [e for e, pos in enumerate(sub) if pos]
        if not scorer.hetero:  # equal loads (s_e+1)(s_w+1)/M over the selected workers
            share = (s_es[i] + 1) * (s_w + 1) / sum(len(sub[e]) for e in on)
            for e in on:
                valid[i, e, list(sub[e])] = True
                loads[i, e, list(sub[e])] = share
            continue
        speeds = [[scorer.speeds[e][q] for q in sub[e]] for e in on]
        _, d = hetero_counts(speeds, s_es[i], s_w, k_total[i])
        for e, row in zip(on, d, strict=True):
            valid[i, e, list(sub[e])] = True
            loads[i, e, list(sub[e])] = np.array(row) / k_total[i]
    cnt = valid.sum(axis=2)
    shift, scale = ev.shift_s[None] * loads, ev.inv_rate[None] * loads
    edge_on = cnt > 0
    off_v = ev.off_v[None] + (ev.combine[None] * np.maximum(cnt - s_w, 0))[:, :, None]
    off_w = np.broadcast_to(ev.off_w[None], off_v.shape)
    lo, hi = support(shift, scale, ev.link_v, valid, off_v, edge_on, ev.pi, ev.slowdown)
    t = np.linspace(lo, hi, ev.grid, axis=1)
    misses = np.array(s_es) + (~edge_on).sum(axis=1)
    cdf = hierarchical_cdf(
        t, shift, scale, ev.link_v, ev.link_w, valid, off_v, off_w, edge_on,
        s_w, misses, ev.pi, ev.slowdown, ev.dtype,
    )  # fmt: skip
    return np.asarray(lo + np.trapezoid(1.0 - cdf, t, axis=1))


def _subset_moves(
    sub: Subset, m: Sequence[int], s_w: int, in_order: Sequence[int], out_order: Sequence[int]
) -> list[Subset]:
    """Neighbours of ``sub``, at most ``POLISH_BUDGET`` of them.

    Inside selected edges (``in_order``): drop the edge, drop any one worker, add any one
    worker, or (edges of at most ``SWAP_MAX_WORKERS``) swap one in for one out. Edges that
    are out (``out_order``) come back with their fastest ``s_w`` workers plus any one other:
    the best re-entry may be a middle worker alone.
    """
    out: list[Subset] = []

    def with_(e: int, pos: set[int]) -> None:
        x = list(sub)
        x[e] = tuple(sorted(pos))
        out.append(tuple(x))

    for e in in_order:
        have, rest = set(sub[e]), [q for q in range(m[e]) if q not in sub[e]]
        with_(e, set())
        for q in sub[e]:
            if len(have) > 1:
                with_(e, have - {q})
        for q in rest:
            with_(e, have | {q})
        if m[e] <= SWAP_MAX_WORKERS:
            for q_out in sub[e]:
                for q_in in rest:
                    with_(e, (have - {q_out}) | {q_in})
        if len(out) >= POLISH_BUDGET:
            return out[:POLISH_BUDGET]
    for e in out_order:
        for q in range(s_w, m[e]):
            with_(e, set(range(s_w)) | {q})
        if len(out) >= POLISH_BUDGET:
            break
    return out[:POLISH_BUDGET]


def _combine_best(sub: Subset, nbs: list[Subset], values: np.ndarray) -> list[Subset]:
    """Pairs of the ``COMBINE_TOP`` best single moves that change different edges, applied
    together: two drops that only pay off jointly are invisible to single moves."""
    top = [nbs[int(k)] for k in np.argsort(values)[:COMBINE_TOP]]
    changed = [next(e for e in range(len(sub)) if nb[e] != sub[e]) for nb in top]
    out = []
    for a, b in itertools.combinations(range(len(top)), 2):
        if changed[a] != changed[b]:
            x = list(top[a])
            x[changed[b]] = top[b][changed[b]]
            out.append(tuple(x))
    return out


def _polish_subsets(
    scorer: _Scorer, moves: _Moves, start: Counts | Subset, value: float, s_e: int, s_w: int
) -> tuple[Subset, float]:
    """Best-improvement local search over worker subsets from the prefix optimum ``start``.

    Selected edges are visited latest-finishing first, then the edges that are out
    earliest-finishing first (by mean keys), so on large systems the move budget goes to the
    edges that most likely matter. At a single-move optimum, pairs of the best single moves
    are tried before giving up.
    """
    sub: Subset = tuple(
        tuple(range(k)) if isinstance(k, int) else tuple(k)
        for k in start  # type: ignore[union-attr]
    )
    cur, seen = value, {sub}
    m = [len(r) for r in moves.rank]

    def fresh(cands: list[Subset]) -> list[Subset]:
        ok = [
            c
            for c in dict.fromkeys(cands)
            if c not in seen and scorer.feasible(tuple(len(p) for p in c), s_e, s_w)
        ]
        seen.update(ok)
        return ok

    while True:
        in_order = sorted(
            (e for e, p in enumerate(sub) if p), key=lambda e: -moves.finish(e, len(sub[e]))
        )
        out_order = sorted(
            (e for e, p in enumerate(sub) if not p and m[e] > s_w),
            key=lambda e: moves.finish(e, m[e]),
        )
        nbs = fresh(_subset_moves(sub, m, s_w, in_order, out_order))
        if not nbs:
            break
        values = _subset_means(scorer, nbs, s_e, s_w)
        if values.min() >= cur * (1 - 1e-9):
            nbs = fresh(_combine_best(sub, nbs, values))
            if not nbs:
                break
            values = _subset_means(scorer, nbs, s_e, s_w)
        k = int(np.argmin(values))
        if values[k] >= cur * (1 - 1e-9):
            break
        cur, sub = float(values[k]), nbs[k]
    return sub, cur


def _prefix_sizes(lo: int, hi: int, most: int = 8) -> list[int]:
    if hi - lo + 1 <= most:
        return list(range(lo, hi + 1))
    return sorted({int(round(x)) for x in np.linspace(lo, hi, most)})


class _Patience:
    """A scan over tolerances stops after ``limit`` consecutive values that do not improve
    on its best (shared by the greedy screen and the all-nodes screen)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.best = np.inf
        self.stale = 0

    def exhausted(self, value: float) -> bool:
        if value < self.best:
            self.best, self.stale = value, 0
            return False
        self.stale += 1
        return self.stale >= self.limit


def _pairs(system: SystemModel) -> list[tuple[int, int]]:
    return [
        (s_e, s_w) for s_e in range(system.n_edges) for s_w in range(max(system.workers_per_edge))
    ]


def _exact_scorer(system: SystemModel, hetero: bool, grid: int) -> _Scorer:
    """A scorer whose rank is the topology order: subsets are topology worker indices."""
    return _Scorer(system, [list(range(m)) for m in system.workers_per_edge], hetero, grid)


def _as_subset(options: tuple[tuple[int, ...], ...]) -> Subset:
    return tuple(tuple(o) for o in options)


@dataclass
class _PairResult:
    s_e: int
    s_w: int
    value: float
    subset: Subset  # per topology edge: selected topology worker indices
    screen: float


def _polish_hetero(
    system: SystemModel, scorer: _Scorer, sub: Subset, value: float, s_e: int, s_w: int
) -> tuple[Subset, float]:
    """hgc-hetero's subset polish of ``sub`` (moves in the natural worker order)."""
    keys = _worker_keys(system, (s_e + 1) * (s_w + 1) / system.n_workers)
    moves = _Moves(system, keys, s_w, 3)
    moves.rank = [list(range(m)) for m in system.workers_per_edge]
    return _polish_subsets(scorer, moves, sub, value, s_e, s_w)


def _screen_subset(
    system: SystemModel, scorer: _Scorer, s_e: int, s_w: int
) -> tuple[Subset, Counts, list[list[int]]] | None:
    """The pair's all-nodes selection (trimmed to feasibility), with the fastest-first worker
    order at the pair's nominal load."""
    rank = _rank(_worker_keys(system, (s_e + 1) * (s_w + 1) / system.n_workers))
    full = _trim(list(system.workers_per_edge), s_e, s_w)
    if full is None or not scorer.feasible(full, s_e, s_w):
        return None
    return tuple(tuple(sorted(rank[e][:k])) for e, k in enumerate(full)), full, rank


def _screen(
    system: SystemModel, scorer: _Scorer, s_e: int, s_w: int
) -> tuple[float, Counts, list[list[int]]] | None:
    """Exact E[T] of the pair's all-nodes selection (see :func:`_screen_subset`)."""
    got = _screen_subset(system, scorer, s_e, s_w)
    if got is None:
        return None
    sub, full, rank = got
    return float(_subset_means(scorer, [sub], s_e, s_w)[0]), full, rank


def _screen_all(
    system: SystemModel, scorer: _Scorer
) -> dict[tuple[int, int], tuple[float, Counts, list[list[int]]]]:
    """:func:`_screen` of every pair, one batch per s_w (small systems)."""
    out = {}
    for s_w in range(max(system.workers_per_edge)):
        got = {
            s_e: x
            for s_e in range(system.n_edges)
            if (x := _screen_subset(system, scorer, s_e, s_w)) is not None
        }
        if not got:
            continue
        values = _subset_means(scorer, [x[0] for x in got.values()], list(got), s_w)
        for (s_e, (_, full, rank)), v in zip(got.items(), values.tolist(), strict=True):
            out[(s_e, s_w)] = (v, full, rank)
    return out


def _search_one_pair(
    system: SystemModel,
    arrays: search.SystemArrays,
    scorer: _Scorer,
    s_e: int,
    s_w: int,
    screened: tuple[float, Counts, list[list[int]]],
    grid: int,
    top: int,
) -> list[tuple[float, Subset]]:
    """Candidate selections of one pair from the frontier engine, exactly re-scored."""
    ref, full, rank = screened
    ref_load = (s_e + 1) * (s_w + 1) / sum(full)
    options = search.edge_options(system.workers_per_edge, rank, s_w)
    if search.combinations_count(options) <= search.ENUM_MAX:
        found = search.enumerate_pair(arrays, options, s_e, s_w, ref, ref_load, grid, top)
    else:
        starts = _descent_starts(system, options, rank, full, s_e, s_w)
        found = search.descend_pair(arrays, options, s_e, s_w, starts, ref, ref_load, grid, top)
    full_sub = tuple(tuple(sorted(rank[e][:k])) for e, k in enumerate(full))
    subs = [
        x
        for x in dict.fromkeys(_as_subset(o) for _, o in found)
        if x != full_sub and scorer.feasible(tuple(len(p) for p in x), s_e, s_w)
    ]
    values = _subset_means(scorer, subs, s_e, s_w).tolist() if subs else []
    return sorted([*zip(values, subs, strict=True), (ref, full_sub)])


def _descent_starts(
    system: SystemModel,
    options: list[list[tuple[int, ...]]],
    rank: list[list[int]],
    full: Counts,
    s_e: int,
    s_w: int,
    keys: list[list[float]] | None = None,
) -> list[tuple[int, ...]]:
    """Option indices of the descent's starts: all nodes, the fastest edges only, and each
    of those with only the workers below a common speed threshold (every edge drops its
    slow device class at once: a change no single edge's move can find, since the master
    waits for the slowest edges)."""
    index = [
        {o: i for i, o in enumerate(opts)} if k <= search.SUBSET_MAX else None
        for opts, k in zip(options, system.workers_per_edge, strict=True)
    ]  # prefix options: index k - s_w for k workers
    if keys is None:
        keys = _worker_keys(system, (s_e + 1) * (s_w + 1) / sum(full))
    m = list(system.workers_per_edge)
    up = [2 * e.uplink.mean_transfer_s(float(system.gradient_bytes)) for e in system.edges]
    finish = [keys[e][rank[e][max(m[e] - s_w, 1) - 1]] + up[e] for e in range(len(m))]
    order = sorted((e for e in range(len(m)) if full[e]), key=lambda e: finish[e])
    flat = np.round(np.concatenate([np.asarray(k, dtype=float) for k in keys]), 12)
    levels = np.sort(flat)
    levels = levels[np.r_[True, levels[1:] != levels[:-1]]]  # (np.unique imports numpy.ma)
    if levels.size > THRESHOLDS:
        levels = levels[np.linspace(0, levels.size - 1, THRESHOLDS + 1)[1:].round().astype(int)]
    edge_of = np.repeat(np.arange(len(m)), m)
    below = [
        np.bincount(edge_of, weights=flat <= tau * (1 + 1e-9), minlength=len(m)).astype(int)
        for tau in levels[:-1]
    ]
    counts: list[Counts] = [full]
    for k in [len(order), *_prefix_sizes(s_e + 1, len(order), 4)]:
        keep = set(order[:k])
        for cap in [np.asarray(m), *below]:
            c = _trim([int(cap[e]) if e in keep else 0 for e in range(len(m))], s_e, s_w)
            if c is not None:
                counts.append(c)
    out = []
    for c in dict.fromkeys(counts):
        try:
            out.append(
                tuple(
                    (k - s_w if k else 0) if ix is None else ix[tuple(sorted(rank[e][:k]))]
                    for e, (k, ix) in enumerate(zip(c, index, strict=True))
                )
            )
        except KeyError:
            continue
    return out


LATTICE_GRID = 128  # time points of the large-system search tables
DESCENTS = 2  # descents per searched pair, from its best starts
HETERO_STARTS = 2  # hgc-hetero: each searched pair's best starts' edges, all workers, scored too
EXACT_TOP = 4  # plans of the searched pairs scored exactly (best search-table values first)


def _at_grid(scorer: _Scorer, grid: int) -> _Scorer:
    """The same scorer (and evaluator arrays) on another time grid."""
    out = copy.copy(scorer)
    out.evaluator = copy.copy(scorer.evaluator)
    out.evaluator.grid = grid
    return out


def _greedy_large(
    system: SystemModel,
    hetero: bool,
    grid: int,
    patience: int,
    refine_pairs: int,
    top: int,
    polish: bool,
    lattice_grid: int,
) -> OptimizeResult:
    """:func:`greedy_jncss` on systems with many tolerance pairs (docstring there)."""
    arrays = search.SystemArrays.of(system)
    eq = _exact_scorer(system, False, grid)
    scorer = _exact_scorer(system, True, grid) if hetero else eq
    coarse = _at_grid(eq, SCREEN_GRID)
    m = list(system.workers_per_edge)
    n, m_all = len(m), sum(m)
    # per pair: screen value (best start), the lattice, its options, the starts ranked
    screens: dict[tuple[int, int], tuple[float, search.Lattice, list[tuple[int, ...]]]] = {}
    per_sw: dict[int, tuple[list[list[float]], list[list[int]], list[list[tuple[int, ...]]]]] = {}
    lattices: dict[int, search.Lattice] = {}
    scale: list[float] = []  # the best screened E[T] so far: the lattices' time scale

    def lattice(s_w: int) -> search.Lattice | None:
        if s_w not in per_sw:
            keys = _worker_keys(system, min(2, n) * (s_w + 1) / m_all)
            rank = _rank(keys)
            per_sw[s_w] = (keys, rank, search.edge_options(m, rank, s_w))
        lat = lattices.get(s_w)
        if lat is not None and (not scale or lat.fits(scale[0])):
            return lat
        ref = scale[0] if scale else None
        if ref is None:  # the grid's scale: the all-nodes plan of a first pair, exactly
            got = _screen_subset(system, eq, min(1, n - 1), s_w)
            if got is None:
                return None
            ref = float(_subset_means(coarse, [got[0]], min(1, n - 1), s_w)[0])
        lattices[s_w] = search.Lattice(arrays, per_sw[s_w][2], s_w, ref, lattice_grid)
        return lattices[s_w]

    def screen(s_e: int, s_w: int) -> float:
        """The pair's best start's value (search tables)."""
        if (s_e, s_w) in screens:
            return screens[(s_e, s_w)][0]
        full = _trim(list(m), s_e, s_w)
        if full is None:
            return np.inf
        for _ in range(2):  # a second time on a finer grid if the first was far too coarse
            lat = lattice(s_w)
            if lat is None:
                return np.inf
            keys, rank, options = per_sw[s_w]
            starts = _descent_starts(system, options, rank, full, s_e, s_w, keys)
            values = search._Stack(lat.ladder(s_e), options, s_e).values(np.array(starts))
            order = np.argsort(values)
            best = float(values[order[0]])
            screens[(s_e, s_w)] = (best, lat, [starts[i] for i in order])
            if np.isfinite(best) and (not scale or best < scale[0]):
                scale[:] = [best]
            if not np.isfinite(best) or lat.fits(best):
                break
        return best

    # two patience scans over the pair grid, s_e outer then s_w outer (each stops a line
    # after ``patience`` non-improving values): either alone misses optima the other finds
    for outer, inner in ((n, max(m)), (max(m), n)):
        by_s_e = outer == n
        over_a = _Patience(patience)
        for a in range(outer):
            over_b = _Patience(patience)
            for b in range(inner):
                pair = (a, b) if by_s_e else (b, a)
                if _lower_bound(system, *pair) >= min(over_a.best, over_b.best):
                    break
                if over_b.exhausted(screen(*pair)):
                    break
            if over_a.exhausted(over_b.best):
                break
    if not screens:
        raise InfeasiblePlanError("no feasible (s_e, s_w) and node selection exists")
    ordered = sorted(screens, key=lambda p: screens[p][0])
    # descents on the best screened pairs (search-table values) ...
    searched: list[tuple[float, tuple[int, int], Subset]] = []
    for pair in ordered[:refine_pairs]:
        _, lat, starts = screens[pair]
        st = search._Stack(lat.ladder(pair[0]), lat.options, pair[0])
        for value, o in search.descend(st, lat.options, starts, top, DESCENTS):
            sub = _as_subset(o)
            if scorer.feasible(tuple(len(p) for p in sub), *pair):
                searched.append((value, pair, sub))
    # ... and the best few of all their plans scored exactly (one batch per s_w)
    searched.sort(key=lambda x: x[0])
    chosen: dict[tuple[tuple[int, int], Subset], None] = {}
    for _, pair, sub in searched:
        if len(chosen) >= EXACT_TOP:
            break
        chosen[(pair, sub)] = None
        if hetero:  # speed-proportional loads make slow workers cheap to keep
            every = tuple(tuple(range(k)) if p else () for p, k in zip(sub, m, strict=True))
            chosen[(pair, every)] = None
    if hetero:  # ... so the edge selections of the searched pairs' starts, all workers each
        for pair in ordered[:refine_pairs]:
            _, lat, starts = screens[pair]
            for start in starts[:HETERO_STARTS]:
                on = [len(lat.options[e][i]) > 0 for e, i in enumerate(start)]
                every = tuple(tuple(range(k)) if x else () for x, k in zip(on, m, strict=True))
                if scorer.feasible(tuple(len(p) for p in every), *pair):
                    chosen[(pair, every)] = None
    results: dict[tuple[int, int], list[tuple[float, Subset]]] = {}
    for s_w in sorted({pair[1] for pair, _ in chosen}):
        group = [(pair, sub) for pair, sub in chosen if pair[1] == s_w]
        values = _subset_means(scorer, [x[1] for x in group], [x[0][0] for x in group], s_w)
        for (pair, sub), v in zip(group, values.tolist(), strict=True):
            results.setdefault(pair, []).append((v, sub))
    for cands in results.values():
        cands.sort(key=lambda x: x[0])
    if not results:
        raise InfeasiblePlanError("no feasible (s_e, s_w) and node selection exists")
    build = _builder(system, hetero)
    found_c: dict[tuple[int, int], Candidate] = {}
    top_value = min(r[0][0] for r in results.values())
    for (s_e, s_w), cands in results.items():
        value, sub = cands[0]
        if (
            hetero
            and polish
            and m_all <= POLISH_MAX_WORKERS
            and value <= top_value * (1 + POLISH_MARGIN_LARGE)
        ):
            sub, value = _polish_hetero(system, scorer, sub, value, s_e, s_w)
        edges = tuple(e for e, p in enumerate(sub) if p)
        plan = build((edges, tuple(sub[e] for e in edges)), s_e, s_w)
        if plan is not None:
            found_c[(s_e, s_w)] = Candidate(plan, value)
    if not hetero:  # the other screened pairs: their best start (search-table value)
        for pair, (value, lat, starts) in screens.items():
            if pair in found_c:
                continue
            sub = tuple(lat.options[e][i] for e, i in enumerate(starts[0]))
            edges = tuple(e for e, p in enumerate(sub) if p)
            plan = build((edges, tuple(sub[e] for e in edges)), *pair)
            if plan is not None:
                found_c[pair] = Candidate(plan, value)
    evals = scorer.evals + (0 if scorer is eq else eq.evals)
    return _refine(system, found_c, evals, "greedy")


def greedy_jncss(
    system: SystemModel,
    *,
    hetero: bool = False,
    grid: int = SEARCH_GRID,
    patience: int = 3,
    full_scan_pairs: int = 64,
    refine_pairs: int = 4,
    top: int = 2,
    polish: bool = True,
    search_grid: int = 0,
    **_legacy: object,
) -> OptimizeResult:
    """JNCSS by per-edge frontiers (``common.perf.jncss_search``; docs/simulator.md).

    Systems with at most ``full_scan_pairs`` tolerance pairs:

    1. Screen every pair by the exact E[T] of its all-nodes selection.
    2. For every screened pair, search node selections jointly over edges with the frontier
       engine (enumeration of the non-dominated per-edge options, or the descent) and
       re-score its ``top`` best exactly; then the pairs next to the best (s_e +- 1,
       s_w +- 1) are searched too, so nodes and tolerances change together.
    3. hetero: the same candidates are re-scored with speed-proportional loads, and the best
       pairs polished by the subset local search.

    Larger systems (:func:`_greedy_large`): pairs are screened by the best of their descent
    starts on per-s_w lattices of search tables, in two patience scans (``patience``
    non-improving values end a line); the ``refine_pairs`` best are searched by the descent
    (``top`` plans each) and the best ``EXACT_TOP`` plans overall are scored exactly.
    ``search_grid`` overrides the search tables' time points (256 small, 128 large).
    """
    n_pairs = system.n_edges * max(system.workers_per_edge)
    small = n_pairs <= full_scan_pairs
    if not small:
        return _greedy_large(
            system, hetero, grid, patience, refine_pairs, top, polish,
            search_grid or LATTICE_GRID,
        )  # fmt: skip
    if small:
        patience = n_pairs
    sgrid = search_grid or 256
    arrays = search.SystemArrays.of(system)
    eq = _exact_scorer(system, False, grid)
    scorer = _exact_scorer(system, True, grid) if hetero else eq
    coarse = eq if small else _exact_scorer(system, False, SCREEN_GRID)  # pair ranking only
    screens: dict[tuple[int, int], tuple[float, Counts, list[list[int]]]] = {}
    over_s_e = _Patience(patience)
    if small:
        screens = _screen_all(system, eq)
    for s_e in range(system.n_edges if small else 0, system.n_edges):
        over_s_w = _Patience(patience)
        for s_w in range(max(system.workers_per_edge)):
            if _lower_bound(system, s_e, s_w) >= over_s_e.best:
                break
            got = _screen(system, coarse, s_e, s_w)
            if got is None:
                continue
            screens[(s_e, s_w)] = got
            if over_s_w.exhausted(got[0]):
                break
        if over_s_e.exhausted(over_s_w.best):
            break
    ordered = sorted(screens, key=lambda p: screens[p][0])
    todo = ordered if small else ordered[:refine_pairs]
    results: dict[tuple[int, int], list[tuple[float, Subset]]] = {}

    def run(pair: tuple[int, int]) -> None:
        if pair in results:
            return
        if pair not in screens:
            got = _screen(system, eq, *pair)
            if got is None:
                return
            screens[pair] = got
        cands = _search_one_pair(system, arrays, eq, *pair, screens[pair], sgrid, top)
        if hetero:
            # speed-proportional loads make slow workers cheap to keep: every candidate's
            # selected edges are also tried with all their workers
            full = [
                tuple(
                    tuple(range(m)) if p else ()
                    for p, m in zip(sub, system.workers_per_edge, strict=True)
                )
                for _, sub in cands
            ]
            subs = list(dict.fromkeys([sub for _, sub in cands] + full))
            values = _subset_means(scorer, subs, *pair)
            cands = sorted(zip(values.tolist(), subs, strict=True))
        results[pair] = cands

    for pair in todo:
        run(pair)
    for _ in range(4 if small else 2):  # joint moves: tolerances next to the best pair
        best = min(results, key=lambda p: results[p][0][0])
        s_e, s_w = best
        near = [(s_e + a, s_w + b) for a in (-1, 0, 1) for b in (-1, 0, 1)]
        near = [
            p
            for p in near
            if p not in results
            and 0 <= p[0] < system.n_edges
            and 0 <= p[1] < max(system.workers_per_edge)
        ]
        if not near:
            break
        for p in near:
            run(p)
    evals = scorer.evals + eq.evals + (0 if coarse is eq else coarse.evals)
    found: dict[tuple[int, int], Candidate] = {}
    build = _builder(system, hetero)
    top_value = min(r[0][0] for r in results.values())
    for (s_e, s_w), cands in results.items():
        value, sub = cands[0]
        if hetero and polish and value <= top_value * (1 + POLISH_MARGIN):
            sub, value = _polish_hetero(system, scorer, sub, value, s_e, s_w)
        edges = tuple(e for e, p in enumerate(sub) if p)
        plan = build((edges, tuple(sub[e] for e in edges)), s_e, s_w)
        if plan is not None:
            found[(s_e, s_w)] = Candidate(plan, value)
    for pair, (value, full, rank) in screens.items():
        if pair in found:
            continue
        sel = _selection(full, rank)
        plan = build((sel[0], tuple(tuple(sorted(w)) for w in sel[1])), *pair)
        if plan is not None:
            found[pair] = Candidate(plan, value)
    return _refine(system, found, evals, "greedy")


def tolerance_table(result: OptimizeResult) -> list[dict[str, float | int]]:
    """The best plan's E[T] at each (s_e, s_w) the search scored, ascending (s_e, s_w)."""
    rows = [result.best, *result.alternatives]
    return sorted(
        ({"s_e": c.plan.s_e, "s_w": c.plan.s_w, "expected_time_s": c.mean_s} for c in rows),
        key=lambda r: (r["s_e"], r["s_w"]),
    )


def best_fixed_tolerances(
    system: SystemModel,
    se_range: Sequence[int],
    sw_range: Sequence[int],
    *,
    grid: int = SEARCH_GRID,
    patience: int = 3,
    top: int = 3,
) -> list[tuple[int, int]]:
    """The ``top`` feasible (s_e, s_w) with the smallest E[T] on ALL nodes, best first.

    Screens with the batched evaluator (scans stop after ``patience`` non-improving values,
    as in :func:`greedy_jncss`); the caller re-scores the few returned exactly.
    """
    m = system.workers_per_edge
    full = tuple(m)
    ev = SelectionEvaluator(system, [list(range(k)) for k in m], grid)
    scored: list[tuple[float, int, int]] = []
    over_s_e = _Patience(patience)
    for s_e in se_range:
        over_s_w = _Patience(patience)
        for s_w in sw_range:
            if not is_feasible(m, s_e, s_w):
                continue
            value = float(ev.means([full], s_e, s_w)[0])
            scored.append((value, s_e, s_w))
            if over_s_w.exhausted(value):
                break
        if over_s_e.exhausted(over_s_w.best):
            break
    return [(a, b) for _, a, b in sorted(scored)[:top]]


def _subsets(items: Sequence[int], min_size: int) -> list[tuple[int, ...]]:
    return [c for r in range(min_size, len(items) + 1) for c in itertools.combinations(items, r)]


def exhaustive_jncss(
    system: SystemModel, *, hetero: bool = False, grid: int = SEARCH_GRID, batched: bool = True
) -> OptimizeResult:
    """Every selection and every (s_e, s_w); refuses instances with too many to enumerate.

    ``batched`` scores the selections of a pair in vectorised batches (the same exact CDF
    as :func:`evaluate`, per-candidate grids, float32); ``batched=False`` scores plan by plan
    with :func:`evaluate` (the original reference, far slower). Either way the best plans of
    the best pairs are re-scored on the fine grid.
    """
    count = 1
    for m in system.workers_per_edge:
        count *= 2**m
    count *= system.n_edges * max(system.workers_per_edge)
    if count > MAX_EXHAUSTIVE:
        raise ValueError(
            f"exhaustive_jncss: about {count} evaluations (> {MAX_EXHAUSTIVE}); use greedy_jncss"
        )
    if not batched:
        return _exhaustive_one_by_one(system, hetero, grid)
    build = _builder(system, hetero)
    scorer = _exact_scorer(system, hetero, grid)
    n = system.n_edges
    worker_sets = [[(), *_subsets(range(m), 1)] for m in system.workers_per_edge]
    selections = [sub for sub in itertools.product(*worker_sets) if any(sub)]
    found: dict[tuple[int, int], Candidate] = {}
    for s_e, s_w in _pairs(system):
        subs = [x for x in selections if scorer.feasible(tuple(len(p) for p in x), s_e, s_w)]
        if not hetero:
            subs = [x for x in subs if sum(1 for p in x if p) >= s_e + 1]
        best: tuple[float, Subset] | None = None
        for lo in range(0, len(subs), 2048):
            chunk = subs[lo : lo + 2048]
            values = _subset_means(scorer, chunk, s_e, s_w)
            k = int(np.argmin(values))
            if best is None or values[k] < best[0]:
                best = (float(values[k]), chunk[k])
        if best is None:
            continue
        edges = tuple(e for e in range(n) if best[1][e])
        plan = build((edges, tuple(best[1][e] for e in edges)), s_e, s_w)
        if plan is not None:
            found[(s_e, s_w)] = Candidate(plan, best[0])
    return _refine(system, found, scorer.evals, "exhaustive")


def _exhaustive_one_by_one(system: SystemModel, hetero: bool, grid: int) -> OptimizeResult:
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
