"""The runtime's per-iteration overhead against the number of nodes, as a ratio to the model.

Uncoded training of a tiny model (logreg on digits), no stragglers: every worker adds the same
fixed emulated compute delay and links are not emulated, so the simulator's prediction is
exactly that delay (deterministic model: the slowest of identical workers, zero-cost links,
no combine time). Whatever the real cluster of processes takes beyond it is the runtime's own
overhead (encode, zmq, decode, the event loops, OS scheduling of n + M + 1 processes on this
machine). Reported per size: measured mean iteration, predicted, their ratio, the overhead
per iteration and per message hop (four hops on every critical path), and the process count.

Run: ``.venv/bin/python -m bench overhead`` (quick: the two smallest sizes).
"""

from __future__ import annotations

import math
import tempfile
import time
from pathlib import Path

import numpy as np

from bench import Result
from common.coding import Tolerances
from common.perf import expected_time, plan_scheme
from common.perf.system import EdgeProfile, Link, SystemModel, WorkerProfile
from hgc.cluster import LocalCluster

SECTION = "overhead"
DELAY_S = 0.05  # fixed emulated compute per worker and iteration
SIZES = [(2, 2), (3, 5), (5, 8), (10, 10)]  # (edges, workers per edge): 7, 19, 46, 111 nodes
HOPS = 4


def predicted_s(edges: int, workers: int) -> float:
    """The simulator's expected iteration time of the same cluster (uncoded, deterministic)."""
    load = 1.0 / (edges * workers)  # each worker holds one of K = M partitions
    profile = WorkerProfile(shift_s=DELAY_S / load, rate=math.inf, link=Link())
    system = SystemModel(
        workers=tuple(tuple(profile for _ in range(workers)) for _ in range(edges)),
        edges=tuple(EdgeProfile(uplink=Link()) for _ in range(edges)),
        gradient_bytes=8 * 650,  # logreg on digits: 65 x 10 float64 parameters
    )
    plan = plan_scheme(system, "uncoded", Tolerances(0, 0))
    return float(expected_time(system, plan))


def measure(edges: int, workers: int, iterations: int) -> tuple[float, float]:
    """(mean iteration seconds after the first, wall seconds of the whole run)."""
    m = [workers] * edges
    config = {
        "code": {"scheme": "uncoded", "workers_per_edge": m},
        "data_spec": {"kind": "digits"},
        "model_spec": {"kind": "logreg"},
        "emulation_spec": {
            f"worker-{i}-{j}": {"fixed_delay_s": DELAY_S}
            for i in range(edges)
            for j in range(workers)
        },
        "training": {"iterations": iterations, "learning_rate": 0.5, "deadline_s": 60.0},
        "seed": 1,
    }
    start = time.perf_counter()
    with (
        tempfile.TemporaryDirectory(prefix="hgc-bench-overhead-") as tmp,
        LocalCluster(
            config, workdir=Path(tmp), heartbeat_s=0.5, liveness=20, ready_timeout_s=300.0
        ) as cluster,
    ):
        if cluster.wait(timeout=600) != 0:
            raise RuntimeError(f"{edges}x{workers}: the run failed: {cluster.log('master')}")
        records = cluster.records()
    durations = [r["duration_s"] for r in records if r["ok"]][1:]  # the first warms up
    return float(np.mean(durations)), time.perf_counter() - start


def codec_cpu(repeats: int) -> list[Result]:
    """CPU time (process time, so independent of the machine's load) to encode and to decode
    each message of one iteration's critical path: model_update (master -> edge -> worker),
    worker_gradient (worker -> edge), edge_gradient (edge -> master), logreg-on-digits sized."""
    from common.runtime import codec
    from common.runtime.messages import EdgeGradient, ModelUpdate, WorkerGradient

    v = np.random.default_rng(0).standard_normal(650)
    msgs = [
        ModelUpdate(iteration=3, params=v),
        WorkerGradient(iteration=3, edge=1, worker=2, vector=v, compute_s=0.05),
        EdgeGradient(
            iteration=3,
            edge=1,
            vector=v,
            responders=tuple(range(10)),
            wait_s=0.1,
            decode_s=0.001,
            worker_arrivals_s=(0.05,) * 10,
        ),
    ]
    out = []
    for msg in msgs:
        frames = [bytes(f) for f in codec.encode(msg)]
        start = time.process_time()
        for _ in range(repeats):
            codec.encode(msg)
        enc = (time.process_time() - start) / repeats
        start = time.process_time()
        for _ in range(repeats):
            codec.decode(frames)
        dec = (time.process_time() - start) / repeats
        out.append(Result(SECTION, f"codec {msg.op}: encode CPU per message", enc * 1e6, "us"))
        out.append(Result(SECTION, f"codec {msg.op}: decode CPU per message", dec * 1e6, "us"))
    return out


def twin(iterations: int) -> list[Result]:
    """The overhead per message hop on the heterogeneous scenario's deterministic twin
    (emulated links: every hop goes through the delayed-send timer), as bench_fidelity
    measures it."""
    from common.scenario import load_scenario
    from hgc.testbed.overhead import measure_overhead

    path = Path(__file__).resolve().parents[1] / "scenarios" / "heterogeneous.yaml"
    with tempfile.TemporaryDirectory(prefix="hgc-bench-overhead-twin-") as tmp:
        o = measure_overhead(path, load_scenario(path), iterations, Path(tmp))
    label = f"heterogeneous twin ({o.iterations} it)"
    return [
        Result(SECTION, f"{label}: measured mean iteration", o.measured_s, "s"),
        Result(SECTION, f"{label}: exact model", o.predicted_s, "s"),
        Result(SECTION, f"{label}: overhead per hop", o.per_iteration_s / HOPS * 1e3, "ms"),
    ]


def run(quick: bool) -> list[Result]:
    out: list[Result] = codec_cpu(2_000 if quick else 20_000)
    out += twin(10 if quick else 30)
    sizes = SIZES[:2] if quick else SIZES
    iterations = 6 if quick else 11
    for edges, workers in sizes:
        nodes = 1 + edges + edges * workers
        measured, wall = measure(edges, workers, iterations)
        predicted = predicted_s(edges, workers)
        label = f"{edges}x{workers} ({nodes} processes)"
        per_iteration = measured - predicted
        out += [
            Result(SECTION, f"{label}: measured mean iteration", measured, "s"),
            Result(SECTION, f"{label}: simulator prediction", predicted, "s"),
            Result(SECTION, f"{label}: measured / predicted", measured / predicted, "ratio"),
            Result(SECTION, f"{label}: overhead per iteration", per_iteration * 1e3, "ms"),
            Result(SECTION, f"{label}: overhead per hop", per_iteration / HOPS * 1e3, "ms"),
            Result(SECTION, f"{label}: wall time of the run", wall, "s"),
        ]
    return out
