"""Unequal loads (beyond the paper): give faster workers more partitions.

The construction of spec §3 decodes exactly for ANY placement in which every partition sits
on at least ``s_e + 1`` edges and, inside each of them, on at least ``s_w + 1`` workers. We
build such a placement with integer counts proportional to speed:

- edge i covers ``K_i`` partitions, ``sum_i K_i = K (s_e + 1)``, ``K_i <= K``, ``K_i``
  proportional to the summed speed of its workers; a cyclic fill over the K partitions puts
  every partition on exactly ``s_e + 1`` distinct edges;
- worker j of edge i holds ``D_ij`` of them, ``sum_j D_ij = K_i (s_w + 1)``, ``D_ij <= K_i``,
  proportional to its speed; a cyclic fill over the edge's partitions puts every one on
  exactly ``s_w + 1`` distinct workers.

A worker's speed is the load it processes per second on average, ``1 / (shift_s + 1/rate)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import numpy as np

from common.perf.plan import Plan
from common.perf.system import SystemModel, WorkerProfile

Placement = tuple[tuple[tuple[int, ...], ...], ...]


def worker_speed(w: WorkerProfile) -> float:
    """Average load fraction processed per second (1/s)."""
    per_load = w.shift_s + (0.0 if np.isinf(w.rate) else 1.0 / w.rate)
    return 1.0 / max(per_load, 1e-12)


def proportional_counts(
    weights: Sequence[float], total: int, cap: int, floor: int | Sequence[int]
) -> list[int]:
    """Integers ``floor <= c_k <= cap`` summing to ``total``, proportional to ``weights``.

    ``floor`` may differ per item. Largest-remainder rounding after water-filling the bounds.
    Raises ``ValueError`` if ``sum(floor) > total`` or ``len(weights) * cap < total``.
    """
    n = len(weights)
    lo = np.broadcast_to(np.asarray(floor, dtype=float), (n,))
    if lo.sum() > total or n * cap < total or np.any(lo > cap):
        raise ValueError(
            f"proportional_counts: cannot split {total} into {n} parts in [{floor}, {cap}]"
        )
    w = np.asarray(weights, dtype=float)
    share = np.zeros(n)
    free = np.ones(n, dtype=bool)
    remaining = float(total)
    for _ in range(n + 1):  # water-fill: clip at the bounds, re-share the rest
        share[free] = remaining * w[free] / w[free].sum()
        over = free & (share > cap)
        under = free & (share < lo)
        if not over.any() and not under.any():
            break
        share[over], share[under] = cap, lo[under]
        free &= ~(over | under)
        remaining = total - share[~free].sum()
        if not free.any():
            break
    counts = np.clip(np.floor(share + 1e-9), lo, cap).astype(int)
    order = np.argsort(-(share - counts), kind="stable")
    k = 0
    while counts.sum() < total:
        i = order[k % n]
        if counts[i] < cap:
            counts[i] += 1
        k += 1
    while counts.sum() > total:
        i = order[::-1][k % n]
        if counts[i] > lo[i]:
            counts[i] -= 1
        k += 1
    return [int(c) for c in counts]


def hetero_counts(
    speeds: Sequence[Sequence[float]], s_e: int, s_w: int, K: int
) -> tuple[list[int], list[list[int]]]:
    """Partitions per edge ``K_i`` and per worker ``D_ij`` (speed-proportional, valid counts)."""
    m = [len(row) for row in speeds]
    if not m or s_e > len(m) - 1 or s_w > min(m) - 1 or s_e < 0 or s_w < 0:
        raise ValueError(f"s_e={s_e}, s_w={s_w}: need 0 <= s_e <= n-1 and 0 <= s_w <= min m_i - 1")
    # each of an edge's m_i workers holds >= 1 partition: K_i (s_w+1) >= m_i
    floors = [-(-len(r) // (s_w + 1)) for r in speeds]
    k_edge = proportional_counts(
        [float(sum(r)) for r in speeds], K * (s_e + 1), cap=K, floor=floors
    )
    d = [
        list(_worker_counts(tuple(row), k_edge[i] * (s_w + 1), k_edge[i]))
        for i, row in enumerate(speeds)
    ]
    return k_edge, d


@lru_cache(maxsize=1 << 16)
def _worker_counts(speeds: tuple[float, ...], total: int, cap: int) -> tuple[int, ...]:
    """Memoised per-edge split: the JNCSS search asks for the same edge again and again
    (a move changes one edge, and most others keep their ``K_i``)."""
    return tuple(proportional_counts(speeds, total, cap=cap, floor=1))


def hetero_placement(speeds: Sequence[Sequence[float]], s_e: int, s_w: int, K: int) -> Placement:
    """A coverage-valid placement with speed-proportional loads.

    ``speeds[i][j]`` > 0 for the selected workers (positions in the selection). Returns
    ``placement[i][j]`` = sorted partition indices of worker j of edge i.
    """
    k_edge, counts = hetero_counts(speeds, s_e, s_w, K)
    placement = []
    start = 0
    for i in range(len(speeds)):
        s_i = [(start + x) % K for x in range(k_edge[i])]
        start = (start + k_edge[i]) % K
        pos = 0
        workers = []
        for dj in counts[i]:
            workers.append(tuple(sorted(s_i[(pos + x) % k_edge[i]] for x in range(dj))))
            pos = (pos + dj) % k_edge[i]
        placement.append(tuple(workers))
    return tuple(placement)


def coverage_ok(placement: Placement, K: int, s_e: int, s_w: int) -> bool:
    """Every partition on >= s_e+1 edges, with >= s_w+1 holders in each holding edge."""
    edges_holding = np.zeros(K, dtype=int)
    for edge in placement:
        holders = np.zeros(K, dtype=int)
        for parts in edge:
            holders[list(parts)] += 1
        if np.any((holders > 0) & (holders < s_w + 1)):
            return False
        edges_holding += holders > 0
    return bool(np.all(edges_holding >= s_e + 1))


def default_k(n_workers: int) -> int:
    """Partitions for a hetero placement: fine enough that rounding costs little."""
    return 4 * n_workers if n_workers <= 64 else 2 * n_workers


def make_hetero_plan(
    system: SystemModel,
    edges: Sequence[int],
    workers: Sequence[Sequence[int]],
    s_e: int,
    s_w: int,
    K: int | None = None,
) -> Plan:
    """An ``hgc-hetero`` plan on a selection with speed-proportional loads."""
    edges_t = tuple(int(e) for e in edges)
    workers_t = tuple(tuple(int(j) for j in w) for w in workers)
    speeds = [
        [worker_speed(system.workers[e][j]) for j in ws]
        for e, ws in zip(edges_t, workers_t, strict=True)
    ]
    k = K if K is not None else default_k(sum(len(w) for w in workers_t))
    placement = hetero_placement(speeds, s_e, s_w, k)
    loads = tuple(tuple(len(p) / k for p in edge) for edge in placement)
    spec = {
        "scheme": "hgc-hetero",
        "workers_per_edge": [len(w) for w in workers_t],
        "s_e": s_e,
        "s_w": s_w,
        "K": k,
        "placement": [[list(p) for p in edge] for edge in placement],
    }
    return Plan("hgc-hetero", edges_t, workers_t, spec, s_e=s_e, s_w=s_w, loads=loads)


def clear_count_cache() -> None:
    """Forget memoised per-edge splits (benchmarks time cold searches)."""
    _worker_counts.cache_clear()
