"""Hostile input to the services over real sockets: every bad frame is dropped and counted,
and the node keeps working.

The worker is driven by a raw ROUTER that plays its edge (a worker binds nothing, so its
edge is the only party that can reach it); the master and an edge of a running in-process
cluster get frames from raw DEALERs. The subprocess version is tests/system/test_processes.py.
"""

from __future__ import annotations

import threading
from typing import Any

import msgpack
import numpy as np
import pytest
import zmq
from prometheus_client import CollectorRegistry

from common.coding import code_from_spec
from common.learning import build_model, load_dataset, partition_rows
from common.runtime.codec import DEFAULT_LIMITS, PROTOCOL_VERSION, decode, encode
from common.runtime.messages import (
    EdgeSetup,
    Heartbeat,
    ModelUpdate,
    Shutdown,
    WorkerGradient,
    WorkerSetup,
)
from common.runtime.transport import TransportConfig
from hgc.cluster import InProcessCluster
from services.common.actions import Drop, PeerChanged, Received
from services.edge.state import EdgeState
from services.worker.service import start_worker
from tests.conftest import poll_for

pytestmark = pytest.mark.timeout(120)


def hostile_frames() -> dict[str, list[bytes]]:
    """One multipart message per kind of bad input; ``HOSTILE_REASONS`` says how each must
    be counted (the ``reason`` label) once it comes from an identity the node accepts."""
    good = [bytes(f) for f in encode(ModelUpdate(0, np.arange(16, dtype=np.float64)))]
    rng = np.random.default_rng(7)
    header = {"v": PROTOCOL_VERSION, "op": "model_update", "iteration": 0}

    def shaped(shape: object) -> list[bytes]:
        spec = {"field": "params", "dtype": "float64", "shape": shape}
        return [msgpack.packb({**header, "arrays": [spec]}), b""]

    return {
        "truncated": [good[0], good[1][:-8]],
        # over the default limits, under zmq's MAXMSGSIZE, so the codec does see them
        "oversized_header": [b"\x81" + b"\x00" * DEFAULT_LIMITS.max_header_bytes],
        "too_many_frames": [b"\x80"] * (DEFAULT_LIMITS.max_frames + 1),
        "version": [msgpack.packb({**header, "v": 99, "arrays": []})],
        "dtype": [
            msgpack.packb(
                {**header, "arrays": [{"field": "params", "dtype": "complex128", "shape": [2]}]}
            ),
            b"\x00" * 32,
        ],
        "random": [rng.bytes(64), rng.bytes(200)],
        "unknown_op": [msgpack.packb({"v": PROTOCOL_VERSION, "op": "rm -rf", "arrays": []})],
        "empty": [b""],
        "huge_zero_size_shape": shaped([2**63 - 1, 0]),  # audit #1: this killed an edge
        "negative_shape": shaped([-1, 0]),
        "float_shape": shaped([1.5]),
        "bool_shape": shaped([True]),
    }


HOSTILE_REASONS = {
    "truncated": "malformed",
    "oversized_header": "oversized",
    "too_many_frames": "oversized",
    "version": "version",
    "dtype": "malformed",
    "random": "malformed",
    "unknown_op": "unknown_op",
    "empty": "malformed",
    "huge_zero_size_shape": "malformed",
    "negative_shape": "malformed",
    "float_shape": "malformed",
    "bool_shape": "malformed",
}
CODEC_REASONS = ("malformed", "oversized", "unknown_op", "version")


def expected_drops(times: int = 1) -> dict[str, int]:
    """Per-reason drop counts for sending every hostile frame ``times`` times."""
    counts = dict.fromkeys(CODEC_REASONS, 0)
    for name in hostile_frames():
        counts[HOSTILE_REASONS[name]] += times
    return counts


def by_reason(registry: CollectorRegistry, role: str) -> dict[str, float]:
    """``hgc_<role>_messages_dropped_total`` per reason label."""
    out: dict[str, float] = {}
    for metric in registry.collect():
        if metric.name == f"hgc_{role}_messages_dropped":
            for s in metric.samples:
                if s.name.endswith("_total"):
                    out[s.labels["reason"]] = out.get(s.labels["reason"], 0.0) + s.value
    return out


