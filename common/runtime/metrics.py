"""Prometheus metrics of each role, on an injected ``CollectorRegistry`` (never the global one,
so an in-process cluster of many nodes does not collide).

Names and labels are the contract of ``docs/architecture.md`` ("Metrics")::

    reg = CollectorRegistry()
    m = WorkerMetrics(reg, edge=1, worker=2)
    m.compute_duration.observe(0.12)          # already bound to edge="1", worker="2"
    m.dropped("malformed")                    # hgc_worker_messages_dropped_total{reason=...}
    server, port = serve_metrics(reg, "127.0.0.1", 0)   # /metrics; server.close() to stop
    reg.get_sample_value("hgc_worker_messages_dropped_total", {"reason": "malformed"})

Every role shares ``NodeMetrics`` (bytes in/out, dropped messages by reason, emulation
mechanisms active, peers alive); ``common.runtime.transport`` updates those itself.
"""

from __future__ import annotations

import math
import socket
import threading
import time
from collections.abc import Mapping
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info
from prometheus_client.exposition import ThreadingWSGIServer, make_wsgi_app

ROLES = ("master", "edge", "worker")
DROP_REASONS = (
    "malformed", "oversized", "unknown_op", "version", "late", "unknown_peer", "hwm", "non_finite",
)  # fmt: skip
# Why a parent refused a connection or a message (hgc_<role>_auth_rejected_total{reason}):
# handshake = the CURVE handshake failed (no key, an unknown key, a plain client);
# impersonation = an authenticated node claimed another node's name; no_identity = a message
# without the ZAP User-Id a curve socket must carry.
AUTH_REASONS = ("handshake", "unknown_key", "impersonation", "no_identity")
MECHANISMS = ("compute_delay", "cpu_quota", "inprocess_link", "tbf", "htb", "netem")
OUTCOMES = ("ok", "failed", "retried")
# Seconds: from a loopback millisecond to a minute-long straggler.
LATENCY_BUCKETS = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
)  # fmt: skip


class NodeMetrics:
    """The metrics every role has: ``hgc_<role>_{received,sent}_bytes_total``,
    ``hgc_<role>_messages_dropped_total{reason}``, ``hgc_<role>_emulation_active{mechanism}``,
    ``hgc_<role>_peers_alive``."""

    def __init__(self, role: str, registry: CollectorRegistry) -> None:
        if role not in ROLES:
            raise ValueError(f"role must be one of {ROLES}, got {role!r}")
        if not isinstance(registry, CollectorRegistry):
            raise TypeError("registry must be a prometheus_client.CollectorRegistry")
        self.role = role
        self.registry = registry
        p = f"hgc_{role}"
        self.received_bytes = Counter(f"{p}_received_bytes", "Bytes received", registry=registry)
        self.sent_bytes = Counter(f"{p}_sent_bytes", "Bytes sent", registry=registry)
        self._dropped = Counter(
            f"{p}_messages_dropped",
            "Messages dropped, by reason",
            ["reason"],
            registry=registry,
        )
        self._emulation = Gauge(
            f"{p}_emulation_active",
            "1 if this emulation mechanism is active on this node",
            ["mechanism"],
            registry=registry,
        )
        self.peers_alive = Gauge(f"{p}_peers_alive", "Peers heard from recently", registry=registry)
        self._auth_rejected = Counter(
            f"{p}_auth_rejected",
            "Connections or messages refused by authentication, by reason",
            ["reason"],
            registry=registry,
        )
        self._integrity = Counter(
            f"{p}_integrity_failures",
            "Decodes from two responder sets that disagreed (verify mode)",
            registry=registry,
        )
        self._emulation_sources: dict[str, set[str]] = {}
        # Pre-create every label so dashboards see explicit zeros, not missing series.
        for reason in DROP_REASONS:
            self._dropped.labels(reason=reason)
        for mechanism in MECHANISMS:
            self._emulation.labels(mechanism=mechanism).set(0)
        for reason in AUTH_REASONS:
            self._auth_rejected.labels(reason=reason)

    def dropped(self, reason: str, n: int = 1) -> None:
        """Count ``n`` dropped messages; ``reason`` must be one of ``DROP_REASONS``."""
        if reason not in DROP_REASONS:
            raise ValueError(f"drop reason must be one of {DROP_REASONS}, got {reason!r}")
        self._dropped.labels(reason=reason).inc(n)

    def auth_rejected(self, reason: str, n: int = 1) -> None:
        """Count a refusal; ``reason`` must be one of ``AUTH_REASONS``."""
        if reason not in AUTH_REASONS:
            raise ValueError(f"auth reason must be one of {AUTH_REASONS}, got {reason!r}")
        self._auth_rejected.labels(reason=reason).inc(n)

    def integrity_failure(self, n: int = 1) -> None:
        self._integrity.inc(n)

    def emulation_active(self, mechanism: str, active: bool) -> None:
        if mechanism not in MECHANISMS:
            raise ValueError(f"mechanism must be one of {MECHANISMS}, got {mechanism!r}")
        self._emulation.labels(mechanism=mechanism).set(1 if active else 0)

    def emulation_source(self, mechanism: str, source: str, active: bool) -> None:
        """Report one part of the node (e.g. one of an edge's two endpoints) using a
        mechanism; the gauge is 1 while any part does."""
        sources = self._emulation_sources.setdefault(mechanism, set())
        if active:
            sources.add(source)
        else:
            sources.discard(source)
        self.emulation_active(mechanism, bool(sources))


