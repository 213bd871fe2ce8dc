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
        assert server.scrapes == 1
        done.inc(5)  # the final value
        result: list[bool] = []
        thread = threading.Thread(target=lambda: result.append(server.linger(60)))
        thread.start()
        poll_for(lambda: thread.is_alive(), timeout=5, what="linger to start")
        get(port, HEALTH_USER_AGENT)  # the health check: not a scrape
        thread.join(timeout=0.3)
        assert thread.is_alive() and server.scrapes == 1
        body = get(port)
        thread.join(timeout=30)
        assert not thread.is_alive() and result == [True]
        assert "hgc_test_done_total 5.0" in body  # the scrape that ended it saw the end
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
