"""SystemModels built directly (no scenario files) for the perf tests."""

from __future__ import annotations

import math

from common.perf.system import EdgeProfile, Link, StragglerModel, SystemModel, WorkerProfile


def system(
    workers_per_edge: tuple[int, ...] = (4, 4, 4),
    *,
    rate: float = 1.0,
    shift: float = 1.0,
    hetero: bool = False,
    link: Link | None = None,
    uplink: Link | None = None,
    slow_edge: int | None = None,
    straggler: StragglerModel | None = None,
    gradient_bytes: int = 40_000,
) -> SystemModel:
    """A small cluster; ``hetero`` makes every third worker 3x slower; ``slow_edge`` gets a
    10x slower uplink."""
    wl = link if link is not None else Link(latency_s=0.001, bandwidth_bytes_per_s=1e7)
    ul = uplink if uplink is not None else Link(latency_s=0.004, bandwidth_bytes_per_s=1e8)
    workers = tuple(
        tuple(
            WorkerProfile(
                shift_s=shift * (3.0 if hetero and j % 3 == 2 else 1.0),
                rate=rate / (3.0 if hetero and j % 3 == 2 else 1.0),
                link=wl,
            )
            for j in range(m)
        )
        for m in workers_per_edge
    )
    edges = tuple(
        EdgeProfile(
            uplink=Link(
                ul.latency_s,
                ul.jitter_s,
                ul.bandwidth_bytes_per_s / (10.0 if i == slow_edge else 1.0),
                ul.loss,
            ),
            combine_s_per_byte=1e-9,
        )
        for i in range(len(workers_per_edge))
    )
    return SystemModel(workers, edges, gradient_bytes, straggler or StragglerModel())


NO_STRAGGLERS = math.inf
