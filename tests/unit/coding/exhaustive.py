"""Brute force over straggler patterns, written independently of common.coding.numerics."""

from __future__ import annotations

import itertools
import math

import numpy as np

from common.coding import HierarchicalCode, combine
from tests.unit.coding.helpers import partition_gradients, worker_messages

FULL_LIMIT = 30_000  # patterns enumerated end to end per configuration


def _gone_sets(N: int, s: int, exact_size: bool) -> list[tuple[int, ...]]:
    sizes = [s] if exact_size else range(s + 1)
    return [c for t in sizes for c in itertools.combinations(range(N), t)]


def count_patterns(code: HierarchicalCode, exact_size: bool) -> int:
    n, m = code.n_edges, code.workers_per_edge
    return sum(
        math.prod(len(_gone_sets(m[i], code.s_w, exact_size)) for i in range(n) if i not in gone)
        for gone in _gone_sets(n, code.s_e, exact_size)
    )


def check_all_patterns(code: HierarchicalCode, tol: float, seed: int = 0) -> tuple[float, int]:
    """Worst relative error of the master's result over every tolerated pattern.

    Responders are given in a seeded random arrival order and include every survivor, so the
    decoders must pick the first ones themselves. Also checks every edge's own output against
    its target sum_k edge_targets[i, k] g_k. Enumerates patterns with <= s_e / <= s_w missing
    when there are at most FULL_LIMIT of them, else those with exactly s_e / s_w missing.
    """
    rng = np.random.default_rng(seed)
    G = partition_gradients(code.K, P=4, seed=seed)
    want = G.sum(axis=0)
    z = worker_messages(code, G)
    n, m = code.n_edges, code.workers_per_edge
    exact_size = count_patterns(code, exact_size=False) > FULL_LIMIT
    assert count_patterns(code, exact_size) <= FULL_LIMIT, "configuration too large to enumerate"
    edge_out: dict[tuple[int, tuple[int, ...]], np.ndarray] = {}
    for i in range(n):
        target = code.edge_targets[i] @ G
        for gone in _gone_sets(m[i], code.s_w, exact_size):
            order = [j for j in rng.permutation(m[i]).tolist() if j not in gone]
            y = combine([z[i][j] for j in order], code.edge_decode_weights(i, order))
            err = np.linalg.norm(y - target) / max(np.linalg.norm(target), 1e-300)
            assert err <= tol or np.linalg.norm(target) == 0, f"edge {i} lost {gone}: {err}"
            edge_out[(i, gone)] = y
    worst, count = 0.0, 0
    for gone_e in _gone_sets(n, code.s_e, exact_size):
        edges = [i for i in rng.permutation(n).tolist() if i not in gone_e]
        choices = [_gone_sets(m[i], code.s_w, exact_size) for i in edges]
        weights = code.master_decode_weights(edges)
        for combo in itertools.product(*choices):
            got = combine([edge_out[(i, g)] for i, g in zip(edges, combo, strict=True)], weights)
            worst = max(worst, float(np.linalg.norm(got - want) / np.linalg.norm(want)))
            count += 1
    return worst, count
