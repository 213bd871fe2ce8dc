"""The master's aggregation strategies with real codes: the family picks the strategy, and
each decodes the full gradient sum_k g_k from the first answers it needs."""

from __future__ import annotations

import numpy as np
import pytest

from common.coding import HierarchicalCode, combine, make_code
from common.runtime.messages import EdgeGradient, WorkerGradient
from services.master.aggregation import (
    Attempt,
    FlatAggregation,
    HierarchicalAggregation,
    aggregation_for,
)

P = 3  # parameters


def _partials(K: int) -> np.ndarray:
    return np.random.default_rng(0).normal(size=(K, P))  # g_k, one row per partition


def test_hierarchical_code_decodes_from_the_first_edges() -> None:
    code = make_code("hgc", (2, 2, 2), s_e=1, s_w=1)
    assert isinstance(code, HierarchicalCode)
    agg = aggregation_for(code)
    assert isinstance(agg, HierarchicalAggregation) and agg.needed == 2
    g = _partials(code.K)
    a = Attempt(0, 0, 0.0)
    for i in (2, 0):  # edge 1 straggles
        y = code.edge_targets[i] @ g
        msg = EdgeGradient(0, i, y, (0, 1), 0.1, 0.0, (0.1, -1.0))
        assert agg.take(a, i, msg, 0.5 + i) is not None
    assert agg.take(a, 0, msg, 9.0) is None  # edge 2's vector again, as edge 0: refused
    worker_msg = WorkerGradient(0, 1, 0, np.zeros(P), 0.1)
    assert agg.take(a, 1, worker_msg, 1.0) is None  # the other family's answer
    assert agg.count(a) == 2 and sorted(agg.arrivals(a)) == [0.5, 2.5]
    vectors, weights, detail = agg.decode(a)
    np.testing.assert_allclose(combine(vectors, weights), g.sum(axis=0))
    assert detail["edges_used"] == ["edge-2", "edge-0"]
    assert detail["edge_stragglers"] == ["edge-1"]
    assert detail["worker_stragglers"] == ["worker-2-1", "worker-0-1"]
    assert "missing edges: edge-1 (no heartbeat)" in agg.shortfall(a, {"edge-0", "edge-2"})


@pytest.mark.parametrize("scheme", ["flat-frc", "flat-crc"])
def test_flat_code_decodes_from_the_first_relayed_workers(scheme: str) -> None:
    code = make_code(scheme, (2, 2), s=1)
    agg = aggregation_for(code)
    assert isinstance(agg, FlatAggregation) and agg.needed == 3
    g = _partials(code.K)
    a = Attempt(0, 0, 0.0)
    for i, j in [(1, 1), (0, 0), (1, 0)]:  # worker-0-1 straggles
        z = code.worker_coefficients[i][j] @ g[list(code.placement[i][j])]
        assert agg.take(a, i, WorkerGradient(0, i, j, z, 0.1), 1.0) == []
    assert agg.take(a, 0, WorkerGradient(0, 1, 1, np.zeros(P), 0.1), 1.0) is None  # wrong edge
    assert agg.count(a) == 3
    vectors, weights, detail = agg.decode(a)
    np.testing.assert_allclose(combine(vectors, weights), g.sum(axis=0))
    assert detail["worker_stragglers"] == ["worker-0-1"]
    assert detail["edges_used"] == ["edge-0", "edge-1"]
    assert agg.shortfall(a, set()).endswith("missing workers: worker-0-1")
