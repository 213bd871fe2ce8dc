"""The real system's own cost per message hop, measured on this machine, in this run.

The runtime model (``common.perf``) charges nothing per message; a real iteration does pay
for encoding, zmq, decoding, the event loop, the emulated link's millisecond timer and the OS
scheduling ~20 Python processes on few cores. To measure it, run the scenario's
*deterministic twin* -- same topology, devices, links, data and emulation, with every random
part removed (``rate = inf``, no jitter, no loss, no faults) -- where the model is exact, so
``measured - predicted`` is the system's overhead alone. Every critical path of one iteration
has ``HOPS_PER_ITERATION`` message hops (master->edge->worker->edge->master, hierarchical or
flat), so the overhead per hop is that difference over four.

It is a measurement of the twin, never fitted to the scheme ratios it is used to explain;
``bench_fidelity`` puts it into the model (``emulation.message_overhead_s``) and shows the
pure model's ratios beside. ``hop_profile`` (below) splits one hop into its stages.
"""

from __future__ import annotations

import dataclasses
import math
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from common.perf import Plan
from common.perf.system import Link, StragglerModel
from common.scenario import Scenario

HOPS_PER_ITERATION = 4
CALIBRATION_SCHEME = "uncoded"  # waits for every node: the longest, steadiest iteration


def _steady(link: Link) -> Link:
    return dataclasses.replace(link, jitter_s=0.0, loss=0.0)


def deterministic_twin(scenario: Scenario) -> Scenario:
    """``scenario`` with every random part removed: worker rates infinite (compute time is
    exactly ``shift_s * load``), links without jitter or loss, straggler model
    shifted-exponential (no markov slow state, no trace), no faults, and no
    ``emulation.message_overhead_s`` in its model."""
    topo = scenario.topology
    workers = tuple(
        tuple(dataclasses.replace(w, rate=math.inf, link=_steady(w.link)) for w in ws)
        for ws in topo.workers
    )
    edges = tuple(dataclasses.replace(e, uplink=_steady(e.uplink)) for e in topo.edges)
    return dataclasses.replace(
        scenario,
        name=f"{scenario.name}-deterministic",
        # the model of the twin is the pure one: what it measures is the overhead itself
        emulation=dataclasses.replace(scenario.emulation, message_overhead_s=0.0),
        topology=dataclasses.replace(topo, workers=workers, edges=edges),
        straggler=StragglerModel(),
        faults=(),
        schemes=(CALIBRATION_SCHEME,),
    )


def with_overhead(scenario: Scenario, hop_s: float) -> Scenario:
    """``scenario`` with ``emulation.message_overhead_s = hop_s``: the measured overhead as a
    term of its model (every prediction from it then charges ``hop_s`` per message hop)."""
    emulation = dataclasses.replace(scenario.emulation, message_overhead_s=hop_s)
    return dataclasses.replace(scenario, emulation=emulation)


@dataclass(frozen=True)
class Overhead:
    """One calibration: the twin's measured and predicted mean iteration time (seconds)."""

    measured_s: float
    predicted_s: float
    iterations: int

    @property
    def per_iteration_s(self) -> float:
        return self.measured_s - self.predicted_s

    @property
    def per_hop_s(self) -> float:
        """Seconds per message hop, >= 0 (a twin faster than its exact model means the
        emulation under-delays; that is reported by ``per_iteration_s``, not used here)."""
        return max(0.0, self.per_iteration_s / HOPS_PER_ITERATION)


def measure_overhead(
    scenario_path: Path,
    scenario: Scenario,
    iterations: int,
    out: Path,
    stream: TextIO | None = None,
    plan: Plan | None = None,
) -> Overhead:
    """Run the deterministic twin of ``scenario`` with ``hgc run``'s launcher and compare it
    with its exact prediction: ``CALIBRATION_SCHEME`` (every node), or ``plan`` -- a plan of
    ``scenario`` run as it is, same nodes, loads and code -- whose twin measures the overhead
    *that plan's* processes pay on this host (how many send at once depends on the plan).

    Raises ``RuntimeError`` when the twin's run fails or the model cannot evaluate it."""
    from hgc.testbed.launcher import RunRequest, run_testbed

    if iterations < 1:
        raise ValueError(f"iterations must be >= 1, got {iterations}")
    twin = deterministic_twin(scenario)
    scheme = CALIBRATION_SCHEME if plan is None else plan.scheme
    twin = dataclasses.replace(twin, schemes=(scheme,))
    plans = {} if plan is None else {scheme: plan}
    request = RunRequest(
        scenario_path, twin, twin.schemes, iterations, out=out, stream=stream, plans=plans
    )
    outcome = run_testbed(request)
    if not outcome.ok or scheme not in outcome.results:
        raise RuntimeError(f"overhead calibration run failed: {outcome.failures}")
    result = outcome.results[scheme]  # the prediction is for the plan it ran
    predicted = result.predicted_mean_s
    if predicted is None:
        raise RuntimeError(f"overhead calibration: no prediction for the twin: {result.plan}")
    stats = result.stats
    return Overhead(stats.mean_s, predicted, stats.iterations)


