"""Throughput of gradient messages through the project transport against a raw TCP socket.

Both on loopback, measured side by side in the same run, rounds alternating between the two
so machine noise hits both alike. A sender process (spawned, so it has its own interpreter
and ZeroMQ context) streams ``n`` messages of ``size`` bytes once the receiver says go; the
receiver times go -> last message fully received (and, for the transport, decoded).

- transport: ``ChildEndpoint.send(WorkerGradient)`` -> ``ParentEndpoint`` via ``Loop.poll``
  (msgpack header + one zero-copy array frame, validated decode).
- plain pyzmq: the same DEALER -> ROUTER with ``copy=False`` and no codec, to separate what
  our layer costs from what ZeroMQ costs.
- raw TCP: an 8-byte length prefix then the payload, ``sendall`` / ``recv_into``; once into
  one reused hot buffer (the ceiling, the target's reference) and once into a new buffer per
  message (what a receiver that keeps gradients must do: page faults included).

Every receiver runs in its own spawned process. "project transport" is measured as the
services run it, with ``common.runtime.memory.tune_allocator()`` (large receive buffers
reused from the heap instead of page-faulted in per message), and again with glibc's
default allocator; plain pyzmq and raw TCP run with the default allocator.

Target: transport >= 0.8 x raw (reused buffer) for 4 MB and 40 MB messages. Ratios are
medians of per-round ratios (each round measures all methods back to back).
"""

from __future__ import annotations

import multiprocessing as mp
import socket
import statistics
import struct
import time
from typing import Any

import numpy as np

from bench import Result

MB = 1_000_000