def codec_drops(registry: CollectorRegistry, role: str) -> dict[str, float]:
    counts = by_reason(registry, role)
    return {r: counts.get(r, 0.0) for r in CODEC_REASONS}


def dropped(registry: CollectorRegistry, role: str) -> float:
    return sum(by_reason(registry, role).values())


def _recv(sock: zmq.Socket, timeout_s: float = 20.0) -> tuple[str, Any]:
    if not sock.poll(int(timeout_s * 1000)):
        raise TimeoutError("no message from the worker")
    ident, *frames = sock.recv_multipart()
    return ident.decode(), decode(frames)


def _recv_op(sock: zmq.Socket, op: str) -> Any:
    return poll_for(
        lambda: (m := _recv(sock)[1]) and m.op == op and m, 20, what=f"{op} from worker"
    )


def test_worker_survives_hostile_frames_and_still_computes_exactly() -> None:
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context.instance()
    edge = ctx.socket(zmq.ROUTER)
    edge.setsockopt(zmq.LINGER, 0)
    port = edge.bind_to_random_port("tcp://127.0.0.1")
    registry = CollectorRegistry()
    status: list[int] = []
    config = TransportConfig(heartbeat_interval_s=0.1, liveness=50)
    t = threading.Thread(
        target=lambda: status.append(
            start_worker(0, 1, f"tcp://127.0.0.1:{port}", config=config, registry=registry).run()
        ),
        daemon=True,
    )
    t.start()
    try:
        reg = _recv_op(edge, "register")
        assert reg.node == "worker-0-1"
        ident = b"worker-0-1"
        data_spec, model_spec = {"kind": "digits"}, {"kind": "logreg"}
        setup = WorkerSetup(-1, 0, 1, (1, 3), np.array([0.5, -2.0]), 4, data_spec, model_spec)
        for frames in hostile_frames().values():
            edge.send_multipart([ident, *frames])
        edge.send_multipart([ident, *encode(setup)])
        _recv_op(edge, "ready")
        poll_for(
            lambda: codec_drops(registry, "worker") == expected_drops(1),
            10,
            what="hostile frames counted by reason",
        )
        params = np.linspace(-0.1, 0.1, 650)
        edge.send_multipart([ident, *encode(ModelUpdate(5, params))])
        for frames in hostile_frames().values():
            edge.send_multipart([ident, *frames])
        grad = _recv_op(edge, "worker_gradient")
        assert isinstance(grad, WorkerGradient) and grad.iteration == 5
        # the vector is exactly 0.5 g_1 - 2 g_3 computed here from the same data
        data = load_dataset(data_spec)
        model = build_model(model_spec, data.n_features, data.n_classes)
        rows = partition_rows(data.n_train, 4)
        g = [model.gradient_sum(params, data.X_train[r], data.y_train[r]) for r in rows]
        np.testing.assert_allclose(grad.vector, 0.5 * g[1] - 2.0 * g[3], rtol=1e-12)
        poll_for(
            lambda: codec_drops(registry, "worker") == expected_drops(2),
            10,
            what="second round counted by reason",
        )
        edge.send_multipart([ident, *encode(Shutdown(-1, "test over"))])
        t.join(20)
        assert status == [0]
    finally:
        edge.close()


def _dealer(ctx: zmq.Context, port: int, identity: bytes) -> zmq.Socket:
    s = ctx.socket(zmq.DEALER)
    s.setsockopt(zmq.LINGER, 0)
    s.setsockopt(zmq.ROUTING_ID, identity)
    s.connect(f"tcp://127.0.0.1:{port}")
    return s


