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
``bench_fidelity`` reports the ratios with and without it side by side.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from common.perf.system import Link, StragglerModel
from common.scenario import Scenario

HOPS_PER_ITERATION = 4
CALIBRATION_SCHEME = "uncoded"  # waits for every node: the longest, steadiest iteration


def _steady(link: Link) -> Link:
    return dataclasses.replace(link, jitter_s=0.0, loss=0.0)


def deterministic_twin(scenario: Scenario) -> Scenario:
    """``scenario`` with every random part removed: worker rates infinite (compute time is
    exactly ``shift_s * load``), links without jitter or loss, straggler model
    shifted-exponential (no markov slow state, no trace), no faults."""
    topo = scenario.topology
    workers = tuple(
        tuple(dataclasses.replace(w, rate=math.inf, link=_steady(w.link)) for w in ws)
        for ws in topo.workers
    )
    edges = tuple(dataclasses.replace(e, uplink=_steady(e.uplink)) for e in topo.edges)
    return dataclasses.replace(
        scenario,
        name=f"{scenario.name}-deterministic",
        topology=dataclasses.replace(topo, workers=workers, edges=edges),
        straggler=StragglerModel(),
        faults=(),
        schemes=(CALIBRATION_SCHEME,),
    )


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
) -> Overhead:
    """Run the deterministic twin of ``scenario`` (``CALIBRATION_SCHEME`` only) with
    ``hgc run``'s launcher and compare it with its exact prediction.

    Raises ``RuntimeError`` when the twin's run fails or the model cannot evaluate it."""
    from hgc.testbed.launcher import RunRequest, run_testbed

    if iterations < 1:
        raise ValueError(f"iterations must be >= 1, got {iterations}")
    twin = deterministic_twin(scenario)
    request = RunRequest(scenario_path, twin, twin.schemes, iterations, out=out, stream=stream)
    outcome = run_testbed(request)
    if not outcome.ok or CALIBRATION_SCHEME not in outcome.results:
        raise RuntimeError(f"overhead calibration run failed: {outcome.failures}")
    result = outcome.results[CALIBRATION_SCHEME]  # the prediction is for the plan it ran
    predicted = result.predicted_mean_s
    if predicted is None:
        raise RuntimeError(f"overhead calibration: no prediction for the twin: {result.plan}")
    stats = result.stats
    return Overhead(stats.mean_s, predicted, stats.iterations)
