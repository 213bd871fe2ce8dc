"""Test helpers: simulate a code end to end on random partition gradients (float64)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from common.coding import FlatCode, HierarchicalCode, combine


def partition_gradients(K: int, P: int = 4, seed: int = 0) -> np.ndarray:
    """(K, P) random partition gradients g_k."""
    return np.random.default_rng(seed).standard_normal((K, P))


def worker_messages(code: HierarchicalCode | FlatCode, G: np.ndarray) -> list[list[np.ndarray]]:
    """z_ij = sum_t coef_t g_{placement[i][j][t]}, for every worker."""
    return [
        [
            np.asarray(coefs) @ G[list(parts)]
            for parts, coefs in zip(code.placement[i], code.worker_coefficients[i], strict=True)
        ]
        for i in range(code.n_edges)
    ]


def decode_hierarchical(
    code: HierarchicalCode,
    z: list[list[np.ndarray]],
    edge_responders: Sequence[int],
    worker_responders: dict[int, Sequence[int]],
) -> np.ndarray:
    """What the master computes from the given responders (edge order = arrival order)."""
    ys = []
    for i in edge_responders:
        resp = list(worker_responders[i])
        w = code.edge_decode_weights(i, resp)
        ys.append(combine([z[i][j] for j in resp], w))
    a = code.master_decode_weights(list(edge_responders))
    return combine(ys, a)


def rel_error(got: np.ndarray, want: np.ndarray) -> float:
    return float(np.linalg.norm(got - want) / np.linalg.norm(want))
