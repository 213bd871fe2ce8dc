"""Throughput of gradient messages through the project transport against a raw TCP socket.

Both on loopback, measured side by side in the same run, rounds alternating between the two
so machine noise hits both alike. A sender process (spawned, so it has its own interpreter
and ZeroMQ context) streams ``k`` messages of ``size`` bytes whenever the receiver asks for
``k``. Every method first receives ``WARMUP`` messages untimed (connection, TCP window and
receive memory warmed up, as in a long run: the raw baseline's buffer is likewise allocated
and touched before its timer), then times "send n" -> the n-th message held as a usable
numpy array (for the transport: decoded and validated).

- transport: ``ChildEndpoint.send(WorkerGradient)`` -> ``ParentEndpoint`` via ``Loop.poll``
  (msgpack header + one zero-copy array frame, validated decode).
- plain pyzmq: the same DEALER -> ROUTER with ``copy=False`` and no codec, to separate what
  our layer costs from what ZeroMQ costs.
- raw TCP: an 8-byte length prefix then the payload, ``sendall`` / ``recv_into``; once into
  one reused hot buffer (the ceiling, the target's reference) and once into a new buffer per
  message (what a receiver that keeps gradients must do: page faults included).

Every receiver runs in its own spawned process. "project transport" is measured as the
services run it: the endpoint applies ``common.runtime.memory.tune_allocator()``
(``TransportConfig.tune_allocator``, default on: large receive buffers reused from the heap
instead of page-faulted in per message); again with glibc's default allocator
(``tune_allocator=False``); plain pyzmq and raw TCP run with the default allocator.

Target: transport >= 0.8 x raw (reused buffer) for 4 MB and 40 MB messages. Ratios are
medians of per-round ratios (each round measures all methods back to back).
"""

from __future__ import annotations

import multiprocessing as mp
import resource
import socket
import statistics
import struct
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from bench import Result

MB = 1_000_000
WARMUP = 3  # untimed messages before every timed batch


def _timed(
    batch: Callable[[int], None], n: int, size: int, warmup: int = WARMUP
) -> tuple[float, float]:
    """Receive ``warmup`` messages untimed, then ``n`` timed: (bytes per second, minor page
    faults per timed message in this process)."""
    batch(warmup)
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    started = time.perf_counter()
    batch(n)
    elapsed = time.perf_counter() - started
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults
    return n * size / elapsed, faults / n


def _transport_config(tune: bool, keys: str | None, node: str) -> Any:
    """The endpoints' config; ``keys``: an ``hgc keys`` folder (CURVE on), None: plain."""
    import dataclasses

    from common.runtime.transport import TransportConfig

    config = TransportConfig(heartbeat_interval_s=5.0, linger_ms=1000, tune_allocator=tune)
    if keys is None:
        return config
    from common.runtime.security import load_auth

    return dataclasses.replace(config, auth=load_auth(Path(keys) / "nodes" / node))


