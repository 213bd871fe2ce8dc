"""The randomised JNCSS regression suite: 500 seeded small instances
(``common.perf.jncss_instances``: built-in and random device profiles, jittery links, slow
cellular uplinks, unequal workers per edge, shifted-exponential / markov / trace stragglers),
each compared with the exhaustive search on the exact expected time. Any gap above 1 % fails
and prints the instance; add the seed to ``KEPT`` so it stays a fixture."""

from __future__ import annotations

import os

import pytest

from common.perf import exhaustive_jncss, greedy_jncss
from common.perf.jncss_instances import random_instance, random_search_instance

GAP = 0.01
# all 500 take about 48 s of CPU (0.05 s optimiser + 0.04 s exhaustive per instance, measured
# with time.process_time); ``HGC_JNCSS_SUITE=N`` runs another number
SEEDS = range(int(os.environ.get("HGC_JNCSS_SUITE", "500")))
KEPT: list[int] = []  # seeds that once failed (none so far)
BLOCKS = 10


def _gap(seed: int, hetero: bool = False) -> tuple[float, str]:
    sys_ = random_search_instance(seed)
    g = greedy_jncss(sys_, hetero=hetero)
    e = exhaustive_jncss(sys_, hetero=hetero)
    info = (
        f"seed {seed}: {random_instance(seed)}\n  optimiser {g.best.plan.describe()} "
        f"{g.best.mean_s:.6f} s\n  exhaustive {e.best.plan.describe()} {e.best.mean_s:.6f} s"
    )
    return g.best.mean_s / e.best.mean_s - 1, info


@pytest.mark.parametrize("block", range(BLOCKS))
def test_optimiser_within_one_percent_of_exhaustive(block):
    seeds = [s for s in SEEDS if s % BLOCKS == block] + [s for s in KEPT if s % BLOCKS == block]
    failures = []
    for seed in seeds:
        gap, info = _gap(seed)
        if gap > GAP:
            failures.append(f"gap {100 * gap:.2f} % on {info}")
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("seed", range(0, 40, 5))
def test_hetero_optimiser_within_one_percent_of_exhaustive(seed):
    gap, info = _gap(seed, hetero=True)
    assert gap <= GAP, info
