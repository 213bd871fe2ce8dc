"""The model's prediction for the very compute draws a run makes (common random numbers).

A run's compute times are seeded (``common.runtime.emulation.ComputeEmulator``): iteration t
of worker w always takes the same time, in every run and every scheme. So a 30-iteration run
measures one fixed sample, whose mean can sit several per cent from the model's expectation
in every repetition. ``paired_prediction`` evaluates the runtime model (spec §5) on exactly
those draws -- same plan, loads, seeds and worker indices as the cluster gets from
``emulation_spec`` -- with each link at its mean transfer time (its jitter and loss draws
depend on message order and are not replayed). Measured / paired separates the system's
fidelity from the luck of the sample.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from common.perf import Plan
from common.perf.system import Link, StragglerModel, WorkerProfile, with_message_overhead
from common.runtime.emulation import ComputeEmulator
from common.scenario import Scenario
from hgc.testbed.config import emulation_spec


def _draws(entry: dict, iterations: int) -> np.ndarray:
    """Compute seconds of one worker in iterations 0..iterations-1, as its emulator draws."""
    s = dict(entry["straggler"])
    if s.get("trace") is not None:
        s["trace"] = np.asarray(s["trace"], dtype=np.float64)
    em = ComputeEmulator(
        WorkerProfile(float(entry["shift_s"]), float(entry["rate"])),
        StragglerModel(**s),
        float(entry["load"]),
        int(entry["worker_index"]),
        int(entry["seed"]),
    )
    return np.array([em.target_s(t) for t in range(iterations)])


def paired_prediction(
    scenario: Scenario, plan: Plan, iterations: int, message_overhead_s: float = 0.0
) -> float | None:
    """Mean iteration time (seconds) the model gives for iterations ``0..iterations-1`` of
    ``plan`` (the one the cluster ran) with the emulation's own compute draws and mean link
    delays, plus the scenario's ``emulation.message_overhead_s`` (``system_model``) and
    ``message_overhead_s`` per hop. Flat schemes replay the model's relay queue: each edge
    forwards its workers' messages in arrival order over its uplink, one ``b / bandwidth``
    occupancy each, then the uplink's latency; the master waits for ``n - s`` messages.
    (``None`` is kept in the signature for a plan the model cannot pair; none today.)"""
    if iterations < 1:
        raise ValueError(f"iterations must be >= 1, got {iterations}")
    system = with_message_overhead(scenario.system_model(), message_overhead_s)
    spec = emulation_spec(scenario, plan, "full")
    b = system.gradient_bytes
    finish = []
    for p, (e, ws) in enumerate(zip(plan.edges, plan.workers, strict=True)):
        edge = system.edges[e]
        down = up = edge.uplink.mean_transfer_s(b)
        arrivals = np.array(
            [
                down + 2 * system.workers[e][j].link.mean_transfer_s(b)
                + _draws(spec[f"worker-{p}-{q}"], iterations)
                for q, j in enumerate(ws)
            ]
        )  # fmt: skip
        if plan.is_flat:
            finish.append(_relay(arrivals, edge.uplink, b))
            continue
        needed = plan.workers_needed(p)
        combine = edge.combine_s_per_byte * b * needed
        finish.append(np.sort(arrivals, axis=0)[needed - 1] + combine + up)
    if plan.is_flat:
        messages = np.sort(np.concatenate(finish, axis=0), axis=0)
        return float(messages[plan.n_workers - plan.s - 1].mean())
    edges = np.sort(np.array(finish), axis=0)
    return float(edges[plan.edges_needed - 1].mean())


def _relay(arrivals: np.ndarray, uplink: Link, b: float) -> np.ndarray:
    """Arrival at the master of each relayed message, shape ``(workers, iterations)``: the
    FIFO queue of the edge's uplink (as ``common.perf.montecarlo``), mean latency after it."""
    occupancy = b / uplink.bandwidth_bytes_per_s
    latency = dataclasses.replace(uplink, bandwidth_bytes_per_s=math.inf).mean_transfer_s(0.0)
    queue = np.sort(arrivals, axis=0)
    out = np.empty_like(queue)
    prev = np.zeros(queue.shape[1])
    for k in range(queue.shape[0]):
        prev = np.maximum(queue[k], prev) + occupancy
        out[k] = prev
    return out + latency