# --------------------------------------------------------------------------- hop profile
# Where a message hop's time goes, measured on real processes and sockets: the parent (this
# process, a ROUTER like an edge's downlink) sends a ``ModelUpdate`` to an echo child (a
# DEALER in its own process, like a worker) that answers with a ``WorkerGradient`` of the
# same size, through the same ``transport.Loop`` the services use. Each mode adds one stage
# to the round trip, so the differences of the medians are the stages' costs:
#
# - ``plain``: encode + zmq hand-off + loopback TCP + poll wake-up + decode, both ways;
# - ``offload``: the child answers from an ``Offload`` task (a worker's gradient path: thread
#   pool hand-off, pipe wake-up), one hop of the two;
# - ``link``: both directions emulate a link of ``PROFILE_LATENCY_S`` (``set_link``): the
#   delayed-send timer; (round trip - plain - 2 x latency) / 2 is its lateness per hop.
#
# Medians of many round trips (the machine is shared: a median is robust to the other
# sessions' bursts); the ``precise`` flag switches ``transport.Loop.precise_timers``.

PROFILE_LATENCY_S = 0.0025  # not a whole ms: the old rule rounded the rest up to the next
# whole ms, 0.5 ms late on average over arbitrary link latencies (an exact 2 ms lost ~0.1 ms)
PROFILE_MODES = ("plain", "offload", "link")


def _echo(address: str, mode: str, precise: bool) -> int:
    """The echo child: answer every ``ModelUpdate`` with a ``WorkerGradient``; exit on
    ``Shutdown``."""
    from prometheus_client import CollectorRegistry

    from common.runtime.messages import ModelUpdate, Shutdown, WorkerGradient
    from common.runtime.metrics import WorkerMetrics
    from common.runtime.offload import Offload, TaskDone
    from common.runtime.transport import ChildEndpoint, Loop, Received

    Loop.precise_timers = precise
    metrics = WorkerMetrics(CollectorRegistry(), 0, 0)
    child = ChildEndpoint("worker-0-0", metrics, address, parent="edge-0")
    offload = Offload() if mode == "offload" else None
    if mode == "link":
        child.set_link("edge-0", Link(latency_s=PROFILE_LATENCY_S))
    loop = Loop(child, offload=offload)

    def answer(it: int, params: object) -> None:
        child.send(WorkerGradient(iteration=it, edge=0, worker=0, vector=params, compute_s=0.0))  # type: ignore[arg-type]

    child.send(Shutdown(iteration=-1, reason="ready"))  # hello: the parent learns our name
    while True:
        for ev in loop.poll(1.0):
            if isinstance(ev, Received) and isinstance(ev.message, Shutdown):
                for _ in range(100):  # let a delayed answer go out
                    if not child.pending_delayed:
                        break
                    loop.poll(0.01)
                child.close()
                return 0
            if isinstance(ev, Received) and isinstance(ev.message, ModelUpdate):
                msg = ev.message
                if offload is not None:
                    offload.submit(msg.iteration, lambda v: v, msg.params)
                else:
                    answer(msg.iteration, msg.params)
            if isinstance(ev, TaskDone):
                answer(int(ev.key), ev.result)  # type: ignore[call-overload]


