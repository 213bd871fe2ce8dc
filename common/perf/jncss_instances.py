"""Seeded small random JNCSS instances: the randomised regression suite of the optimiser
(tests/unit/perf/test_jncss_random.py) and its benchmark (bench/bench_jncss.py).

Each instance mixes device profiles (the built-in laptop / Pi 4 / Pi 3 numbers of
``common.scenario.profiles``, repeated here because the maths layer does not import the
scenario layer, and random ones), worker links (LAN-like, jittery Wi-Fi-like), edge uplinks
(LAN-like or a slow cellular-like one: 1-2 Mbit/s, 50-150 ms, lossy), unequal workers per
edge, and every straggler model the simulator supports (shifted-exponential, markov, and a
replayed trace, which the optimiser searches through its shifted-exponential fit).
Instances stay small (at most 5 workers) so that the exhaustive search is cheap.
"""

from __future__ import annotations

import numpy as np

from common.perf.fit import optimisation_model
from common.perf.system import EdgeProfile, Link, StragglerModel, SystemModel, WorkerProfile

# (shift_s, rate): common.scenario.profiles.BUILTIN_DEVICES laptop, rpi4, rpi3
BUILTIN = ((0.1, 10.0), (0.3, 10.0 / 3.0), (0.6, 10.0 / 6.0))
STRAGGLER_KINDS = ("shifted-exponential", "markov", "trace")


def _worker(rng: np.random.Generator) -> WorkerProfile:
    if rng.random() < 0.6:
        shift, rate = BUILTIN[int(rng.integers(len(BUILTIN)))]
    else:
        shift, rate = float(rng.uniform(0.05, 1.0)), float(rng.uniform(0.5, 20.0))
    if rng.random() < 0.15:  # Wi-Fi-like: jitter
        link = Link(0.002, 0.001, float(rng.uniform(1e6, 3e6)))
    else:
        link = Link(float(rng.uniform(0.0, 0.005)), 0.0, float(rng.uniform(2e6, 2e7)))
    return WorkerProfile(shift, rate, link)


def _edge(rng: np.random.Generator) -> EdgeProfile:
    if rng.random() < 0.3:  # a slow, lossy cellular-like uplink
        up = Link(float(rng.uniform(0.05, 0.15)), 0.0, float(rng.uniform(1e6, 2e6)) / 8, 0.01)
    else:
        up = Link(float(rng.uniform(0.0, 0.002)), 0.0, float(rng.uniform(1e7, 1e8)) / 8)
    return EdgeProfile(uplink=up, combine_s_per_byte=2e-9)


def _straggler(rng: np.random.Generator, kind: str, n_workers: int) -> StragglerModel:
    if kind == "markov":
        return StragglerModel(
            "markov",
            p_slow=float(rng.uniform(0.02, 0.2)),
            p_recover=float(rng.uniform(0.2, 0.8)),
            slowdown=float(rng.uniform(2.0, 6.0)),
        )
    if kind == "trace":
        trace = rng.uniform(0.05, 0.3, size=(40, n_workers)) * rng.uniform(1, 4, size=n_workers)
        return StragglerModel("trace", trace=trace, trace_load=0.5)
    return StragglerModel()


def random_instance(seed: int) -> SystemModel:
    """Instance ``seed`` as the simulator would see it (a trace kept as a trace)."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 4))
    m = [int(x) for x in rng.integers(1, 4, size=n)]
    while sum(m) > 5:
        m[int(np.argmax(m))] -= 1
    if max(m) < 2:
        m[0] = 2
    workers = tuple(tuple(_worker(rng) for _ in range(k)) for k in m)
    edges = tuple(_edge(rng) for _ in range(n))
    kind = STRAGGLER_KINDS[seed % len(STRAGGLER_KINDS)]
    b = int(rng.choice([5_200, 40_000, 200_000]))
    return SystemModel(workers, edges, b, _straggler(rng, kind, sum(m)))


def random_search_instance(seed: int) -> SystemModel:
    """Instance ``seed`` as the optimiser searches it (``optimisation_model``)."""
    return optimisation_model(random_instance(seed))


def random_large_instance(seed: int) -> SystemModel:
    """A larger seeded instance (6-24 edges of 7-40 workers, device profiles and links as in
    :func:`random_instance`, shifted-exponential or markov stragglers): too large for the
    exhaustive search, for comparing optimiser versions and settings."""
    rng = np.random.default_rng(10_000 + seed)
    n = int(rng.integers(6, 25))
    m = [int(x) for x in rng.integers(7, 41, size=n)]
    workers = tuple(tuple(_worker(rng) for _ in range(k)) for k in m)
    edges = tuple(_edge(rng) for _ in range(n))
    kind = STRAGGLER_KINDS[seed % 2]
    b = int(rng.choice([5_200, 40_000, 200_000]))
    return SystemModel(workers, edges, b, _straggler(rng, kind, sum(m)))
