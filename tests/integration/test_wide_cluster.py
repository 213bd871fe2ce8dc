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
        # a wide worker sends 4 more bytes (its float32 lo part) per parameter and vector;
        # per vector, since a loaded machine may leave either worker with stale results
        # (answered by a LateAnswer without a vector) and so with fewer vectors sent
        sent = [vector_bytes(cluster, i) for i in (0, 1)]
    assert [r["iteration"] for r in records] == list(range(6))
    assert all(r["ok"] for r in records)
    reference = reference_trace(config)
    assert [t for t, _ in trace] == list(range(6))
    err = max(
        float(np.linalg.norm(p - r) / np.linalg.norm(r))
        for (_, p), r in zip(trace, reference, strict=True)
    )
    assert err < 1e-9, f"worst relative error {err:.3g}"
    lo_bytes = reference.shape[1] * 4
    assert sent[0] - sent[1] > 0.5 * lo_bytes, f"bytes per vector {sent}, lo part {lo_bytes}"


def vector_bytes(cluster: InProcessCluster, edge: int) -> float:
    """Bytes worker-<edge>-0 sent per gradient vector: all it sent over its computed results
    less those it dropped as stale."""
    node = f"worker-{edge}-0"
    labels = {"edge": str(edge), "worker": "0"}
    computed = cluster.sample(node, "hgc_worker_compute_duration_seconds_count", labels)
    stale = cluster.sample(node, "hgc_worker_messages_dropped_total", {"reason": "late"})
    vectors = computed - stale
    assert vectors >= 1, f"{node}: {computed} results, {stale} stale"
    return cluster.sample(node, "hgc_worker_sent_bytes_total") / vectors


def _edge_running(code: HierarchicalCode, edge: int, P: int) -> tuple[Any, list[Any]]:
    """The edge's state machine with the real code, set up, its workers ready, model 0 out;
    returns it and the set-up messages it sent."""
    from common.runtime.messages import EdgeSetup, ModelUpdate, Ready, Register
    from services.common.actions import Received, SendDown, Started
    from services.edge.state import EdgeState

    e = EdgeState(edge, lambda spec: code)
    e.handle(Started(), 0.0)
    m = code.workers_per_edge[edge]
    for j in range(m):
        node = f"worker-{edge}-{j}"
        e.handle(Received(node, Register(-1, "worker", node, edge, j)), 0.0)
    acts = e.handle(
        Received("master", EdgeSetup(-1, edge, SPEC, {"kind": "d"}, {"kind": "m"})), 0.0
    )
    setups = [a.msg for a in acts if isinstance(a, SendDown)]
    for j in range(m):
        node = f"worker-{edge}-{j}"
        e.handle(Received(node, Ready(-1, node, edge, j)), 1.0)
    e.handle(Received("master", ModelUpdate(0, np.zeros(P))), 2.0)
    return e, setups


