"""Placements: which partitions each worker holds (spec §3 steps 1-2, the 0/1 variant, checks).

A placement is nested ``placement[i][j] -> tuple of partition ids`` for worker j of edge i.
"""

from __future__ import annotations

from collections.abc import Sequence

from common.coding.errors import InfeasibleCodeError

Placement = tuple[tuple[tuple[int, ...], ...], ...]


def cyclic_placement(workers_per_edge: Sequence[int], s_e: int, s_w: int, K: int) -> Placement:
    """The HGC cyclic fill: edges walk the circle of K partitions, then workers walk S_i.

    K must be valid (see :func:`common.coding.bounds.check_K`). Edge i takes the next
    K_i = K(s_e+1)m_i/M partitions; inside edge i, each worker takes the next D = K(s_e+1)(s_w+1)/M
    entries of S_i (mod K_i). Every partition lands on s_e+1 edges, s_w+1 workers in each.
    """
    m = list(workers_per_edge)
    M = sum(m)
    D = K * (s_e + 1) * (s_w + 1) // M
    start = 0
    out = []
    for mi in m:
        Ki = K * (s_e + 1) * mi // M
        S = [(start + t) % K for t in range(Ki)]
        start = (start + Ki) % K
        out.append(tuple(tuple(S[(j * D + t) % Ki] for t in range(D)) for j in range(mi)))
    return tuple(out)


def fr_applies(workers_per_edge: Sequence[int], s_e: int, s_w: int) -> str | None:
    """None when the 0/1 fractional-repetition variant applies, else the reason it does not."""
    m = list(workers_per_edge)
    n = len(m)
    if len(set(m)) != 1:
        return f"workers_per_edge={m} is heterogeneous (the 0/1 variant needs equal m_i)"
    if n % (s_e + 1):
        return f"s_e+1={s_e + 1} does not divide n_edges={n}"
    if m[0] % (s_w + 1):
        return f"s_w+1={s_w + 1} does not divide workers per edge={m[0]}"
    return None


def fr_groups(workers_per_edge: Sequence[int], s_e: int, s_w: int) -> int:
    """Number of 0/1 partition groups: (n/(s_e+1))·(m/(s_w+1))."""
    return (len(workers_per_edge) // (s_e + 1)) * (workers_per_edge[0] // (s_w + 1))


def fr_placement(workers_per_edge: Sequence[int], s_e: int, s_w: int, K: int) -> Placement:
    """Partition group (p, q) on every worker of worker-group q in every edge of edge-group p.

    Edge i is in edge-group i // (s_e+1); worker j in worker-group j // (s_w+1). K must be a
    multiple of the number of groups; each group gets K / groups consecutive partitions.
    """
    m = workers_per_edge[0]
    n_wgroups = m // (s_w + 1)
    per = K // fr_groups(workers_per_edge, s_e, s_w)
    out = []
    for i in range(len(workers_per_edge)):
        p = i // (s_e + 1)
        edge = []
        for j in range(m):
            g = p * n_wgroups + j // (s_w + 1)
            edge.append(tuple(range(g * per, (g + 1) * per)))
        out.append(tuple(edge))
    return tuple(out)


def normalise_placement(placement: Sequence[Sequence[Sequence[int]]], K: int) -> Placement:
    """Check shapes and ids (every id an int in 0..K-1, no repeats inside one worker)."""
    if isinstance(K, bool) or not isinstance(K, int) or K < 1:
        raise InfeasibleCodeError(f"K: must be a positive integer, got {K!r}")
    if len(placement) == 0:
        raise InfeasibleCodeError("placement: need at least one edge")
    out = []
    for i, edge in enumerate(placement):
        if len(edge) == 0:
            raise InfeasibleCodeError(f"placement[{i}]: edge {i} has no workers")
        rows = []
        for j, parts in enumerate(edge):
            ids = []
            for k in parts:
                if isinstance(k, bool) or not isinstance(k, int) or not 0 <= k < K:
                    raise InfeasibleCodeError(
                        f"placement[{i}][{j}]: partition id {k!r} is not an integer in 0..{K - 1}"
                    )
                ids.append(int(k))
            if len(set(ids)) != len(ids):
                raise InfeasibleCodeError(f"placement[{i}][{j}]: repeated partition ids {ids}")
            rows.append(tuple(ids))
        out.append(tuple(rows))
    return tuple(out)


def coverage(
    placement: Placement, K: int, s_e: int, s_w: int
) -> tuple[list[tuple[int, ...]], list[dict[int, tuple[int, ...]]]]:
    """Holder sets of a placement, validated against (s_e, s_w).

    Returns ``(edge_holders, worker_holders)``: ``edge_holders[k]`` are the edges with at least
    s_w+1 workers holding k (the edges that count for k), and ``worker_holders[i][k]`` the
    workers of edge i holding k, for each k that edge i counts for. Workers in an edge with too
    few holders of k get coefficient 0 for k. Raises :class:`InfeasibleCodeError` naming the
    first under-covered partition.
    """
    n = len(placement)
    if s_e >= n:
        raise InfeasibleCodeError(f"s_e={s_e} >= n_edges={n}: the largest feasible s_e is {n - 1}")
    worker_holders: list[dict[int, tuple[int, ...]]] = []
    raw: list[dict[int, list[int]]] = []
    for edge in placement:
        h: dict[int, list[int]] = {}
        for j, parts in enumerate(edge):
            for k in parts:
                h.setdefault(k, []).append(j)
        raw.append(h)
        worker_holders.append({k: tuple(js) for k, js in h.items() if len(js) >= s_w + 1})
    edge_holders: list[tuple[int, ...]] = []
    for k in range(K):
        good = tuple(i for i in range(n) if k in worker_holders[i])
        if len(good) < s_e + 1:
            weak = {i: len(raw[i][k]) for i in range(n) if k in raw[i] and i not in good}
            detail = (
                f"; edges {sorted(weak)} hold it on only {sorted(set(weak.values()))} workers"
                if weak
                else ""
            )
            raise InfeasibleCodeError(
                f"partition {k} is under-covered: it needs >= s_e+1 = {s_e + 1} edges each with "
                f">= s_w+1 = {s_w + 1} holding workers, but only {len(good)} edges {list(good)} "
                f"qualify{detail}"
            )
        edge_holders.append(good)
    return edge_holders, worker_holders