@dataclass(frozen=True)
class HopProfile:
    """Median round trips (seconds) of one profile run, per mode, and the codec's CPU time
    per message (encode + decode of both messages of a round trip, seconds)."""

    round_trip_s: dict[str, float]
    codec_cpu_s: float
    n_params: int
    precise: bool

    def stages_us(self) -> dict[str, float]:
        """Per-hop microseconds of each stage (one hop = half a round trip)."""
        rt = self.round_trip_s
        plain = rt["plain"] / 2
        return {
            "encode + decode (CPU)": self.codec_cpu_s / 2 * 1e6,
            "zmq hand-off + loopback TCP + poll wake-up": (plain - self.codec_cpu_s / 2) * 1e6,
            "one hop, plain (sum of the two above)": plain * 1e6,
            "offload thread hand-off (worker's answer)": (rt["offload"] - rt["plain"]) * 1e6,
            "delayed-send timer lateness (emulated link)": (
                (rt["link"] - rt["plain"] - 2 * PROFILE_LATENCY_S) / 2 * 1e6
            ),
        }


def _codec_cpu(params: np.ndarray, repeats: int) -> float:
    from common.runtime import codec
    from common.runtime.messages import ModelUpdate, WorkerGradient

    msgs = [
        ModelUpdate(iteration=3, params=params),
        WorkerGradient(iteration=3, edge=0, worker=0, vector=params, compute_s=0.0),
    ]
    start = time.process_time()
    for _ in range(repeats):
        for msg in msgs:
            codec.decode([bytes(f) for f in codec.encode(msg)])
    return (time.process_time() - start) / repeats


def hop_profile(repeats: int = 300, n_params: int = 650, precise: bool = True) -> HopProfile:
    """Profile one hop on real processes (see the comment above ``PROFILE_LATENCY_S``)."""
    from prometheus_client import CollectorRegistry

    from common.runtime.messages import Shutdown
    from common.runtime.metrics import EdgeMetrics
    from common.runtime.transport import Loop, ParentEndpoint

    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    params = np.random.default_rng(0).standard_normal(n_params)
    saved = Loop.precise_timers
    Loop.precise_timers = precise
    rtt: dict[str, float] = {}
    try:
        for mode in PROFILE_MODES:
            parent = ParentEndpoint("edge-0", EdgeMetrics(CollectorRegistry(), 0))
            loop = Loop(parent)
            cmd = [sys.executable, "-m", "hgc.testbed.overhead", "echo", parent.address, mode]
            proc = subprocess.Popen([*cmd, "1" if precise else "0"])
            try:
                rtt[mode] = _round_trips(parent, loop, mode, params, repeats)
                parent.send("worker-0-0", Shutdown(iteration=-1, reason="done"))
                for _ in range(50):
                    loop.poll(0.01)
                    if not parent.pending_delayed:
                        break
                proc.wait(timeout=30)
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
                parent.close()
    finally:
        Loop.precise_timers = saved
    return HopProfile(rtt, _codec_cpu(params, 2000), n_params, precise)


def _round_trips(parent: Any, loop: Any, mode: str, params: np.ndarray, repeats: int) -> float:
    from common.runtime.messages import ModelUpdate, WorkerGradient
    from common.runtime.transport import Received

    deadline = time.monotonic() + 30
    while "worker-0-0" not in parent.alive:  # the child's hello
        if time.monotonic() > deadline:
            raise RuntimeError("hop profile: the echo child never connected")
        loop.poll(0.05)
    if mode == "link":
        parent.set_link("worker-0-0", Link(latency_s=PROFILE_LATENCY_S))
    times = []
    for it in range(repeats + 10):  # the first 10 warm up
        start = time.perf_counter()
        parent.send("worker-0-0", ModelUpdate(iteration=it, params=params))
        while True:
            events = loop.poll(5.0)
            if not events and time.perf_counter() - start > 5.0:
                raise RuntimeError(f"hop profile ({mode}): no answer to iteration {it}")
            if any(
                isinstance(e, Received)
                and isinstance(e.message, WorkerGradient)
                and e.message.iteration == it
                for e in events
            ):
                break
        if it >= 10:
            times.append(time.perf_counter() - start)
    return float(np.median(times))


def main(argv: list[str] | None = None) -> int:
    """``python -m hgc.testbed.overhead echo ADDRESS MODE PRECISE``: the profile's child;
    ``python -m hgc.testbed.overhead profile [REPEATS]``: print one profile, both timers."""
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["echo"] and len(args) == 4:
        return _echo(args[1], args[2], args[3] == "1")
    if args[:1] == ["profile"]:
        repeats = int(args[1]) if len(args) > 1 else 300
        for precise in (False, True, False, True):
            p = hop_profile(repeats, precise=precise)
            print(f"precise_timers={precise}")
            for stage, us in p.stages_us().items():
                print(f"  {stage:<48} {us:8.1f} us")
        return 0
    print(main.__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
