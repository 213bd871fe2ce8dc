"""JNCSS hetero: the subset polish (any worker may be dropped or added, not only the
fastest-first prefixes) closes the greedy-vs-exhaustive gap (issue 3)."""

from __future__ import annotations

import numpy as np
import pytest

import common.perf.jncss as jncss
from common.perf import exhaustive_jncss, greedy_jncss
from common.perf.random_systems import random_small_system
from common.perf.system import SystemModel
from tests.unit.perf.helpers import system

# (seed, draw): instances where the prefix-only hetero search missed the optimum:
# - (2024, 11): the bench's 12th instance, 2.0 % gap; the best subset drops a middle worker;
# - (99, 26): the best plan re-admits an edge with a middle worker alone, 1.0 % gap;
# - (5, 36): two middle workers must go together (neither alone helps), 0.9 % gap.
REGRESSIONS = [(2024, 11), (99, 26), (5, 36)]


def nth_small_system(seed: int, draw: int) -> SystemModel:
    rng = np.random.default_rng(seed)
    for _ in range(draw):
        random_small_system(rng)
    return random_small_system(rng)


def hetero_gap(sys_: SystemModel, polish: bool = True) -> float:
    g = greedy_jncss(sys_, hetero=True, polish=polish)
    e = exhaustive_jncss(sys_, hetero=True)
    return g.best.mean_s / e.best.mean_s - 1


@pytest.mark.parametrize(("seed", "draw"), REGRESSIONS)
def test_hetero_greedy_matches_exhaustive_where_prefixes_did_not(seed, draw):
    assert hetero_gap(nth_small_system(seed, draw)) <= 1e-3


@pytest.mark.parametrize(("seed", "draw"), REGRESSIONS[:2])
def test_without_the_polish_the_gap_is_back_negative_control(seed, draw):
    # polish=False: the frontier search's candidates re-scored with hetero loads, no subset
    # moves under hetero loads. (5, 36) is solved without the polish since the frontier
    # search (issue 15) offers every subset of small edges.
    assert hetero_gap(nth_small_system(seed, draw), polish=False) > 0.005


def test_the_polished_plan_is_not_a_fastest_first_prefix():
    sys_ = nth_small_system(2024, 11)
    plan = greedy_jncss(sys_, hetero=True).best.plan
    rank = jncss._rank(jncss._worker_keys(sys_, (plan.s_e + 1) * (plan.s_w + 1) / sys_.n_workers))
    prefixes = [
        set(rank[e][: len(ws)]) == set(ws) for e, ws in zip(plan.edges, plan.workers, strict=True)
    ]
    assert not all(prefixes)


def _scorer(sys_: SystemModel) -> jncss._Scorer:
    rank = jncss._rank(jncss._worker_keys(sys_, 0.25))
    return jncss._Scorer(sys_, rank, hetero=True, grid=192)


def test_subset_means_equal_prefix_means_on_prefixes():
    sys_ = system((3, 4, 2), hetero=True, rate=0.5)
    sc = _scorer(sys_)
    counts: list[tuple[int, ...]] = [(3, 4, 2), (2, 0, 2), (1, 3, 0)]
    subsets = [tuple(tuple(range(k)) for k in c) for c in counts]
    np.testing.assert_allclose(jncss._subset_means(sc, subsets, 0, 0), sc(counts, 0, 0), rtol=1e-6)


def test_subset_means_of_a_gap_subset_equal_a_reordered_prefix():
    # the mask evaluation of {rank positions 0, 2} must equal the prefix evaluation of a
    # ranking that lists those two workers first
    sys_ = system((3, 3), hetero=True, rate=0.5)
    sc = _scorer(sys_)
    sub = ((0, 2), (0, 1, 2))
    masked = jncss._subset_means(sc, [sub], 0, 0)
    r0 = sc.rank[0]
    rank = [[r0[0], r0[2], r0[1]], sc.rank[1]]
    ref = jncss._Scorer(sys_, rank, hetero=True, grid=192)
    np.testing.assert_allclose(masked, ref([(2, 3)], 0, 0), rtol=1e-6)
    # negative control: the prefix {0, 1} is a different selection with a different value
    assert not np.isclose(masked[0], sc([(2, 3)], 0, 0)[0], rtol=1e-6)


def test_subset_moves_cover_middle_workers_and_respect_the_budget():
    moves = jncss._subset_moves(((0, 1, 2), ()), [3, 3], 0, [0], [1])
    assert ((0, 2), ()) in moves  # drop a middle worker
    assert ((0, 1, 2), (1,)) in moves  # re-admit an edge with a middle worker alone
    assert ((), ()) in moves  # drop the edge (infeasible ones are filtered by the caller)
    big = jncss._subset_moves((tuple(range(40)), tuple(range(40))), [64, 64], 0, [0, 1], [])
    assert len(big) == jncss.POLISH_BUDGET


def test_combine_best_joins_moves_on_different_edges_only():
    sub = ((0, 1, 2), (0, 1, 2))
    nbs: list[jncss.Subset] = [((0, 2), (0, 1, 2)), ((0, 1, 2), (0, 2)), ((0, 1), (0, 1, 2))]
    out = jncss._combine_best(sub, nbs, np.array([1.0, 2.0, 3.0]))
    assert sorted(out) == sorted([((0, 2), (0, 2)), ((0, 1), (0, 2))])


def test_equal_load_search_is_untouched_by_the_polish():
    sys_ = nth_small_system(2024, 11)
    assert greedy_jncss(sys_).best.mean_s == greedy_jncss(sys_, polish=False).best.mean_s
