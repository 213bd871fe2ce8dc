"""The heterogeneity model of an edge cluster: what the runtime model, the optimiser and the
simulator compute with. Pure data, no I/O. ``common.scenario`` builds it from a scenario file;
the launcher and the compose generator read the same profiles to emulate the hardware.

Units: seconds, bytes, bytes per second. Loads are fractions of the dataset (D/K).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np


@dataclass(frozen=True)
class Link:
    """One direction-agnostic link; a message of b bytes takes
    ``latency_s + uniform(-jitter_s, +jitter_s) (clipped at 0) + b / bandwidth_bytes_per_s``,
    plus ``retransmit_s`` with probability ``loss`` (a lost segment costs one timeout)."""

    latency_s: float = 0.0
    jitter_s: float = 0.0
    bandwidth_bytes_per_s: float = math.inf
    loss: float = 0.0
    retransmit_s: float = 0.2

    @property
    def is_deterministic(self) -> bool:
        return self.jitter_s == 0.0 and self.loss == 0.0

    def mean_transfer_s(self, n_bytes: float) -> float:
        return self.latency_s + n_bytes / self.bandwidth_bytes_per_s + self.loss * self.retransmit_s


@dataclass(frozen=True)
class WorkerProfile:
    """Worker compute time for load fraction l is shifted-exponential:
    ``P[T <= t] = 1 - exp(-(rate / l) (t - shift_s * l))`` for ``t >= shift_s * l``.

    ``shift_s`` is the deterministic time to process the whole dataset on this device;
    ``rate`` is the straggling rate per unit load (mean extra time ``l / rate``).
    ``cpu_fraction`` (0, 1] is the CPU share the device profile asks the real system to
    enforce (cgroup quota / docker ``cpus``); the model's ``shift_s`` already includes it.
    """

    shift_s: float
    rate: float
    link: Link = field(default_factory=Link)  # worker <-> its edge
    device: str = "custom"
    cpu_fraction: float = 1.0


@dataclass(frozen=True)
class EdgeProfile:
    uplink: Link = field(default_factory=Link)  # edge <-> master
    combine_s_per_byte: float = 0.0  # time to fold one received byte into the combination
    device: str = "custom"
    cpu_fraction: float = 1.0


@dataclass(frozen=True)
class StragglerModel:
    """How per-iteration compute times are drawn.

    - ``shifted-exponential``: independent draws from each worker's profile every iteration.
    - ``markov``: each worker is in a normal or a slow state, a two-state Markov chain per
      worker (``p_slow``: normal -> slow, ``p_recover``: slow -> normal, per iteration); in the
      slow state the drawn time is multiplied by ``slowdown``.
    - ``trace``: replay measured times; ``trace[t, w]`` is worker w's compute time (seconds,
      at the load the trace was recorded with, ``trace_load``) in iteration t (cycled), workers
      in edge-major order; times scale linearly with load.
    """

    kind: str = "shifted-exponential"
    p_slow: float = 0.0
    p_recover: float = 1.0
    slowdown: float = 1.0
    trace: np.ndarray | None = None  # shape (iterations, M)
    trace_load: float = 1.0


@dataclass(frozen=True)
class SystemModel:
    workers: tuple[tuple[WorkerProfile, ...], ...]  # edge -> worker
    edges: tuple[EdgeProfile, ...]
    gradient_bytes: int  # one gradient / coded vector / model parameter vector
    straggler: StragglerModel = field(default_factory=StragglerModel)

    @property
    def n_edges(self) -> int:
        return len(self.edges)

    @property
    def workers_per_edge(self) -> tuple[int, ...]:
        return tuple(len(w) for w in self.workers)

    @property
    def n_workers(self) -> int:
        return sum(self.workers_per_edge)


def with_message_overhead(system: SystemModel, overhead_s: float) -> SystemModel:
    """``system`` with ``overhead_s`` seconds added to the latency of every link, i.e. to
    every message hop of an iteration (master->edge, edge->worker, worker->edge, edge->master:
    four hops on every critical path, hierarchical or flat).

    The pure model has no cost per message; a real run has one (encode, zmq, decode, the
    event loop, the emulated link's millisecond timer, OS scheduling of ~20 processes). The
    testbed measures it on a deterministic twin of the scenario (``hgc.testbed.overhead``)
    and reports predictions with and without it; it is never fitted to the ratio it explains.

    Parameters
    ----------
    system : SystemModel
    overhead_s : float
        Seconds per message hop, >= 0 (0 returns ``system`` itself).

    Notes
    -----
    Added to the latency before the jitter clip ``max(0, latency + U(-j, j))``, so a link
    whose jitter exceeds its latency gains slightly less than ``overhead_s`` on average.
    """
    if not (math.isfinite(overhead_s) and overhead_s >= 0):
        raise ValueError(f"message overhead_s must be a finite number >= 0, got {overhead_s}")
    if overhead_s == 0:
        return system

    def slower(link: Link) -> Link:
        return replace(link, latency_s=link.latency_s + overhead_s)

    workers = tuple(tuple(replace(w, link=slower(w.link)) for w in ws) for ws in system.workers)
    edges = tuple(replace(e, uplink=slower(e.uplink)) for e in system.edges)
    return replace(system, workers=workers, edges=edges)
