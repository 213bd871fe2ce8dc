"""The emulation draws independently per worker and per link direction, as the runtime model
(``common.perf``) assumes. Regression tests: every worker used to get the same exponential
draw in an iteration (one run seed, no worker key), and every in-process link emulator was
seeded 0, so an edge's download and upload lost the same messages."""

from __future__ import annotations

import numpy as np

from common.perf.system import Link, StragglerModel, WorkerProfile
from common.runtime.emulation import ComputeEmulator, LinkEmulator, link_seed

ITERATIONS = 2000


def draws(worker_index: int, straggler: StragglerModel, seed: int = 7) -> np.ndarray:
    profile = WorkerProfile(shift_s=0.1, rate=10.0)
    em = ComputeEmulator(profile, straggler, 0.25, worker_index=worker_index, seed=seed)
    return np.array([em.target_s(t) for t in range(ITERATIONS)])


def test_workers_sharing_the_run_seed_straggle_independently() -> None:
    a, b = draws(0, StragglerModel()), draws(1, StragglerModel())
    # independent draws: |corr| ~ 1/sqrt(2000) = 0.02; the old shared draw gave exactly 1
    assert abs(np.corrcoef(a, b)[0, 1]) < 0.1
    # negative control: the same worker index reproduces its own draws
    assert np.array_equal(a, draws(0, StragglerModel()))


def test_the_slowest_of_several_workers_matches_independent_order_statistics() -> None:
    """E[max of 4 iid Exp(mean s)] = s (1 + 1/2 + 1/3 + 1/4); perfectly correlated draws
    would give s. This is what the model's order statistics assume."""
    times = np.stack([draws(j, StragglerModel()) for j in range(4)])
    scale = 0.25 / 10.0
    excess = times.max(axis=0) - 0.1 * 0.25
    assert abs(excess.mean() / (scale * (1 + 1 / 2 + 1 / 3 + 1 / 4)) - 1) < 0.1


def test_markov_slow_states_are_independent_across_workers() -> None:
    model = StragglerModel(kind="markov", p_slow=0.3, p_recover=0.3, slowdown=5.0)
    slow = [draws(j, model) > 0.1 * 0.25 * 3 for j in range(2)]
    both = np.mean(slow[0] & slow[1])
    # stationary slow probability 0.5 each: independent -> 0.25 together, shared -> 0.5
    assert abs(both - np.mean(slow[0]) * np.mean(slow[1])) < 0.08


def test_link_seeds_differ_per_direction_and_link_and_are_stable() -> None:
    seeds = {
        link_seed("master", "edge-3"),
        link_seed("edge-3", "master"),
        link_seed("master", "edge-2"),
        link_seed("edge-3", "worker-3-0"),
        link_seed("worker-3-0", "edge-3"),
    }
    assert len(seeds) == 5
    assert link_seed("master", "edge-3") == link_seed("master", "edge-3")  # no hash() salt
    assert link_seed("master", "edge-3", seed=1) != link_seed("master", "edge-3")


def lost(seed: int, n: int = 4000) -> np.ndarray:
    em = LinkEmulator(Link(loss=0.2, retransmit_s=1.0), seed=seed)
    return np.array([em.schedule(0, now=10.0 * k) - 10.0 * k > 0.5 for k in range(n)])


def test_the_two_directions_of_a_link_lose_independently() -> None:
    down, up = lost(link_seed("master", "edge-3")), lost(link_seed("edge-3", "master"))
    # independent: both lost ~ 0.2 * 0.2 = 0.04 of messages; one shared seed: 0.2
    assert abs(np.mean(down & up) - 0.04) < 0.02
    assert np.array_equal(lost(0), lost(0))  # negative control: one seed, same losses
