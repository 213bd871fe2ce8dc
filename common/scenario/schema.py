"""The parsed scenario: small frozen dataclasses, one per section, and ``Scenario`` itself."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common.coding import Tolerances
from common.perf.system import (
    EdgeProfile,
    StragglerModel,
    SystemModel,
    WorkerProfile,
    with_message_overhead,
)
from common.scenario.adaptive import Adaptive
from common.scenario.profiles import Topology

ON_FAILURE = ("retry", "skip", "stop")
COMPUTE_EMULATION = ("delay", "work", "off", "real")
NETWORK_EMULATION = ("in-process", "kernel", "off")
FAULT_ACTIONS = ("kill", "slow", "pause", "set-device", "set-link", "restart")


@dataclass(frozen=True)
class Training:
    """``learning_rate`` is the step on the MEAN gradient (sum of partition gradients / n_train).
    ``deadline_s``: the master gives up on an iteration after this long (``None``: no deadline),
    then ``on_failure`` decides: retry it (up to ``max_retries``), skip it, or stop the run."""

    iterations: int = 30
    learning_rate: float = 0.5
    eval_every: int = 5
    target_loss: float | None = None
    deadline_s: float | None = None
    on_failure: str = "retry"
    max_retries: int = 2
    optimiser: dict[str, Any] | None = None  # momentum / adam at the master (None: SGD)


@dataclass(frozen=True)
class Emulation:
    """How the real system imitates the profiles: ``compute`` delay (sleep the modelled time
    minus the real compute), work (burn CPU), off, or real (no modelled time at all: a worker's
    time is its real computation under its device's CPU quota (set ``cpu_quota: true``); the
    straggler model is then only the simulator's prediction); ``cpu_quota`` enforces each device's
    ``cpu_fraction`` with cgroups/docker; ``network`` delays in-process, in the kernel (tc), or
    not at all. ``message_overhead_s``: seconds the runtime itself spends per message hop
    (encode, zmq, decode, scheduling); not emulated (it is real) but a term of the model:
    :meth:`Scenario.system_model` adds it to every link's latency."""

    compute: str = "delay"
    cpu_quota: bool = False
    network: str = "in-process"
    message_overhead_s: float = 0.0


@dataclass(frozen=True)
class Fault:
    """At the start of ``iteration``, ``node`` is killed, slowed by ``factor``, or paused.
    ``duration_s`` ``None`` means until the end of the run (``kill`` is always permanent)."""

    iteration: int
    node: str
    action: str
    factor: float = 1.0
    duration_s: float | None = None
    device: str | None = None  # set-device: a worker's device profile from ``iteration`` on
    link: str | None = None  # set-link: a worker's link / an edge's uplink from then on


@dataclass(frozen=True)
class Ports:
    metrics_base_port: int | None = None  # None = "auto": every node binds port 0


@dataclass(frozen=True, eq=False)
class Scenario:
    name: str
    seed: int
    description: str
    topology: Topology
    straggler: StragglerModel
    model_spec: dict[str, Any]
    data_spec: dict[str, Any]
    n_train: int
    n_features: int
    n_classes: int
    n_params: int
    training: Training
    code: Tolerances  # the fixed schemes' tolerances and K (common.coding.schemes)
    schemes: tuple[str, ...]
    emulation: Emulation
    faults: tuple[Fault, ...]
    ports: Ports
    source: Path | None = None
    raw: dict[str, Any] = field(default_factory=dict)
    security_curve: bool = True  # security.curve: CurveZMQ between all nodes (hgc run/cluster)
    adaptive: Adaptive = field(default_factory=Adaptive)  # hgc-adaptive: window, threshold

    @property
    def workers_per_edge(self) -> tuple[int, ...]:
        return self.topology.workers_per_edge

    @property
    def n_edges(self) -> int:
        return len(self.topology.workers_per_edge)

    @property
    def n_workers(self) -> int:
        return sum(self.topology.workers_per_edge)

    @property
    def gradient_bytes(self) -> int:
        """Bytes of one gradient / coded vector / parameter vector (float64)."""
        return self.n_params * 8

    def worker_profile(self, i: int, j: int) -> WorkerProfile:
        return self.topology.workers[i][j]

    def edge_profile(self, i: int) -> EdgeProfile:
        return self.topology.edges[i]

    def node_names(self) -> tuple[str, ...]:
        """``master``, ``edge-<i>`` in order, then ``worker-<i>-<j>`` edge-major."""
        edges = [f"edge-{i}" for i in range(self.n_edges)]
        workers = [f"worker-{i}-{j}" for i, m in enumerate(self.workers_per_edge) for j in range(m)]
        return ("master", *edges, *workers)

    def system_model(self) -> SystemModel:
        """What the maths uses: per-worker and per-edge profiles, gradient size, stragglers,
        and the runtime's per-message overhead (``emulation.message_overhead_s``) on every hop."""
        system = SystemModel(
            workers=self.topology.workers,
            edges=self.topology.edges,
            gradient_bytes=self.gradient_bytes,
            straggler=self.straggler,
        )
        return with_message_overhead(system, self.emulation.message_overhead_s)