def _transport_sender(address: str, n: int, size: int) -> None:
    from prometheus_client import CollectorRegistry

    from common.runtime.messages import NO_ITERATION, Register, Shutdown, WorkerGradient
    from common.runtime.metrics import WorkerMetrics
    from common.runtime.transport import ChildEndpoint, Received, TransportConfig

    config = TransportConfig(heartbeat_interval_s=5.0, linger_ms=1000)
    child = ChildEndpoint(
        "worker-0-0",
        WorkerMetrics(CollectorRegistry(), 0, 0),
        address,
        parent="edge-0",
        config=config,
    )
    vector = np.random.default_rng(0).standard_normal(size // 8)
    child.send(Register(NO_ITERATION, "worker", "worker-0-0", 0, 0))
    go = False
    while True:
        for event in child.poll(1.0):
            if isinstance(event, Received) and isinstance(event.message, Shutdown):
                child.close()
                return
            if isinstance(event, Received) and not go:
                go = True
                for k in range(n):
                    # never dropped: the HWM (1000) is far above n
                    assert child.send(WorkerGradient(k, 0, 0, vector, 0.0))


def _measure_transport(n: int, size: int) -> float:
    from prometheus_client import CollectorRegistry

    from common.runtime.messages import ModelUpdate, Register, Shutdown, WorkerGradient
    from common.runtime.metrics import EdgeMetrics
    from common.runtime.transport import Loop, ParentEndpoint, Received, TransportConfig

    config = TransportConfig(heartbeat_interval_s=5.0, linger_ms=1000)
    parent = ParentEndpoint("edge-0", EdgeMetrics(CollectorRegistry(), 0), config=config)
    proc = mp.get_context("spawn").Process(
        target=_transport_sender, args=(parent.address, n, size), daemon=True
    )
    proc.start()
    loop = Loop(parent)
    deadline = time.monotonic() + 120
    while not any(
        isinstance(e, Received) and isinstance(e.message, Register) for e in loop.poll(1.0)
    ):
        if time.monotonic() > deadline:
            raise TimeoutError("transport sender did not register")
    started = time.perf_counter()
    parent.send("worker-0-0", ModelUpdate(0, np.zeros(1)))
    got = 0
    while got < n:
        for e in loop.poll(1.0):
            if isinstance(e, Received) and isinstance(e.message, WorkerGradient):
                assert e.message.vector.nbytes == size // 8 * 8
                got += 1
        if time.monotonic() > deadline:
            raise TimeoutError(f"transport: {got}/{n} messages received")
    elapsed = time.perf_counter() - started
    parent.send("worker-0-0", Shutdown(-1, "bench done"))
    proc.join(30)
    parent.close()
    return n * size / elapsed


def _pyzmq_sender(address: str, n: int, size: int) -> None:
    import zmq

    ctx = zmq.Context()
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.ROUTING_ID, b"worker-0-0")
    sock.connect(address)
    vector = np.random.default_rng(0).standard_normal(size // 8)
    header = b"h" * 64  # about the size of our msgpack header
    sock.send(b"hello")
    sock.recv()  # go
    for _ in range(n):
        sock.send_multipart([header, vector.data.cast("B")], copy=False)
    sock.recv()  # done
    sock.close(linger=1000)
    ctx.term()


def _measure_pyzmq(n: int, size: int) -> float:
    """Plain pyzmq DEALER -> ROUTER, copy=False, no codec: what ZeroMQ itself costs."""
    import zmq

    ctx = zmq.Context()
    router = ctx.socket(zmq.ROUTER)
    port = router.bind_to_random_port("tcp://127.0.0.1")
    proc = mp.get_context("spawn").Process(
        target=_pyzmq_sender, args=(f"tcp://127.0.0.1:{port}", n, size), daemon=True
    )
    proc.start()
    if not router.poll(120_000):
        raise TimeoutError("pyzmq sender did not connect")
    identity, _ = router.recv_multipart()
    started = time.perf_counter()
    router.send_multipart([identity, b"go"])
    for _ in range(n):
        if not router.poll(120_000):
            raise TimeoutError("pyzmq sender stalled")
        frames = router.recv_multipart(copy=False)
        np.frombuffer(frames[2].buffer, dtype=np.float64)
    elapsed = time.perf_counter() - started
    router.send_multipart([identity, b"done"])
    proc.join(30)
    router.close(linger=0)
    ctx.term()
    return n * size / elapsed


def _raw_sender(port: int, n: int, size: int) -> None:
    payload = np.random.default_rng(0).standard_normal(size // 8).tobytes()
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.recv(1)  # go
        for _ in range(n):
            s.sendall(struct.pack("<Q", len(payload)))
            s.sendall(payload)
        s.recv(1)  # done


def _recv_exactly(conn: socket.socket, view: memoryview) -> None:
    while view:
        k = conn.recv_into(view)
        if k == 0:
            raise ConnectionError("raw sender closed early")
        view = view[k:]


def _measure_raw(n: int, size: int, fresh: bool = False) -> float:
    """Raw TCP. ``fresh=False`` receives every message into the same hot buffer (the ceiling);
    ``fresh=True`` gives each message its own new buffer, as any transport must when the
    application keeps several gradients (an edge holds m_i - s_w of them)."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        proc = mp.get_context("spawn").Process(
            target=_raw_sender, args=(port, n, size), daemon=True
        )
        proc.start()
        server.settimeout(120)
        conn, _ = server.accept()
        with conn:
            conn.settimeout(120)
            prefix = bytearray(8)
            buffer = bytearray(size // 8 * 8)
            kept: list[bytearray] = []
            started = time.perf_counter()
            conn.sendall(b"g")
            for _ in range(n):
                _recv_exactly(conn, memoryview(prefix))
                (length,) = struct.unpack("<Q", prefix)
                if fresh:
                    buffer = bytearray(length)
                    kept = [*kept[-1:], buffer]  # like an edge holding a few gradients
                _recv_exactly(conn, memoryview(buffer)[:length])
            elapsed = time.perf_counter() - started
            conn.sendall(b"d")
        proc.join(30)
    return n * size / elapsed


def _receiver_main(queue: Any, method: str, n: int, size: int, tune: bool) -> None:
    if tune:
        from common.runtime.memory import tune_allocator

        tune_allocator()
    measure = {"transport": _measure_transport, "pyzmq": _measure_pyzmq, "raw": _measure_raw}
    if method == "raw-new":
        queue.put(_measure_raw(n, size, fresh=True))
    else:
        queue.put(measure[method](n, size))


def _measure_in_subprocess(method: str, tune: bool, n: int, size: int) -> float:
    """Each receiver runs in a fresh process so allocator settings do not leak between methods."""
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_receiver_main, args=(queue, method, n, size, tune))
    proc.start()
    try:
        rate = float(queue.get(timeout=300))
    finally:
        proc.join(30)
    return rate


METHODS: dict[str, tuple[str, bool]] = {
    "project transport": ("transport", True),  # as the services run it: tuned allocator
    "project transport, default allocator": ("transport", False),
    "plain pyzmq (no codec)": ("pyzmq", False),
    "raw TCP, one reused buffer": ("raw", False),
    "raw TCP, new buffer per message": ("raw-new", False),
}


def _ratio(rates: dict[str, list[float]], ours: str, base: str) -> float:
    """Median over rounds of ours / base, each round measuring every method back to back."""
    return statistics.median(a / b for a, b in zip(rates[ours], rates[base], strict=True))


def run(quick: bool) -> list[Result]:
    plans = [("4MB", 4 * MB, 10 if quick else 40), ("40MB", 40 * MB, 3 if quick else 8)]
    rounds = 3 if quick else 5
    results: list[Result] = []
    for label, size, n in plans:
        rates: dict[str, list[float]] = {name: [] for name in METHODS}
        names = list(METHODS)
        for r in range(rounds):  # interleave (rotating the order) so noise hits all alike
            for name in names[r % len(names) :] + names[: r % len(names)]:
                rates[name].append(_measure_in_subprocess(*METHODS[name], n, size))
        section = f"transport {label}"
        for name, values in rates.items():
            results.append(
                Result(
                    section, f"{name} (median of {rounds})", statistics.median(values) / MB, "MB/s"
                )
            )
        default = "project transport, default allocator"
        strict = _ratio(rates, "project transport", "raw TCP, one reused buffer")
        results.append(
            Result(
                section,
                "transport / raw TCP reused buffer",
                strict,
                "ratio",
                ">= 0.8",
                strict >= 0.8,
            )
        )
        for label_, base in (
            ("raw TCP reused buffer", "raw TCP, one reused buffer"),
            ("raw TCP new buffer", "raw TCP, new buffer per message"),
            ("plain pyzmq", "plain pyzmq (no codec)"),
        ):
            results.append(
                Result(
                    section,
                    f"transport (default allocator) / {label_}",
                    _ratio(rates, default, base),
                    "ratio",
                )
            )
    return results


def _main() -> None:  # pragma: no cover - handy when tuning: python -m bench.bench_transport
    for r in run(quick=True):
        print(r)


if __name__ == "__main__":
    _main()
