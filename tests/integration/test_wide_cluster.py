"""Wide (extended-precision) worker tiers in a real cluster (docs/numerics.md, "Wide tiers").

A code whose edge 0 has a wide Gaussian worker tier (workers send hi + lo, the edge combines in
longdouble) and whose edge 1 has a plain float64 Gaussian tier trains equal to uncoded gradient
descent (rel 1e-9), with a worker of the wide edge killed; the nodes are threads on real zmq
sockets (``InProcessCluster``). The edge's checks of the ``lo`` part are exercised on its state
machine with the real code.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from common.coding import HierarchicalCode, code_from_spec
from hgc.cluster import InProcessCluster, reference_trace

pytestmark = pytest.mark.timeout(180)

WINDOW: dict[str, Any] = {"heartbeat_s": 0.1, "liveness": 10}
# two edges of 7 workers tolerating 3: Gaussian worker tiers (seeds 0 and 1), the first wide
SPEC: dict[str, Any] = {
    "scheme": "hgc",
    "workers_per_edge": [7, 7],
    "s_e": 1,
    "s_w": 3,
    "gauss": {"edge": None, "workers": [0, 1]},
    "wide": [True, False],
}


def test_the_spec_builds_one_wide_and_one_float64_gaussian_tier() -> None:
    code = code_from_spec(SPEC)
    assert isinstance(code, HierarchicalCode)
    assert [t.kind for t in code.worker_tiers] == ["gauss", "gauss"]
    assert [code.edge_is_wide(i) for i in range(2)] == [True, False]
    assert code.worker_coefficients_lo[1] is None
    lo = code.worker_coefficients_lo[0]
    assert lo is not None and any(np.any(x != 0) for x in lo)  # the coefficients need it


def test_wide_tier_training_with_a_killed_worker_is_gradient_descent() -> None:
    config = {
        "code_spec": SPEC,
        "data_spec": {"kind": "digits"},
        "model_spec": {"kind": "logreg"},
        "training": {"iterations": 6, "learning_rate": 0.5, "deadline_s": 20.0},
        "seed": 3,
    }
    with InProcessCluster(config, **WINDOW) as cluster:
        cluster.kill("worker-0-1")
        assert cluster.wait() == 0
        trace = list(cluster.params_trace())
        records = cluster.records()
        # a wide worker sends 4 more bytes (its float32 lo part) per parameter and iteration
        sent = [cluster.sample(f"worker-{i}-0", "hgc_worker_sent_bytes_total") for i in (0, 1)]
    assert [r["iteration"] for r in records] == list(range(6))
    assert all(r["ok"] for r in records)
    reference = reference_trace(config)
    assert [t for t, _ in trace] == list(range(6))
    err = max(
        float(np.linalg.norm(p - r) / np.linalg.norm(r))
        for (_, p), r in zip(trace, reference, strict=True)
    )
    assert err < 1e-9, f"worst relative error {err:.3g}"
    lo_bytes = 6 * reference.shape[1] * 4
    assert sent[0] - sent[1] > 0.5 * lo_bytes, f"sent bytes {sent}, lo parts {lo_bytes}"
