"""A received gradient is a view on ZeroMQ's received message: no copy between the socket
and the array the service combines (real sockets on loopback)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import numpy as np
import pytest
import zmq
from prometheus_client import CollectorRegistry

from common.runtime.messages import WorkerGradient
from common.runtime.metrics import EdgeMetrics, WorkerMetrics
from common.runtime.transport import (
    ChildEndpoint,
    Loop,
    ParentEndpoint,
    Received,
    TransportConfig,
)

pytestmark = pytest.mark.timeout(60)
CONFIG = TransportConfig(heartbeat_interval_s=5.0, linger_ms=0)


@pytest.fixture
def pair() -> Iterator[tuple[ParentEndpoint, ChildEndpoint]]:
    ctx = zmq.Context()
    edge = ParentEndpoint("edge-0", EdgeMetrics(CollectorRegistry(), 0), config=CONFIG, context=ctx)
    worker = ChildEndpoint(
        "worker-0-0",
        WorkerMetrics(CollectorRegistry(), 0, 0),
        edge.address,
        parent="edge-0",
        config=CONFIG,
        context=ctx,
    )
    yield edge, worker
    worker.close()
    edge.close()
    ctx.term()


def received_gradient(edge: ParentEndpoint, worker: ChildEndpoint) -> WorkerGradient:
    loop = Loop(edge)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        for event in loop.poll(0.2):
            if isinstance(event, Received) and isinstance(event.message, WorkerGradient):
                return event.message
    raise TimeoutError("no WorkerGradient within 20 s")


def buffer_owner(arr: np.ndarray) -> object:
    """The object at the end of ``arr``'s base chain (what really holds the bytes)."""
    base: object = arr
    while isinstance(base, np.ndarray):
        base = base.base
    return base.obj if isinstance(base, memoryview) else base


def test_received_vector_is_a_read_only_view_on_the_zmq_frame(
    pair: tuple[ParentEndpoint, ChildEndpoint],
) -> None:
    edge, worker = pair
    vector = np.arange(500_000, dtype=np.float64)  # 4 MB, above pyzmq's copy threshold
    assert worker.send(WorkerGradient(0, 0, 0, vector, 0.0))
    got = received_gradient(edge, worker).vector
    np.testing.assert_array_equal(got, vector)
    assert not got.flags.writeable and not got.flags.owndata
    # a copy anywhere (copy=True receive, bytes() in decode) would end the chain at bytes
    assert isinstance(buffer_owner(got), zmq.Frame), type(buffer_owner(got))


def test_buffer_owner_sees_a_copy() -> None:
    # negative control of the helper: an array over copied bytes does not end at a Frame
    copied = np.frombuffer(bytes(np.ones(4).data), dtype=np.float64)
    assert isinstance(buffer_owner(copied), bytes)
