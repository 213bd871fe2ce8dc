"""A bad ``link`` in the emulation spec the master sends cannot take an edge down, and
fails a worker whose own entry it is with a message naming the field.

Real edge (``start_edge``, real zmq sockets, its own thread); a raw ROUTER plays the master
and a raw DEALER one worker. The set-up carries a bad uplink (``latency_s: -1``), a bad
worker link (``loss: true``), an entry that is not a map, and one good worker link: the bad
entries are dropped and counted as ``malformed``, the good link is applied, and the edge
goes on to set up its worker and to shut down cleanly. Regression: ``loss: true`` used to
pass the parser as 1.0, and the later error from the link emulator escaped the edge's
``try`` and crashed it.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import pytest
import zmq
from prometheus_client import CollectorRegistry

from common.perf.system import Link
from common.runtime.codec import decode, encode
from common.runtime.messages import NO_ITERATION, EdgeSetup, Register, Shutdown, WorkerSetup
from common.runtime.transport import TransportConfig
from services.edge.service import start_edge
from services.worker.service import start_worker
from tests.conftest import poll_for

pytestmark = pytest.mark.timeout(120)

CODE = {"scheme": "uncoded", "workers_per_edge": [2], "s_e": 0, "s_w": 0}
EMULATION = {
    "edge-0": {"link": {"latency_s": -1}},  # the edge's own uplink
    "worker-0-0": {"link": {"loss": True}},
    "worker-0-2": "slow",  # not a map at all
    "worker-0-1": {"link": {"latency_s": 0.001}},  # good: must still be applied
}


def _recv(sock: zmq.Socket, op: str) -> tuple[bytes, Any]:
    """The next message of kind ``op`` (heartbeats and others skipped); ROUTER frames
    start with the sender's identity, DEALER frames do not."""

    def next_message() -> tuple[bytes, Any] | None:
        if not sock.poll(100):
            return None
        frames = sock.recv_multipart()
        ident, body = (frames[0], frames[1:]) if sock.type == zmq.ROUTER else (b"", frames)
        msg = decode(body)
        return (ident, msg) if msg.op == op else None

    found = poll_for(next_message, 30, interval=0, what=f"{op} from the edge")
    assert found is not None
    return found


def test_edge_drops_and_counts_bad_link_entries_and_keeps_running(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HGC_INPROCESS_LINK", "1")
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context.instance()
    master = ctx.socket(zmq.ROUTER)
    master.setsockopt(zmq.LINGER, 0)
    port = master.bind_to_random_port("tcp://127.0.0.1")
    registry = CollectorRegistry()
    config = TransportConfig(heartbeat_interval_s=0.1, liveness=50)
    runner, edge_port = start_edge(0, f"tcp://127.0.0.1:{port}", config=config, registry=registry)
    status: list[int] = []
    thread = threading.Thread(target=lambda: status.append(runner.run()), daemon=True)
    thread.start()
    workers = [ctx.socket(zmq.DEALER) for _ in range(2)]
    for j, worker in enumerate(workers):
        worker.setsockopt(zmq.LINGER, 0)
        worker.setsockopt(zmq.ROUTING_ID, f"worker-0-{j}".encode())
    try:
        ident, _ = _recv(master, "register")
        assert ident == b"edge-0"
        setup = EdgeSetup(NO_ITERATION, 0, CODE, {"kind": "digits"}, {"kind": "logreg"}, EMULATION)
        master.send_multipart([ident, *encode(setup)])

        def malformed() -> float:
            value = registry.get_sample_value(
                "hgc_edge_messages_dropped_total", {"reason": "malformed"}
            )
            return value or 0.0

        poll_for(lambda: malformed() >= 3, 30, what="three bad entries counted")
        # the edge is still serving: its workers register and get their set-ups (sent
        # once all m_i = 2 have registered)
        for j, worker in enumerate(workers):
            worker.connect(f"tcp://127.0.0.1:{edge_port}")
            node = f"worker-0-{j}"
            worker.send_multipart(encode(Register(NO_ITERATION, "worker", node, 0, j)))
        for j, worker in enumerate(workers):
            _, worker_setup = _recv(worker, "worker_setup")
            assert (worker_setup.edge, worker_setup.worker) == (0, j)
        assert thread.is_alive()
        master.send_multipart([ident, *encode(Shutdown(NO_ITERATION, "test over"))])
        thread.join(30)
        assert status == [0], "the edge must exit cleanly, not crash"
        assert malformed() == 3  # one per bad entry, nothing else
        assert runner.up is not None and runner.down is not None
        assert "master" not in runner.up._links  # the bad uplink was not applied
        assert set(runner.down._links) == {"worker-0-1"}  # the good link was
        assert runner.down._links["worker-0-1"].link == Link(latency_s=0.001)
    finally:
        runner.stop.set()
        thread.join(30)
        for worker in workers:
            worker.close()
        master.close()


@pytest.mark.parametrize(
    ("link", "why"),
    [
        ({"latency_s": -1}, "link.latency_s: must be >= 0, got -1"),
        ({"loss": True}, "link.loss: must be a number, got True"),
    ],
)
def test_worker_with_a_bad_link_in_its_own_entry_fails_naming_the_field(
    link: dict[str, Any], why: str, capfd: pytest.CaptureFixture[str]
) -> None:
    """The worker cannot run without its own emulation: it fails (status 1) with a message
    naming its entry and the field, rather than running unemulated or crashing."""
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context.instance()
    edge = ctx.socket(zmq.ROUTER)
    edge.setsockopt(zmq.LINGER, 0)
    port = edge.bind_to_random_port("tcp://127.0.0.1")
    config = TransportConfig(heartbeat_interval_s=0.1, liveness=50)
    runner = start_worker(0, 1, f"tcp://127.0.0.1:{port}", config=config)
    status: list[int] = []
    thread = threading.Thread(target=lambda: status.append(runner.run()), daemon=True)
    thread.start()
    try:
        ident, _ = _recv(edge, "register")
        emulation = {"worker-0-1": {"link": link}}
        setup = WorkerSetup(
            NO_ITERATION, 0, 1, (0,), np.ones(1), 2, {"kind": "digits"}, {"kind": "logreg"},
            emulation,
        )  # fmt: skip
        edge.send_multipart([ident, *encode(setup)])
        thread.join(30)
        assert status == [1]
        err = capfd.readouterr().err
        assert f"bad emulation entry: emulation_spec['worker-0-1'].{why}" in err, err
    finally:
        runner.stop.set()
        thread.join(30)
        edge.close()
