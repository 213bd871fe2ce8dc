"""A whole cluster in one process (threads), on real zmq sockets over loopback.

Exactness against uncoded gradient descent, stragglers within and beyond tolerance, late
messages. The subprocess versions are in tests/system/test_processes*.py.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from hgc.cluster import InProcessCluster, reference_trace

pytestmark = pytest.mark.timeout(120)

# A liveness window of 1 s (10 heartbeats of 0.1 s) for every cluster here: all nodes are
# threads of this one process, and on a loaded 2-core machine the cluster's default 0.4 s
# (4 x 0.1 s) is close enough to the scheduling noise, plus an emulated link's latency, to
# declare a live node dead (seen: an edge behind a 0.2 s link flapping until the Ready
# barrier timed out). Crashes are still detected within about a second.
WINDOW: dict[str, Any] = {"heartbeat_s": 0.1, "liveness": 10}


def run_config(code: dict[str, Any], **training: Any) -> dict[str, Any]:
    base = {"iterations": 6, "learning_rate": 0.5, "deadline_s": 10.0}
    base.update(training)
    return {
        "code": code,
        "data_spec": {"kind": "digits"},
        "model_spec": {"kind": "logreg"},
        "training": base,
        "seed": 3,
    }


HGC = {"scheme": "hgc", "workers_per_edge": [3, 3, 3], "s_e": 1, "s_w": 1}


def max_rel_error(trace: list[tuple[int, np.ndarray]], reference: np.ndarray) -> float:
    assert [t for t, _ in trace] == list(range(len(reference)))
    return max(
        float(np.linalg.norm(p - r) / np.linalg.norm(r))
        for (_, p), r in zip(trace, reference, strict=True)
    )


@pytest.mark.parametrize(
    "code",
    [
        HGC,
        {"scheme": "uncoded", "workers_per_edge": [2, 3]},
        {"scheme": "flat-frc", "workers_per_edge": [2, 2], "s": 1},
        {"scheme": "flat-crc", "workers_per_edge": [2, 2, 1], "s": 1},
    ],
    ids=lambda c: c["scheme"],
)
def test_coded_training_is_gradient_descent(code: dict[str, Any]) -> None:
    config = run_config(code)
    with InProcessCluster(config, **WINDOW) as cluster:
        assert cluster.wait() == 0
        trace = list(cluster.params_trace())
        records = cluster.records()
    assert max_rel_error(trace, reference_trace(config)) < 1e-9
    assert [r["iteration"] for r in records] == list(range(6))
    assert all(r["ok"] and r["error"] is None for r in records)
    assert records[-1]["loss"] < records[0]["loss"]


def test_negative_control_wrong_learning_rate_is_detected() -> None:
    config = run_config(HGC, iterations=3)
    with InProcessCluster(config, **WINDOW) as cluster:
        assert cluster.wait() == 0
        trace = list(cluster.params_trace())
    other = run_config(HGC, iterations=3, learning_rate=0.5001)
    assert max_rel_error(trace, reference_trace(other)) > 1e-9


def test_killed_worker_and_edge_within_tolerance_lose_no_iteration() -> None:
    config = run_config(HGC, iterations=8)
    with InProcessCluster(config, **WINDOW) as cluster:
        cluster.kill("worker-0-1")
        cluster.kill("edge-2")
        assert cluster.wait() == 0
        trace = list(cluster.params_trace())
        records = cluster.records()
    assert [r["iteration"] for r in records] == list(range(8))
    assert all(r["ok"] for r in records)
    assert max_rel_error(trace, reference_trace(config)) < 1e-9
    # from the iteration after the kills on, the dead edge is never used
    assert "edge-2" in records[-1]["edge_stragglers"]


def test_beyond_tolerance_stops_with_a_message_naming_edges_and_workers() -> None:
    # the deadline leaves the edges time (2 windows) to see their workers die and say so
    config = run_config(HGC, iterations=50, deadline_s=3.0, on_failure="stop")
    with InProcessCluster(config, **WINDOW) as cluster:
        for node in ("worker-0-0", "worker-0-1", "worker-1-0", "worker-1-1"):
            cluster.kill(node)
        status = cluster.wait(timeout=30)
        records = cluster.records()
    assert status == 1
    failed = [r for r in records if not r["ok"]]
    assert len(failed) == 1 and failed[0] is records[-1]
    error = failed[0]["error"]
    assert "missing edges: edge-0" in error and "edge-1" in error
    # the edges report which of their workers are gone
    assert "worker-0-0" in error and "worker-1-1" in error
    # the run ended (wait returned) and the failed attempt waited out the whole deadline
    assert failed[0]["duration_s"] >= 3.0


def test_beyond_tolerance_retry_then_give_up() -> None:
    config = run_config(HGC, iterations=50, deadline_s=0.5, on_failure="retry", max_retries=2)
    with InProcessCluster(config, **WINDOW) as cluster:
        for node in ("edge-0", "edge-1"):
            cluster.kill(node)
        status = cluster.wait(timeout=30)
        records = cluster.records()
        retried = cluster.sample("master", "hgc_master_iterations_total", {"outcome": "retried"})
    assert status == 1
    failed = [r for r in records if not r["ok"]]
    assert [r["attempt"] for r in failed] == [0, 1, 2]
    assert len({r["iteration"] for r in failed}) == 1
    assert "gave up after 2 retries" not in failed[-1]["error"]  # the record has the cause
    assert retried == 2


def test_skip_policy_moves_on_and_finishes() -> None:
    config = run_config(HGC, iterations=20, deadline_s=0.3, on_failure="skip")
    with InProcessCluster(config, **WINDOW) as cluster:
        for node in ("edge-0", "edge-1"):
            cluster.kill(node)
        assert cluster.wait(timeout=60) == 0
        records = cluster.records()
        params = cluster.params()
    assert [r["iteration"] for r in records] == list(range(20))  # each once: no retries
    assert not records[-1]["ok"] and "missing edges: edge-0" in records[-1]["error"]
    assert np.isfinite(params).all()


def test_slow_worker_vectors_are_dropped_as_late_not_waited_for() -> None:
    config = run_config(HGC, iterations=30)
    # 0.5 s: far beyond an iteration of the other workers even on a loaded machine (~20 ms
    # idle), so "left out most of the time" does not race the scheduler
    config["emulation_spec"] = {"worker-0-0": {"fixed_delay_s": 0.5}}
    with InProcessCluster(config, **WINDOW) as cluster:
        assert cluster.wait() == 0
        records = cluster.records()
        late = cluster.sample("worker-0-0", "hgc_worker_messages_dropped_total", {"reason": "late"})
        late += cluster.sample("edge-0", "hgc_edge_messages_dropped_total", {"reason": "late"})
        delayed = cluster.sample(
            "worker-0-0", "hgc_worker_emulated_delay_seconds_count", {"edge": "0", "worker": "0"}
        )
    used_edge_0 = [r for r in records if "edge-0" in r["edges_used"]]
    slow = [r for r in used_edge_0 if "worker-0-0" in r["worker_stragglers"]]
    # generous: the slow worker is left out most of the time, and its old work is dropped
    assert len(slow) >= len(used_edge_0) / 2
    assert late >= 1 and delayed >= 1
    assert all(r["ok"] for r in records)


def test_metrics_count_iterations_and_arrivals() -> None:
    config = run_config(HGC, iterations=4)
    with InProcessCluster(config, **WINDOW) as cluster:
        assert cluster.wait() == 0
        ok = cluster.sample("master", "hgc_master_iterations_total", {"outcome": "ok"})
        arrivals = sum(
            cluster.sample("master", "hgc_master_edge_arrival_seconds_count", {"edge": str(i)})
            for i in range(3)
        )
        computed = cluster.sample(
            "worker-1-1", "hgc_worker_compute_duration_seconds_count", {"edge": "1", "worker": "1"}
        )
    assert ok == 4 and arrivals >= 8 and computed >= 1


def test_link_emulation_from_the_emulation_spec_makes_an_edge_straggle() -> None:
    config = run_config(HGC, iterations=8)
    config["emulation_spec"] = {
        "edge-0": {"link": {"latency_s": 0.2}},
        "worker-1-2": {"link": {"latency_s": 0.2, "bandwidth_bytes_per_s": 1e9}},
    }
    with InProcessCluster(config, **WINDOW) as cluster:
        assert cluster.wait() == 0
        records = cluster.records()
        trace = list(cluster.params_trace())
        active = {
            node: cluster.sample(
                node, f"hgc_{node.split('-')[0]}_emulation_active", {"mechanism": "inprocess_link"}
            )
            for node in ("master", "edge-0", "edge-1", "worker-1-2", "worker-1-1")
        }
        statuses = dict(cluster.status)
    assert active == {"master": 1, "edge-0": 1, "edge-1": 1, "worker-1-2": 1, "worker-1-1": 0}
    # the Shutdown held back by the emulated links still reached everyone: all exit 0
    assert set(statuses.values()) == {0}, statuses
    # generous: the delayed edge and worker are left out in most iterations, the run stays exact
    assert sum("edge-0" in r["edge_stragglers"] for r in records) >= len(records) / 2
    assert max_rel_error(trace, reference_trace(config)) < 1e-9


def test_a_computing_worker_keeps_heartbeating() -> None:
    """Compute runs off the I/O loop: a worker busy for 3 liveness windows (3 s of real CPU
    work against 10 x 0.1 s) is never declared dead by its edge. Were the compute on the
    loop, no heartbeat would go out for 3 s and the worker would be declared dead in every
    iteration; with it off the loop, a false alarm needs a heartbeat gap of a whole second,
    ten heartbeat intervals, which two busy loops on two cores do not cause (a 0.4 s window
    was too close to the scheduling noise of a loaded machine)."""
    config = run_config({"scheme": "uncoded", "workers_per_edge": [2, 2]}, iterations=2)
    config["emulation_spec"] = {"worker-0-0": {"fixed_delay_s": 3.0, "compute": "work"}}
    with InProcessCluster(config, **WINDOW) as cluster:
        assert cluster.wait() == 0
        records = cluster.records()
        edge = cluster.runners["edge-0"].state
    assert all(r["ok"] for r in records)
    assert edge.failures_reported == 0
    assert min(r["duration_s"] for r in records) >= 3.0  # the edge did wait for the slow one
