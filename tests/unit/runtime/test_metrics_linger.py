"""``MetricsServer.linger``: a node that has finished keeps ``/metrics`` up until a scrape
that began after the end has been answered in full, at most a bound; the image's health
check never counts as that scrape. Real HTTP on loopback."""

from __future__ import annotations

import threading
import urllib.request

from prometheus_client import CollectorRegistry, Counter

from common.runtime.metrics import HEALTH_USER_AGENT, serve_metrics
from tests.conftest import poll_for


def get(port: int, agent: str = "Prometheus/2.42.0") -> str:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/metrics", headers={"User-Agent": agent}
    )
    with urllib.request.urlopen(request, timeout=10) as resp:
        return resp.read().decode()


def test_linger_ends_at_the_first_scrape_after_it_began() -> None:
    reg = CollectorRegistry()
    done = Counter("hgc_test_done", "done", registry=reg)
    server, port = serve_metrics(reg)
    try:
        get(port)  # a scrape before the end does not count
        # counted once the handler returns, which may be just after the client has its answer
        poll_for(lambda: server.scrapes == 1, timeout=10, what="the first scrape counted")
        done.inc(5)  # the final value
        result: list[bool] = []
        thread = threading.Thread(target=lambda: result.append(server.linger(60)))
        thread.start()
        poll_for(lambda: thread.is_alive(), timeout=5, what="linger to start")
        get(port, HEALTH_USER_AGENT)  # the health check: not a scrape
        thread.join(timeout=0.3)
        assert thread.is_alive() and server.scrapes == 1
        # Scrape until linger ends (one scrape does it, unless it began before linger took its
        # start mark on a loaded machine): every answer already has the final value.
        bodies: list[str] = []
        poll_for(
            lambda: bodies.append(get(port)) or not thread.is_alive(),
            timeout=30,
            interval=0.2,
            what="linger to end at a scrape",
        )
        assert result == [True]
        assert all("hgc_test_done_total 5.0" in b for b in bodies)
    finally:
        server.close()


def test_linger_is_bounded_and_zero_returns_at_once() -> None:
    server, _ = serve_metrics(CollectorRegistry())
    try:
        assert server.linger(0) is False
        assert server.linger(0.2) is False  # nobody scrapes: gives up after the bound
    finally:
        server.close()


def test_the_health_check_identifies_itself_as_the_server_expects() -> None:
    from services.common import health

    assert health.HEALTH_USER_AGENT == HEALTH_USER_AGENT
