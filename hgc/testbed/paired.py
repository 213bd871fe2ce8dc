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
from collections.abc import Callable

import numpy as np

from common.perf import Plan
from common.perf.montecarlo import sample_link
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
    scenario: Scenario,
    plan: Plan,
    iterations: int,
    message_overhead_s: float = 0.0,
    link_samples: int = 0,
    seed: int = 0,
    carry_over: bool = True,
) -> float | None:
    """Mean iteration time (seconds) the model gives for iterations ``0..iterations-1`` of
    ``plan`` (the one the cluster ran) with the emulation's own compute draws, plus the
    scenario's ``emulation.message_overhead_s`` (``system_model``) and ``message_overhead_s``
    per hop.

    Links: ``link_samples = 0`` puts every link at its mean transfer time; ``R > 0`` draws
    each link's jitter and loss ``R`` times per iteration (as the Monte Carlo model does;
    the run's own link draws depend on message order and are not replayed) and averages --
    the right choice where the iteration waits for the slowest of several jittery links
    (the mean of a maximum exceeds the maximum of the means).

    Flat schemes replay the model's relay queue: each edge forwards its workers' messages in
    arrival order over its uplink, one ``b / bandwidth`` occupancy each, then the uplink's
    latency; the master waits for ``n - s`` messages. (``None`` is kept in the signature for
    a plan the model cannot pair; none today.)"""
    if iterations < 1:
        raise ValueError(f"iterations must be >= 1, got {iterations}")
    if link_samples < 0:
        raise ValueError(f"link_samples must be >= 0, got {link_samples}")
    system = with_message_overhead(scenario.system_model(), message_overhead_s)
    spec = emulation_spec(scenario, plan, "full")
    b = float(system.gradient_bytes)
    rng = np.random.default_rng(seed)
    r = max(1, link_samples)

    def link_time(link: Link, nbytes: float, shape: tuple[int, ...]) -> np.ndarray:
        if link_samples == 0:
            return np.full(shape, link.mean_transfer_s(nbytes))
        return np.broadcast_to(sample_link(link, nbytes, shape, rng), shape)

    # link and compute draws of every iteration, shaped (samples, iterations)
    down, up, trips = [], [], []
    for p, (e, ws) in enumerate(zip(plan.edges, plan.workers, strict=True)):
        down.append(link_time(system.edges[e].uplink, b, (r, iterations)))
        up.append(link_time(system.edges[e].uplink, b, (r, iterations)))
        trips.append(
            [
                (
                    link_time(system.workers[e][j].link, b, (r, iterations)),
                    _draws(spec[f"worker-{p}-{q}"], iterations),
                    link_time(system.workers[e][j].link, b, (r, iterations)),
                )
                for q, j in enumerate(ws)
            ]
        )
    # per worker: when its compute thread is free, and the compute it started last
    n_workers = sum(len(ws) for ws in plan.workers)
    free_at = np.full((r, n_workers), -np.inf)
    last_start = np.full((r, n_workers), -np.inf)
    last_compute = np.zeros((r, n_workers))
    start = np.zeros(r)  # absolute time the master sends iteration t
    total = 0.0
    for t in range(iterations):
        finish = []
        k = 0
        for p, e in enumerate(plan.edges):
            edge = system.edges[e]
            at_edge = start + down[p][:, t]
            answers = []
            for to_worker, compute, to_edge in trips[p]:
                model_at = at_edge + to_worker[:, t]
                if carry_over:
                    # the last compute began before this model came: it runs to its end
                    began = last_start[:, k] <= model_at
                    ended = last_start[:, k] + last_compute[:, k]
                    free_at[:, k] = np.where(began, ended, free_at[:, k])
                    begins = np.maximum(model_at, free_at[:, k])
                    last_start[:, k], last_compute[:, k] = begins, compute[t]
                else:
                    begins = model_at
                answers.append(begins + compute[t] + to_edge[:, t])
                k += 1
            arrivals = np.stack(answers, axis=1)[:, :, None]  # (samples, workers, 1)
            if plan.is_flat:
                finish.append(_relay(arrivals, edge.uplink, b, link_time)[:, :, 0])
                continue
            needed = plan.workers_needed(p)
            combine = edge.combine_s_per_byte * b * needed
            needed_in = np.sort(arrivals[:, :, 0], axis=1)[:, needed - 1]
            finish.append(needed_in + combine + up[p][:, t])
        if plan.is_flat:
            messages = np.sort(np.concatenate(finish, axis=1), axis=1)
            end = messages[:, plan.n_workers - plan.s - 1]
        else:
            end = np.sort(np.stack(finish, axis=1), axis=1)[:, plan.edges_needed - 1]
        total += float((end - start).mean())
        start = end
    return total / iterations


def _relay(
    arrivals: np.ndarray,
    uplink: Link,
    b: float,
    link_time: Callable[[Link, float, tuple[int, ...]], np.ndarray],
) -> np.ndarray:
    """Arrival at the master of each relayed message, shape ``(samples, workers,
    iterations)``: the FIFO queue of the edge's uplink (as ``common.perf.montecarlo``),
    then the uplink's latency, jitter and loss."""
    occupancy = b / uplink.bandwidth_bytes_per_s
    relay = dataclasses.replace(uplink, bandwidth_bytes_per_s=math.inf)
    queue = np.sort(arrivals, axis=1)
    out = np.empty_like(queue)
    prev = np.zeros((queue.shape[0], queue.shape[2]))
    for k in range(queue.shape[1]):
        prev = np.maximum(queue[:, k], prev) + occupancy
        out[:, k] = prev
    return out + link_time(relay, 0.0, out.shape)
