"""Metric names and labels are a contract (docs/architecture.md): read them back from the
registry, and over HTTP from ``serve_metrics``."""

from __future__ import annotations

import socket
import urllib.request

import pytest
from prometheus_client import REGISTRY, CollectorRegistry

from common.runtime.metrics import (
    DROP_REASONS,
    MECHANISMS,
    EdgeMetrics,
    MasterMetrics,
    NodeMetrics,
    WorkerMetrics,
    serve_metrics,
)

pytestmark = pytest.mark.timeout(30)


def test_master_metrics() -> None:
    reg = CollectorRegistry()
    m = MasterMetrics(reg)
    m.iteration_duration.observe(0.3)
    m.iteration_done("ok")
    m.iteration_done("ok")
    m.iteration_done("failed")
    m.edge_wait.observe(0.1)
    m.edge_arrival(2, 0.2)
    m.edge_straggler(1)
    m.decode_duration.observe(0.01)
    m.loss.set(0.5)
    m.accuracy.set(0.9)
    m.iteration.set(7)
    m.set_code(
        {
            "scheme": "hgc",
            "n_edges": 3,
            "workers_per_edge": "3,3,3",
            "s_e": 1,
            "s_w": 1,
            "K": 9,
            "D": 4,
        }
    )
    g = reg.get_sample_value
    assert g("hgc_master_iteration_duration_seconds_count") == 1
    assert g("hgc_master_iterations_total", {"outcome": "ok"}) == 2
    assert g("hgc_master_iterations_total", {"outcome": "failed"}) == 1
    assert g("hgc_master_iterations_total", {"outcome": "retried"}) == 0
    assert g("hgc_master_edge_wait_seconds_sum") == pytest.approx(0.1)
    assert g("hgc_master_edge_arrival_seconds_count", {"edge": "2"}) == 1
    assert g("hgc_master_edge_stragglers_total", {"edge": "1"}) == 1
    assert g("hgc_master_decode_duration_seconds_count") == 1
    assert (g("hgc_master_loss"), g("hgc_master_accuracy_ratio"), g("hgc_master_iteration")) == (
        0.5,
        0.9,
        7,
    )
    info = {"scheme": "hgc", "n_edges": "3", "workers_per_edge": "3,3,3"}
    info |= {"s_e": "1", "s_w": "1", "K": "9", "D": "4"}
    assert g("hgc_master_code_info", info) == 1
    with pytest.raises(ValueError, match="outcome"):
        m.iteration_done("meh")


def test_edge_and_worker_metrics_carry_their_labels() -> None:
    reg = CollectorRegistry()
    e = EdgeMetrics(reg, edge=2)
    e.worker_wait.observe(0.4)
    e.worker_arrival(1, 0.3)
    e.worker_straggler(0)
    e.decode_duration.observe(0.02)
    g = reg.get_sample_value
    assert g("hgc_edge_worker_wait_seconds_count", {"edge": "2"}) == 1
    assert g("hgc_edge_worker_arrival_seconds_count", {"edge": "2", "worker": "1"}) == 1
    assert g("hgc_edge_worker_stragglers_total", {"edge": "2", "worker": "0"}) == 1
    assert g("hgc_edge_decode_duration_seconds_count", {"edge": "2"}) == 1
    reg2 = CollectorRegistry()
    w = WorkerMetrics(reg2, edge=2, worker=1)
    w.compute_duration.observe(1.5)
    w.emulated_delay.observe(0.5)
    labels = {"edge": "2", "worker": "1"}
    assert reg2.get_sample_value("hgc_worker_compute_duration_seconds_sum", labels) == 1.5
    assert reg2.get_sample_value("hgc_worker_emulated_delay_seconds_sum", labels) == 0.5


@pytest.mark.parametrize("role", ["master", "edge", "worker"])
def test_common_node_metrics_start_at_explicit_zero(role: str) -> None:
    reg = CollectorRegistry()
    m = NodeMetrics(role, reg)
    for reason in DROP_REASONS:
        assert reg.get_sample_value(f"hgc_{role}_messages_dropped_total", {"reason": reason}) == 0
    for mech in MECHANISMS:
        assert reg.get_sample_value(f"hgc_{role}_emulation_active", {"mechanism": mech}) == 0
    m.dropped("late", 3)
    m.emulation_active("tbf", True)
    m.received_bytes.inc(10)
    m.sent_bytes.inc(20)
    m.peers_alive.set(4)
    g = reg.get_sample_value
    assert g(f"hgc_{role}_messages_dropped_total", {"reason": "late"}) == 3
    assert g(f"hgc_{role}_emulation_active", {"mechanism": "tbf"}) == 1
    assert g(f"hgc_{role}_received_bytes_total") == 10
    assert g(f"hgc_{role}_sent_bytes_total") == 20
    assert g(f"hgc_{role}_peers_alive") == 4


def test_emulation_sources_keep_the_gauge_up_while_any_is_active() -> None:
    reg = CollectorRegistry()
    m = NodeMetrics("edge", reg)

    def gauge() -> float | None:
        return reg.get_sample_value("hgc_edge_emulation_active", {"mechanism": "inprocess_link"})

    m.emulation_source("inprocess_link", "up", True)
    m.emulation_source("inprocess_link", "down", True)
    m.emulation_source("inprocess_link", "down", False)
    assert gauge() == 1
    m.emulation_source("inprocess_link", "up", False)
    assert gauge() == 0


def test_bad_labels_are_refused() -> None:
    m = NodeMetrics("edge", CollectorRegistry())
    with pytest.raises(ValueError, match="reason"):
        m.dropped("cosmic_ray")
    with pytest.raises(ValueError, match="mechanism"):
        m.emulation_active("carrier_pigeon", True)
    with pytest.raises(ValueError, match="role"):
        NodeMetrics("client", CollectorRegistry())


def test_many_nodes_in_one_process_do_not_collide() -> None:
    before = {m.name for m in REGISTRY.collect()}
    for j in range(3):
        WorkerMetrics(CollectorRegistry(), edge=0, worker=j)
    EdgeMetrics(CollectorRegistry(), edge=0)
    MasterMetrics(CollectorRegistry())
    assert {m.name for m in REGISTRY.collect()} == before  # the global registry is untouched


def test_serve_metrics_on_port_zero_and_close() -> None:
    reg = CollectorRegistry()
    NodeMetrics("worker", reg).dropped("malformed", 2)
    server, port = serve_metrics(reg, "127.0.0.1", 0)
    assert port > 0
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
        body = r.read().decode()
    assert 'hgc_worker_messages_dropped_total{reason="malformed"} 2.0' in body
    server.close()
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=2):
        pass
    # the port is free again
    server2, port2 = serve_metrics(reg, "127.0.0.1", port)
    assert port2 == port
    server2.close()
    with pytest.raises(ValueError, match="port"):
        serve_metrics(reg, "127.0.0.1", 70000)