def test_the_edge_ships_lo_coefficients_checks_lo_parts_and_combines_in_longdouble() -> None:
    from common.coding.combine import split_wide
    from common.runtime.messages import EdgeGradient, WorkerGradient
    from services.common.actions import Drop, Received, SendUp

    code = code_from_spec(SPEC)
    assert isinstance(code, HierarchicalCode)
    P = 5
    rng = np.random.default_rng(1)
    g = rng.standard_normal((code.K, P))
    want = code.edge_targets[0] @ g  # what edge 0 must output: sum_k target_k g_k
    e, setups = _edge_running(code, 0, P)
    assert len(setups) == 7
    for j, s in enumerate(setups):  # the coefficients travel as the exact float64 pair
        assert np.array_equal(s.coefficients_lo, code.worker_coefficients_lo[0][j])  # type: ignore[index]
    sent = {}
    for j in range(7):
        c = code.worker_coefficients_wide(0, j)
        sent[j] = split_wide(c @ g[list(code.placement[0][j])].astype(np.longdouble))

    def grad(j: int, lo: np.ndarray | None) -> Received:
        hi = sent[j][0]
        msg = (
            WorkerGradient(0, 0, j, hi, 0.1)
            if lo is None
            else WorkerGradient(0, 0, j, hi, 0.1, lo=lo)
        )
        return Received(f"worker-0-{j}", msg)

    # hostile or stale lo parts are dropped and counted as malformed, the vector not used
    for bad in (
        None,
        sent[0][1].astype(np.float64),
        sent[0][1][:3],
        np.full(P, np.nan, np.float32),
    ):
        acts = e.handle(grad(0, bad), 3.0)
        reasons = [a.reason for a in acts if isinstance(a, Drop)]
        assert reasons in (["malformed"], ["non_finite"]), (bad, reasons)
    ups = []
    for j in range(1, 5):  # m - s_w = 4 answers: decoded
        ups += [a.msg for a in e.handle(grad(j, sent[j][1]), 3.0 + j) if isinstance(a, SendUp)]
    (out,) = ups
    assert isinstance(out, EdgeGradient) and out.responders == (1, 2, 3, 4)
    assert np.linalg.norm(out.vector - want) <= 1e-14 * np.linalg.norm(want)
    # the float64 edge refuses a lo part (its workers never send one)
    e1, setups1 = _edge_running(code, 1, P)
    assert all(s.coefficients_lo.size == 0 for s in setups1)
    msg = WorkerGradient(0, 1, 0, np.ones(P), 0.1, lo=np.zeros(P, np.float32))
    acts = e1.handle(Received("worker-1-0", msg), 3.0)
    assert [a.reason for a in acts if isinstance(a, Drop)] == ["malformed"]


def test_the_worker_checks_lo_coefficients_and_sends_hi_plus_lo() -> None:
    import dataclasses

    from common.runtime.messages import WorkerGradient, WorkerSetup
    from services.common.actions import (
        DataLoaded,
        Drop,
        GradientDone,
        LoadData,
        Received,
        SendUp,
        Started,
    )
    from services.worker.compute import WorkerData, coded_gradient
    from services.worker.state import WorkerState

    hi, lo = np.array([1.0, 2.0]), np.array([2.0**-60, -(2.0**-59)])
    setup = WorkerSetup(-1, 0, 1, (0, 1), hi, 4, {"kind": "d"}, {"kind": "m"}, coefficients_lo=lo)
    for bad in (lo[:1], lo.astype(np.float32), np.array([np.inf, 0.0])):
        w = WorkerState(0, 1)
        w.handle(Started(), 0.0)
        (drop,) = w.handle(Received("edge-0", dataclasses.replace(setup, coefficients_lo=bad)), 0.0)
        assert isinstance(drop, Drop) and drop.reason == "malformed"
    w = WorkerState(0, 1)
    w.handle(Started(), 0.0)
    (load,) = w.handle(Received("edge-0", setup), 0.0)
    assert isinstance(load, LoadData) and load.coefficients.dtype == np.longdouble
    assert np.array_equal(load.coefficients, hi.astype(np.longdouble) + lo)
    w.handle(DataLoaded(10), 0.0)

    class Model:  # two partitions' gradient sums: 1/3 and 1 per entry
        n_params = 3

        def gradient_sum(self, params: np.ndarray, X: np.ndarray, y: np.ndarray) -> np.ndarray:
            return np.full(3, float(X[0, 0]))

    data = WorkerData(
        Model(),  # type: ignore[arg-type]
        load.coefficients,
        [np.full((1, 1), 1 / 3), np.ones((1, 1))],
        [np.zeros(1), np.zeros(1)],
        (0, 1),
    )
    z = coded_gradient(data, np.zeros(3))
    assert z.dtype == np.longdouble
    assert np.all(z == load.coefficients[0] * np.longdouble(1 / 3) + load.coefficients[1])
    acts = w.handle(GradientDone(0, z, 0.1), 1.0)
    (msg,) = [a.msg for a in acts if isinstance(a, SendUp)]
    assert isinstance(msg, WorkerGradient)
    assert msg.vector.dtype == np.float64 and msg.lo.dtype == np.float32
    assert np.all(np.abs(msg.vector.astype(np.longdouble) + msg.lo - z) <= np.abs(z) * 2.0**-77)
    from common.coding.gauss import WIDE_AVAILABLE

    assert np.any(msg.lo != 0) or not WIDE_AVAILABLE  # the bits beyond float64 are sent
