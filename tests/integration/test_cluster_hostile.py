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

from common.learning import build_model, load_dataset, partition_rows
from common.runtime.codec import PROTOCOL_VERSION, decode, encode
from common.runtime.messages import (
    ModelUpdate,
    Shutdown,
    WorkerGradient,
    WorkerSetup,
)
from common.runtime.transport import TransportConfig
from services.cluster import InProcessCluster
from services.worker.service import run_worker
from tests.conftest import poll_for

pytestmark = pytest.mark.timeout(120)


def hostile_frames() -> dict[str, list[bytes]]:
    """One multipart message per kind of bad input (what each should be counted as)."""
    good = [bytes(f) for f in encode(ModelUpdate(0, np.arange(16, dtype=np.float64)))]
    rng = np.random.default_rng(7)
    header = {"v": PROTOCOL_VERSION, "op": "model_update", "iteration": 0}
    return {
        "truncated": [good[0], good[1][:-8]],
        "oversized": [b"\x81" + b"\x00" * (2 << 20)],
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
    }


def dropped(registry: CollectorRegistry, role: str) -> float:
    total = 0.0
    for metric in registry.collect():
        if metric.name == f"hgc_{role}_messages_dropped":
            total += sum(s.value for s in metric.samples if s.name.endswith("_total"))
    return total


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
            run_worker(0, 1, f"tcp://127.0.0.1:{port}", config=config, registry=registry)
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
        poll_for(lambda: dropped(registry, "worker") >= 7, 10, what="hostile frames counted")
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
        assert dropped(registry, "worker") >= 14
        edge.send_multipart([ident, *encode(Shutdown(-1, "test over"))])
        t.join(20)
        assert status == [0]
    finally:
        edge.close()


def test_master_and_edge_survive_hostile_frames_and_training_completes() -> None:
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
    with InProcessCluster(config) as cluster:
        socks = []
        for node in ("master", "edge-1"):
            for identity in (b"intruder", b"worker-1-0" if node == "edge-1" else b"edge-9"):
                s = ctx.socket(zmq.DEALER)
                s.setsockopt(zmq.LINGER, 0)
                s.setsockopt(zmq.ROUTING_ID, identity)
                s.connect(f"tcp://127.0.0.1:{cluster.ports[node]}")
                socks.append(s)
        for s in socks:
            for frames in hostile_frames().values():
                s.send_multipart(frames)
            # well-formed but not from a registered peer / for no current iteration
            s.send_multipart(encode(WorkerGradient(10**6, 1, 0, np.ones(650), 0.0)))
        status = cluster.wait()
        records = cluster.records()
        master_drops = dropped(cluster.registries["master"], "master")
        edge_drops = dropped(cluster.registries["edge-1"], "edge")
        for s in socks:
            s.close()
    assert status == 0
    assert [r["iteration"] for r in records] == list(range(15))
    assert all(r["ok"] for r in records)
    assert master_drops >= 8  # every frame from an identity that is not an edge
    assert edge_drops >= 8