def test_master_and_edge_survive_hostile_frames_and_training_completes() -> None:
    """Each node's codec checks are exercised from an identity it accepts: edge-0 and
    worker-1-1 are killed and raw DEALERs take their names (within s_e = s_w = 1), so the
    frames are decoded and counted by reason, not all rejected as unknown_peer."""
    config = {
        "code": {"scheme": "hgc", "workers_per_edge": [2, 2, 2], "s_e": 1, "s_w": 1},
        "data_spec": {"kind": "digits"},
        "model_spec": {"kind": "logreg"},
        "emulation_spec": {
            f"worker-{i}-{j}": {"fixed_delay_s": 0.02} for i in range(3) for j in range(2)
        },
        "training": {"iterations": 15, "learning_rate": 0.5, "deadline_s": 10.0},
    }
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context.instance()
    # curve off: this test is about the codec and the plain-mode identity checks; the
    # authenticated mode's refusals are tests/integration/test_auth.py
    with InProcessCluster(config, curve=False) as cluster:
        cluster.kill("edge-0")
        cluster.kill("worker-1-1")
        impostors = {
            "master": _dealer(ctx, cluster.ports["master"], b"edge-0"),
            "edge-1": _dealer(ctx, cluster.ports["edge-1"], b"worker-1-1"),
        }
        # identities the node must refuse before decoding (worker-1-2: j >= m_1 = 2)
        intruders = [
            _dealer(ctx, cluster.ports[node], ident)
            for node, ident in [
                ("master", b"intruder"),
                ("master", b"edge-9"),
                ("edge-1", b"intruder"),
                ("edge-1", b"worker-1-2"),
                ("edge-1", b"worker-0-0"),
            ]
        ]
        for s in [*impostors.values(), *intruders]:
            for frames in hostile_frames().values():
                s.send_multipart(frames)
        for s in intruders:  # valid: only the identity check can keep it from being alive
            s.send_multipart(encode(Heartbeat(-1, "intruder")))
        refused = {
            "master": 2 * (len(hostile_frames()) + 1),
            "edge-1": 3 * (len(hostile_frames()) + 1),
        }
        for node in impostors:
            role = node.split("-")[0]
            reg = cluster.registries[node]
            poll_for(
                lambda: codec_drops(reg, role) == expected_drops(1),  # noqa: B023
                30,
                what=f"{node} to count hostile frames by reason",
            )
            poll_for(
                lambda: by_reason(reg, role).get("unknown_peer", 0) >= refused[node],  # noqa: B023
                30,
                what=f"{node} to refuse the intruders",
            )
        edge = cluster.runners["edge-1"]
        alive_at_edge = set(edge.down.alive)
        peers_alive = cluster.registries["edge-1"].get_sample_value("hgc_edge_peers_alive")
        status = cluster.wait()
        records = cluster.records()
        final = {
            node: codec_drops(cluster.registries[node], node.split("-")[0]) for node in impostors
        }
        for s in [*impostors.values(), *intruders]:
            s.close()
    assert status == 0
    assert [r["iteration"] for r in records] == list(range(15))
    assert all(r["ok"] for r in records)
    for node, counts in final.items():  # nothing else the run did looks like hostile input
        assert counts == expected_drops(1), node
    # the intruders never count as live workers (audit #13), though they sent a valid
    # heartbeat; the killed worker-1-1 may not have timed out yet
    assert "worker-1-0" in alive_at_edge and alive_at_edge <= {"worker-1-0", "worker-1-1"}
    assert peers_alive is not None and peers_alive <= 2


def test_edge_state_accepts_only_its_own_workers_and_ignores_intruders_for_liveness() -> None:
    """Audit #13 at the state machine (the transport's allow-list is this predicate)."""
    state = EdgeState(1, code_from_spec)
    before = ["worker-1-0", "worker-1-2", "worker-1-17"]
    refused = ["worker-0-0", "worker-1-", "worker-1-01", "worker-1--1", "worker-1-x", "edge-1"]
    refused += ["mallory", "worker-1-٣", "worker-10-0", ""]
    assert all(state.accepts_peer(p) for p in before)
    assert not any(state.accepts_peer(p) for p in refused)
    spec = {"scheme": "hgc", "workers_per_edge": [3, 3, 3], "s_e": 1, "s_w": 1}
    state.handle(Received("master", EdgeSetup(-1, 1, spec, {}, {}, {})), 0.0)
    assert state.m == 3
    assert [state.accepts_peer(f"worker-1-{j}") for j in range(5)] == [True] * 3 + [False] * 2
    # an intruder's sign of life changes nothing; a message from it is dropped as unknown_peer
    assert state.handle(PeerChanged("mallory", True), 0.0) == []
    acts = state.handle(Received("worker-1-3", Heartbeat(-1, "worker-1-3")), 0.0)
    assert [a.reason for a in acts if isinstance(a, Drop)] == ["unknown_peer"]
    assert state.alive == set()
    state.handle(PeerChanged("worker-1-0", True), 0.0)
    assert state.alive == {"worker-1-0"}  # positive control