def _transport_sender(address: str, size: int, tune: bool = False, keys: str | None = None) -> None:
    from prometheus_client import CollectorRegistry

    from common.runtime.messages import (
        NO_ITERATION,
        ModelUpdate,
        Register,
        Shutdown,
        WorkerGradient,
    )
    from common.runtime.metrics import WorkerMetrics
    from common.runtime.transport import ChildEndpoint, Received

    child = ChildEndpoint(
        "worker-0-0",
        WorkerMetrics(CollectorRegistry(), 0, 0),
        address,
        parent="edge-0",
        config=_transport_config(tune, keys, "worker-0-0"),
    )
    vector = np.random.default_rng(0).standard_normal(size // 8)
    child.send(Register(NO_ITERATION, "worker", "worker-0-0", 0, 0))
    while True:
        for event in child.poll(1.0):
            if isinstance(event, Received) and isinstance(event.message, Shutdown):
                child.close()
                return
            if isinstance(event, Received) and isinstance(event.message, ModelUpdate):
                for k in range(event.message.iteration):  # the request: how many to send
                    # never dropped: the HWM (1000) is far above n
                    assert child.send(WorkerGradient(k, 0, 0, vector, 0.0))


def _measure_transport(
    n: int,
    size: int,
    tune: bool,
    *,
    keys: str | None = None,
    sender_tune: bool = False,
    warmup: int = WARMUP,
    timeout_s: float = 120.0,
) -> tuple[float, float]:
    """Our endpoints, a spawned sender process -> this process: ``_timed``'s figures. Also
    the CURVE-on/off comparison of bench_security (``keys``)."""
    from prometheus_client import CollectorRegistry

    from common.runtime.messages import ModelUpdate, Register, Shutdown, WorkerGradient
    from common.runtime.metrics import EdgeMetrics
    from common.runtime.transport import Loop, ParentEndpoint, Received

    config = _transport_config(tune, keys, "edge-0")
    parent = ParentEndpoint("edge-0", EdgeMetrics(CollectorRegistry(), 0), config=config)
    proc = mp.get_context("spawn").Process(
        target=_transport_sender, args=(parent.address, size, sender_tune, keys), daemon=True
    )
    proc.start()
    loop = Loop(parent)
    deadline = time.monotonic() + timeout_s
    while not any(
        isinstance(e, Received) and isinstance(e.message, Register) for e in loop.poll(1.0)
    ):
        if time.monotonic() > deadline:
            raise TimeoutError("transport sender did not register")

    def batch(k: int) -> None:
        parent.send("worker-0-0", ModelUpdate(k, np.zeros(1)))  # "send k gradients"
        got = 0
        while got < k:
            for e in loop.poll(1.0):
                if isinstance(e, Received) and isinstance(e.message, WorkerGradient):
                    assert e.message.vector.nbytes == size // 8 * 8
                    got += 1
            if time.monotonic() > deadline:
                raise TimeoutError(f"transport: {got}/{k} messages received")

    measured = _timed(batch, n, size, warmup)
    parent.send("worker-0-0", Shutdown(-1, "bench done"))
    proc.join(30)
    parent.close()
    return measured


def _pyzmq_sender(address: str, size: int) -> None:
    import zmq

    ctx = zmq.Context()
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.ROUTING_ID, b"worker-0-0")
    sock.connect(address)
    vector = np.random.default_rng(0).standard_normal(size // 8)
    header = b"h" * 64  # about the size of our msgpack header
    sock.send(b"hello")
    while (request := int(sock.recv())) > 0:  # "send k", 0: done
        for _ in range(request):
            sock.send_multipart([header, vector.data.cast("B")], copy=False)
    sock.close(linger=1000)
    ctx.term()


def _measure_pyzmq(n: int, size: int) -> tuple[float, float]:
    """Plain pyzmq DEALER -> ROUTER, copy=False, no codec: what ZeroMQ itself costs."""
    import zmq

    ctx = zmq.Context()
    router = ctx.socket(zmq.ROUTER)
    port = router.bind_to_random_port("tcp://127.0.0.1")
    proc = mp.get_context("spawn").Process(
        target=_pyzmq_sender, args=(f"tcp://127.0.0.1:{port}", size), daemon=True
    )
    proc.start()
    if not router.poll(120_000):
        raise TimeoutError("pyzmq sender did not connect")
    identity, _ = router.recv_multipart()

    def batch(k: int) -> None:
        router.send_multipart([identity, str(k).encode()])
        for _ in range(k):
            if not router.poll(120_000):
                raise TimeoutError("pyzmq sender stalled")
            frames = router.recv_multipart(copy=False)
            np.frombuffer(frames[2].buffer, dtype=np.float64)

    measured = _timed(batch, n, size)
    router.send_multipart([identity, b"0"])
    proc.join(30)
    router.close(linger=0)
    ctx.term()
    return measured


def _raw_sender(port: int, size: int) -> None:
    payload = np.random.default_rng(0).standard_normal(size // 8).tobytes()
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        request = bytearray(4)
        while True:
            _recv_exactly(s, memoryview(request))
            (k,) = struct.unpack("<I", request)  # "send k", 0: done
            if k == 0:
                return
            for _ in range(k):
                s.sendall(struct.pack("<Q", len(payload)))
                s.sendall(payload)


def _recv_exactly(conn: socket.socket, view: memoryview) -> None:
    while view:
        k = conn.recv_into(view)
        if k == 0:
            raise ConnectionError("raw TCP peer closed early")
        view = view[k:]


def _measure_raw(n: int, size: int, fresh: bool = False) -> tuple[float, float]:
    """Raw TCP. ``fresh=False`` receives every message into the same hot buffer (the ceiling);
    ``fresh=True`` gives each message its own new (uninitialised) buffer, as any transport
    must when the application keeps several gradients (an edge holds m_i - s_w of them)."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        proc = mp.get_context("spawn").Process(target=_raw_sender, args=(port, size), daemon=True)
        proc.start()
        server.settimeout(120)
        conn, _ = server.accept()
        with conn:
            # A blocking socket with a kernel receive timeout: one syscall per recv_into
            # (settimeout() would make Python poll() before each one: a weaker baseline).
            conn.settimeout(None)
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, struct.pack("ll", 120, 0))
            prefix = bytearray(8)
            buffer = np.empty(size // 8 * 8, np.uint8)
            kept: list[np.ndarray] = []

            def batch(k: int) -> None:
                nonlocal buffer, kept
                conn.sendall(struct.pack("<I", k))
                for _ in range(k):
                    _recv_exactly(conn, memoryview(prefix))
                    (length,) = struct.unpack("<Q", prefix)
                    if fresh:
                        buffer = np.empty(length, np.uint8)
                        kept = [*kept[-1:], buffer]  # like an edge holding a few gradients
                    _recv_exactly(conn, buffer.data[:length])
                    buffer[:length].view(np.float64)  # a usable array, as the others give

            # the warm-up also touches the reused buffer's pages before the timer
            measured = _timed(batch, n, size)
            conn.sendall(struct.pack("<I", 0))
        proc.join(30)
    return measured


def _receiver_main(queue: Any, method: str, n: int, size: int, tune: bool) -> None:
    if method == "transport":  # the endpoint tunes the allocator itself unless told not to
        queue.put(_measure_transport(n, size, tune))
    elif method == "pyzmq":
        queue.put(_measure_pyzmq(n, size))
    else:
        queue.put(_measure_raw(n, size, fresh=method == "raw-new"))


def _measure_in_subprocess(method: str, tune: bool, n: int, size: int) -> tuple[float, float]:
    """Each receiver runs in a fresh process so allocator settings do not leak between methods."""
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_receiver_main, args=(queue, method, n, size, tune))
    proc.start()
    try:
        rate, faults = queue.get(timeout=300)
    finally:
        proc.join(30)
    return float(rate), float(faults)


METHODS: dict[str, tuple[str, bool]] = {
    "project transport": ("transport", True),  # as the services run it (the default)
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
    rounds = 3 if quick else 7  # shared, noisy machines: per-round ratios spread +-20 %
    results: list[Result] = []
    for label, size, n in plans:
        rates: dict[str, list[float]] = {name: [] for name in METHODS}
        faults: dict[str, list[float]] = {name: [] for name in METHODS}
        names = list(METHODS)
        for r in range(rounds):  # interleave (rotating the order) so noise hits all alike
            for name in names[r % len(names) :] + names[: r % len(names)]:
                rate, fault = _measure_in_subprocess(*METHODS[name], n, size)
                rates[name].append(rate)
                faults[name].append(fault)
        section = f"transport {label}"
        for name, values in rates.items():
            results.append(
                Result(
                    section, f"{name} (median of {rounds})", statistics.median(values) / MB, "MB/s"
                )
            )
            results.append(  # not timing: why the allocator matters (a 4 kB page each)
                Result(
                    section,
                    f"{name}: receiver page faults per message",
                    statistics.median(faults[name]),
                    "faults",
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