class MasterMetrics(NodeMetrics):
    def __init__(self, registry: CollectorRegistry) -> None:
        super().__init__("master", registry)
        r = registry
        self.iteration_duration = Histogram(
            "hgc_master_iteration_duration_seconds",
            "Iteration wall time",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self._iterations = Counter(
            "hgc_master_iterations", "Iterations by outcome", ["outcome"], registry=r
        )
        for outcome in OUTCOMES:
            self._iterations.labels(outcome=outcome)
        self.edge_wait = Histogram(
            "hgc_master_edge_wait_seconds",
            "Model sent -> (n - s_e)-th edge answer",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self._edge_arrival = Histogram(
            "hgc_master_edge_arrival_seconds",
            "Model sent -> this edge's answer",
            ["edge"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self._edge_stragglers = Counter(
            "hgc_master_edge_stragglers",
            "Iterations in which this edge was not used",
            ["edge"],
            registry=r,
        )
        self.decode_duration = Histogram(
            "hgc_master_decode_duration_seconds",
            "Master decode time",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.loss = Gauge("hgc_master_loss", "Held-out loss at the last evaluation", registry=r)
        self.accuracy = Gauge(
            "hgc_master_accuracy_ratio", "Held-out accuracy at the last evaluation", registry=r
        )
        self.iteration = Gauge("hgc_master_iteration", "Current iteration", registry=r)
        self._code = Info("hgc_master_code", "The code in use", registry=r)
        self._selected = Gauge(
            "hgc_master_node_selected",
            "1 if the plan uses this scenario node, 0 if it leaves it out",
            ["node"],
            registry=r,
        )

    def node_selected(self, node: str, selected: bool) -> None:
        """``node``: a scenario name (``edge-<i>``, ``worker-<i>-<j>``, ``master``)."""
        self._selected.labels(node=node).set(1 if selected else 0)

    def iteration_done(self, outcome: str) -> None:
        if outcome not in OUTCOMES:
            raise ValueError(f"outcome must be one of {OUTCOMES}, got {outcome!r}")
        self._iterations.labels(outcome=outcome).inc()

    def edge_arrival(self, edge: int | str, seconds: float) -> None:
        """``edge``: the label, the scenario index of the edge (``"2"`` for ``edge-2``)."""
        self._edge_arrival.labels(edge=str(edge)).observe(seconds)

    def edge_straggler(self, edge: int | str) -> None:
        self._edge_stragglers.labels(edge=str(edge)).inc()

    def set_code(self, info: Mapping[str, object]) -> None:
        """``info``: scheme, n_edges, workers_per_edge, s_e, s_w, K, D (values stringified)."""
        self._code.info({str(k): str(v) for k, v in info.items()})


class EdgeMetrics(NodeMetrics):
    def __init__(self, registry: CollectorRegistry, edge: int) -> None:
        super().__init__("edge", registry)
        r, e = registry, str(edge)
        self.edge: int | str = edge
        self._worker_wait = Histogram(
            "hgc_edge_worker_wait_seconds",
            "Model received -> (m_i - s_w)-th worker answer",
            ["edge"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.worker_wait = self._worker_wait.labels(edge=e)
        self._worker_arrival = Histogram(
            "hgc_edge_worker_arrival_seconds",
            "Model received -> this worker's answer",
            ["edge", "worker"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self._worker_stragglers = Counter(
            "hgc_edge_worker_stragglers",
            "Iterations in which this worker was not used",
            ["edge", "worker"],
            registry=r,
        )
        self._decode = Histogram(
            "hgc_edge_decode_duration_seconds",
            "Edge decode time",
            ["edge"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.decode_duration = self._decode.labels(edge=e)

    def rename(self, edge: int | str) -> None:
        """Label this edge's series with ``edge`` (its scenario index, learnt at set-up)
        instead of its position; the position's empty series are removed."""
        if str(edge) == str(self.edge):
            return
        old, new = str(self.edge), str(edge)
        for metric in (self._worker_wait, self._decode):
            metric.remove(old)
        self.worker_wait = self._worker_wait.labels(edge=new)
        self.decode_duration = self._decode.labels(edge=new)
        self.edge = edge

    def worker_arrival(self, worker: int | str, seconds: float) -> None:
        """``worker``: the label, the worker's scenario index within its edge."""
        self._worker_arrival.labels(edge=str(self.edge), worker=str(worker)).observe(seconds)

    def worker_straggler(self, worker: int | str) -> None:
        self._worker_stragglers.labels(edge=str(self.edge), worker=str(worker)).inc()


class WorkerMetrics(NodeMetrics):
    def __init__(self, registry: CollectorRegistry, edge: int, worker: int) -> None:
        super().__init__("worker", registry)
        labels = {"edge": str(edge), "worker": str(worker)}
        self._labels = labels
        self._compute = Histogram(
            "hgc_worker_compute_duration_seconds",
            "Compute time per iteration, emulated delay included",
            ["edge", "worker"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self._delay = Histogram(
            "hgc_worker_emulated_delay_seconds",
            "Delay added to follow the straggler model",
            ["edge", "worker"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.compute_duration = self._compute.labels(**labels)
        self.emulated_delay = self._delay.labels(**labels)

    def rename(self, edge: int | str, worker: int | str) -> None:
        """Label this worker's series with its scenario indices (learnt at set-up) instead
        of its position; the position's empty series are removed."""
        labels = {"edge": str(edge), "worker": str(worker)}
        if labels == self._labels:
            return
        for metric in (self._compute, self._delay):
            metric.remove(self._labels["edge"], self._labels["worker"])
        self._labels = labels
        self.compute_duration = self._compute.labels(**labels)
        self.emulated_delay = self._delay.labels(**labels)


# The image's health check identifies itself so it never counts as a scrape (``linger``).
HEALTH_USER_AGENT = "hgc-health"


class _ScrapeHandler(WSGIRequestHandler):
    """Serves one request quietly, then tells the server when it began (the response has
    been written and flushed by then)."""

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (stdlib name)
        pass

    def handle(self) -> None:
        began = time.monotonic()
        super().handle()
        agent = self.headers.get("User-Agent", "") if getattr(self, "headers", None) else ""
        if self.command == "GET" and not agent.startswith(HEALTH_USER_AGENT):
            self.server.scraped(began)  # type: ignore[attr-defined]


class _ScrapeServer(ThreadingWSGIServer):
    """``ThreadingWSGIServer`` that remembers when the latest completed scrape began."""

    def __init__(self, *args: Any, **kw: Any) -> None:
        self.last_scrape_began = -math.inf
        self.scrape_count = 0
        self.changed = threading.Condition()
        super().__init__(*args, **kw)

    def scraped(self, began: float) -> None:
        with self.changed:
            self.scrape_count += 1
            self.last_scrape_began = max(self.last_scrape_began, began)
            self.changed.notify_all()


class MetricsServer:
    """A running ``/metrics`` HTTP endpoint; ``close()`` stops it and frees the port.

    ``linger(timeout_s)`` keeps it up until one more scrape has read the final values, so a
    node that ends before the scraper's next tick still reports its last state."""

    def __init__(self, server: _ScrapeServer, thread: threading.Thread, port: int) -> None:
        self._server = server
        self._thread = thread
        self.port = port

    @property
    def scrapes(self) -> int:
        """Completed scrapes so far (the health check's requests are not counted)."""
        return self._server.scrape_count

    def linger(self, timeout_s: float) -> bool:
        """Wait until a scrape that *began* after this call has been answered in full, at most
        ``timeout_s`` seconds (0: return at once). True if such a scrape was served."""
        if timeout_s <= 0:
            return False
        mark = time.monotonic()
        deadline = mark + timeout_s
        server = self._server
        with server.changed:
            while server.last_scrape_began < mark:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                server.changed.wait(left)
        return True

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> MetricsServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def serve_metrics(
    registry: CollectorRegistry, host: str = "127.0.0.1", port: int = 0
) -> tuple[MetricsServer, int]:
    """Serve ``registry`` at ``http://host:port/metrics``; ``port=0`` picks a free port.

    Returns the server (``close()`` it) and the port actually bound. (prometheus_client's
    ``start_http_server`` with a handler that counts scrapes, for ``MetricsServer.linger``.)
    """
    if not 0 <= port <= 65535:
        raise ValueError(f"metrics port must be in 0..65535, got {port}")
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    family, _, _, _, sockaddr = infos[0]

    class Server(_ScrapeServer):
        address_family = family

    httpd = make_server(
        str(sockaddr[0]), port, make_wsgi_app(registry), Server, handler_class=_ScrapeHandler
    )
    assert isinstance(httpd, _ScrapeServer)
    thread = threading.Thread(target=httpd.serve_forever, name="metrics", daemon=True)
    thread.start()
    bound = int(httpd.server_port)
    return MetricsServer(httpd, thread, bound), bound
