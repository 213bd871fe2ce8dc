"""Seeded random system models, shared by the JNCSS tests and the perf benchmarks."""

from __future__ import annotations

import numpy as np

from common.perf.system import EdgeProfile, Link, SystemModel, WorkerProfile


def random_system(rng: np.random.Generator, m: tuple[int, ...]) -> SystemModel:
    """A random system with ``m[i]`` workers under edge i (gradient 100,000 bytes).

    Workers: shift_s ~ U(0.2, 2) s, rate ~ U(0.3, 5) /s, link latency ~ U(0, 0.02) s and
    bandwidth ~ U(1e6, 1e8) B/s; edge uplinks: latency ~ U(0, 0.05) s, bandwidth
    ~ U(1e5, 1e8) B/s. Draws are taken from ``rng`` in that order.
    """
    workers = tuple(
        tuple(
            WorkerProfile(
                shift_s=float(rng.uniform(0.2, 2)),
                rate=float(rng.uniform(0.3, 5)),
                link=Link(float(rng.uniform(0, 0.02)), 0, float(rng.uniform(1e6, 1e8))),
            )
            for _ in range(mi)
        )
        for mi in m
    )
    edges = tuple(
        EdgeProfile(uplink=Link(float(rng.uniform(0, 0.05)), 0, float(rng.uniform(1e5, 1e8))))
        for _ in m
    )
    return SystemModel(workers, edges, 100_000)


def random_small_topology(rng: np.random.Generator) -> tuple[int, ...]:
    """2 or 3 edges of 2 or 3 workers each: small enough for exhaustive JNCSS."""
    return tuple(int(x) for x in rng.integers(2, 4, size=int(rng.integers(2, 4))))


def random_small_system(rng: np.random.Generator) -> SystemModel:
    """``random_system`` on a ``random_small_topology`` (both drawn from ``rng``)."""
    return random_system(rng, random_small_topology(rng))
