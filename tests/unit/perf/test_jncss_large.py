"""The large-system JNCSS search (``greedy_jncss`` above 64 tolerance pairs): its pieces
against direct computations, and its choices on the benchmark clusters against the values
the previous optimiser (commit 5c98ceb) chose."""

from __future__ import annotations

import numpy as np
import pytest

from bench.bench_jncss import cluster
from common.perf import expected_time, greedy_jncss
from common.perf import jncss as J
from common.perf import jncss_search as S
from common.perf.batch import prob_at_most_misses
from common.perf.jncss_instances import random_large_instance

# exact E[T] (s) of the plans the optimiser of 5c98ceb chose (bench_jncss "before", measured
# with that commit's code; docs/simulator.md)
BEFORE = {(20, 50, False): 0.015791, (32, 32, False): 0.017152, (20, 50, True): 0.013786,
          (32, 32, True): 0.013538}  # fmt: skip


@pytest.mark.parametrize("s", [0, 1, 2, 3])
def test_leave_one_out_tails_match_a_direct_count(s):
    rng = np.random.default_rng(s)
    rows = rng.random((7, 13))
    at_most, fewer = S._leave_one_out(rows, s)
    for e in range(7):
        others = np.delete(rows, e, axis=0)[None]
        assert np.allclose(at_most[e], prob_at_most_misses(others, s)[0])
        want = prob_at_most_misses(others, s - 1)[0] if s else np.zeros(13)
        assert np.allclose(fewer[e], want)


@pytest.mark.parametrize("s_w", [0, 2])
def test_shared_prefix_tables_match_per_edge_tables(s_w, monkeypatch):
    """Prefix rows from the multiset forest + precomputed offset map equal the rows of the
    per-edge path (mask, Poisson-binomial, delay) on the same options."""
    sys_ = cluster(5, 11, seed=3)
    arrays = S.SystemArrays.of(sys_)
    rank = J._rank(J._worker_keys(sys_, 0.02))
    options = S.edge_options(sys_.workers_per_edge, rank, s_w)
    t0 = arrays.start(0.02)
    t = np.linspace(t0, t0 + 0.08, 96)
    shared = S.EdgeTable(arrays, options, s_w, 0.02, t)
    monkeypatch.setattr(S, "SUBSET_MAX", 100)  # every edge through the per-edge path
    direct = S.EdgeTable(arrays, options, s_w, 0.02, t, S.prefix_plan(arrays, options, s_w))
    for a, b in zip(shared.rows, direct.rows, strict=True):
        assert np.allclose(a, b, atol=1e-12)


def test_descent_move_values_agree_with_whole_selection_values():
    """One edge's change scored through the leave-one-out tails equals the changed
    selection scored whole (the descent compares the two)."""
    sys_ = cluster(6, 10, seed=1)
    arrays = S.SystemArrays.of(sys_)
    keys = J._worker_keys(sys_, 2 / sys_.n_workers)
    rank = J._rank(keys)
    options = S.edge_options(sys_.workers_per_edge, rank, 1)
    lat = S.Lattice(arrays, options, 1, 0.03, 96)
    st = S._Stack(lat.ladder(1), options, 1)
    state = np.array([len(o) - 1 for o in options])
    moves = st.moves(state)
    rng = np.random.default_rng(0)
    for _ in range(12):
        e = int(rng.integers(len(options)))
        o = int(rng.integers(len(options[e])))
        if not np.isfinite(moves[e, o]):
            continue
        x = state.copy()
        x[e] = o
        assert moves[e, o] == pytest.approx(float(st.values(x[None])[0]), rel=1e-9)


@pytest.mark.parametrize("n, m", [(20, 50), (32, 32)])
@pytest.mark.parametrize("hetero", [False, True])
def test_bench_clusters_beat_the_previous_choice(n, m, hetero):
    """Every edge's slow device class has to go at once (threshold starts), and the cellular
    edge too: the choice is at least 5 % faster than 5c98ceb's."""
    sys_ = cluster(n, m)
    res = greedy_jncss(sys_, hetero=hetero)
    exact = expected_time(sys_, res.best.plan)
    assert exact == pytest.approx(res.best.mean_s, rel=1e-3)
    assert exact <= BEFORE[(n, m, hetero)] * 0.95


def test_large_random_instance_returns_a_feasible_plan_scored_exactly():
    sys_ = random_large_instance(0)
    res = greedy_jncss(sys_)
    assert res.method == "greedy"
    assert res.best.mean_s == pytest.approx(expected_time(sys_, res.best.plan, grid=1024), 1e-3)
    assert res.by_pair and min(c.mean_s for c in res.by_pair) >= res.best.mean_s * (1 - 0.02)
