"""Liveness against a real child process: paused (SIGSTOP), resumed, killed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from common.runtime.metrics import EdgeMetrics
from common.runtime.transport import (
    Event,
    Loop,
    ParentEndpoint,
    PeerDown,
    PeerUp,
    Received,
    TransportConfig,
)

pytestmark = pytest.mark.timeout(90)

ROOT = Path(__file__).resolve().parents[2]
CONFIG = TransportConfig(heartbeat_interval_s=0.1, liveness=5, linger_ms=0)

CHILD = textwrap.dedent(
    """
    import sys
    from prometheus_client import CollectorRegistry
    from common.runtime.messages import Register
    from common.runtime.metrics import WorkerMetrics
    from common.runtime.transport import ChildEndpoint, TransportConfig
    config = TransportConfig(heartbeat_interval_s=0.1, liveness=5, linger_ms=0)
    child = ChildEndpoint("worker-0-0", WorkerMetrics(CollectorRegistry(), 0, 0), sys.argv[1],
                          parent="edge-0", config=config)
    child.send(Register(-1, "worker", "worker-0-0", 0, 0))
    while True:
        child.poll(1.0)
    """
)


def wait_count(
    loop: Loop, events: list[Event], wanted: Event, n: int, timeout: float = 20.0
) -> None:
    """Poll until ``wanted`` has been seen ``n`` times in all."""
    deadline = time.monotonic() + timeout
    while events.count(wanted) < n:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{wanted} not seen {n} times within {timeout} s: {events[-5:]}")
        events.extend(loop.poll(0.05))


@pytest.fixture
def parent() -> Iterator[ParentEndpoint]:
    endpoint = ParentEndpoint("edge-0", EdgeMetrics(CollectorRegistry(), 0), config=CONFIG)
    yield endpoint
    endpoint.close()


def test_paused_child_is_declared_dead_then_alive_again(parent: ParentEndpoint) -> None:
    proc = subprocess.Popen([sys.executable, "-c", CHILD, parent.address], cwd=ROOT)
    up, down = PeerUp("worker-0-0"), PeerDown("worker-0-0")
    try:
        loop = Loop(parent)
        events: list[Event] = []
        wait_count(loop, events, up, 1)
        os.kill(proc.pid, signal.SIGSTOP)  # a paused process: socket open, no heartbeats
        wait_count(loop, events, down, 1)
        os.kill(proc.pid, signal.SIGCONT)
        wait_count(loop, events, up, 2)
        assert any(isinstance(e, Received) and e.peer == "worker-0-0" for e in events)
        proc.kill()
        wait_count(loop, events, down, 2)
    finally:
        proc.kill()
        proc.wait(10)
