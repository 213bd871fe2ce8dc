"""Audit findings #1 and #13 at the transport: the ~90-byte frame that crashed an edge, a
decode bug that must cost one message (not the node), and a predicate allow-list."""

from __future__ import annotations

from collections.abc import Iterator

import msgpack
import numpy as np
import pytest
import zmq
from prometheus_client import CollectorRegistry

from common.runtime import transport
from common.runtime.codec import PROTOCOL_VERSION, encode
from common.runtime.messages import WorkerGradient
from common.runtime.metrics import EdgeMetrics
from common.runtime.transport import Loop, ParentEndpoint, Received, TransportConfig
from tests.conftest import poll_for

pytestmark = pytest.mark.timeout(60)

# a 1 s liveness window: a loaded CI machine must not fake a dead peer
FAST = TransportConfig(heartbeat_interval_s=0.05, liveness=20, linger_ms=0)
# the audit's reproducer: zero elements, so it passed the frame-length check
CRASH = [
    msgpack.packb(
        {
            "v": PROTOCOL_VERSION,
            "op": "model_update",
            "iteration": 0,
            "arrays": [{"field": "params", "dtype": "float64", "shape": [2**63 - 1, 0]}],
        }
    ),
    b"",
]


@pytest.fixture
def ctx() -> Iterator[zmq.Context]:
    context = zmq.Context()
    yield context
    context.destroy(linger=0)


def dealer(ctx: zmq.Context, address: str, identity: bytes) -> zmq.Socket:
    s = ctx.socket(zmq.DEALER)
    s.setsockopt(zmq.LINGER, 0)
    s.setsockopt(zmq.ROUTING_ID, identity)
    s.connect(address)
    return s


def dropped(reg: CollectorRegistry, reason: str) -> float:
    return reg.get_sample_value("hgc_edge_messages_dropped_total", {"reason": reason}) or 0.0


def received_from(loop: Loop, peer: str, n: int) -> list[Received]:
    got: list[Received] = []

    def enough() -> bool:
        got.extend(e for e in loop.poll(0.05) if isinstance(e, Received) and e.peer == peer)
        return len(got) >= n

    poll_for(enough, 20, what=f"{n} messages from {peer}")
    return got


def gradient(k: int) -> list[bytes]:
    return [bytes(f) for f in encode(WorkerGradient(k, 0, 0, np.full(4, float(k)), 0.1))]


def test_audit_crash_frame_is_counted_malformed_and_the_loop_goes_on(ctx: zmq.Context) -> None:
    reg = CollectorRegistry()
    parent = ParentEndpoint("edge-0", EdgeMetrics(reg, 0), config=FAST, context=ctx)
    mallory = dealer(ctx, parent.address, b"mallory")
    for k in range(3):
        mallory.send_multipart(CRASH)
        mallory.send_multipart(gradient(k))  # a valid message after each: still served
    got = received_from(Loop(parent), "mallory", 3)
    assert [e.message.iteration for e in got] == [0, 1, 2]
    assert dropped(reg, "malformed") == 3
    mallory.close()
    parent.close()


def test_an_unexpected_decode_error_is_dropped_counted_and_logged_once(
    ctx: zmq.Context, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Fault injection: a codec bug (any exception) must not escape the receive loop."""
    real = transport.decode

    def buggy(frames: list, limits: object) -> object:
        if bytes(frames[0]) == b"bug":
            raise RuntimeError("codec bug")
        return real(frames, limits)  # type: ignore[arg-type]

    monkeypatch.setattr(transport, "decode", buggy)
    reg = CollectorRegistry()
    parent = ParentEndpoint("edge-0", EdgeMetrics(reg, 0), config=FAST, context=ctx)
    peer = dealer(ctx, parent.address, b"worker-0-0")
    for k in range(4):
        peer.send_multipart([b"bug"])
        peer.send_multipart(gradient(k))
    with caplog.at_level("ERROR", logger="common.runtime.transport"):
        got = received_from(Loop(parent), "worker-0-0", 4)
    assert [e.message.iteration for e in got] == [0, 1, 2, 3]
    assert dropped(reg, "malformed") == 4
    assert len([r for r in caplog.records if "codec bug" in r.getMessage()]) == 1
    peer.close()
    parent.close()


def test_predicate_allow_list_drops_intruders_before_they_count_as_alive(
    ctx: zmq.Context,
) -> None:
    reg = CollectorRegistry()
    allowed = {"worker-0-0"}
    parent = ParentEndpoint(
        "edge-0", EdgeMetrics(reg, 0), config=FAST, context=ctx, allowed_peers=allowed.__contains__
    )
    good = dealer(ctx, parent.address, b"worker-0-0")
    intruder = dealer(ctx, parent.address, b"worker-0-7")
    loop = Loop(parent)
    for k in range(3):
        intruder.send_multipart(gradient(k))
        good.send_multipart(gradient(k))
    assert [e.message.iteration for e in received_from(loop, "worker-0-0", 3)] == [0, 1, 2]
    poll_for(lambda: dropped(reg, "unknown_peer") == 3, 10, what="intruder frames counted")
    assert parent.alive == {"worker-0-0"}
    assert reg.get_sample_value("hgc_edge_peers_alive") == 1
    allowed.add("worker-0-7")  # the predicate is consulted per message: membership can grow
    intruder.send_multipart(gradient(9))
    assert received_from(loop, "worker-0-7", 1)[0].message.iteration == 9
    for s in (good, intruder, parent):
        s.close()
