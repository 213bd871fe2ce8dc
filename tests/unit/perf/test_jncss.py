"""JNCSS: the greedy search against exhaustive enumeration on small instances."""

from __future__ import annotations

import numpy as np
import pytest

from common.coding import is_feasible as is_hgc_feasible
from common.perf import exhaustive_jncss, greedy_jncss
from common.perf.jncss import evaluate
from common.perf.random_systems import random_small_topology, random_system
from tests.unit.perf.helpers import system

GAP = 0.01  # allowed relative gap: grid discretisation of the two searches differs slightly


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("hetero", [False, True])
def test_greedy_matches_exhaustive_on_small_instances(seed, hetero):
    rng = np.random.default_rng(seed)
    m = random_small_topology(rng)
    sys_ = random_system(rng, m)
    g = greedy_jncss(sys_, hetero=hetero)
    e = exhaustive_jncss(sys_, hetero=hetero)
    assert e.best.mean_s <= g.best.mean_s * (1 + GAP)
    assert g.best.mean_s <= e.best.mean_s * (1 + GAP), (
        g.best.plan.describe(),
        e.best.plan.describe(),
    )
    assert g.evaluations < e.evaluations


def test_exhaustive_is_a_real_lower_bound_negative_control():
    # a deliberately bad plan (everything, uncoded) is never better than exhaustive's choice
    sys_ = system((2, 3), hetero=True, rate=0.3, slow_edge=1, gradient_bytes=2_000_000)
    e = exhaustive_jncss(sys_)
    from common.perf import make_plan

    bad = make_plan("uncoded", (0, 1), ((0, 1), (0, 1, 2)))
    assert e.best.mean_s < evaluate(sys_, bad)


def test_jncss_drops_a_very_slow_edge_and_stays_feasible():
    sys_ = system((4, 4, 4, 4), slow_edge=2, gradient_bytes=4_000_000, rate=2.0)
    best = greedy_jncss(sys_).best.plan
    assert 2 not in best.edges
    assert is_hgc_feasible(best.workers_per_edge, best.s_e, best.s_w)


def test_exhaustive_refuses_large_instances():
    with pytest.raises(ValueError, match="use greedy_jncss"):
        exhaustive_jncss(system((8, 8, 8)))


def test_alternatives_are_sorted_and_distinct_tolerances():
    res = greedy_jncss(system((3, 3, 3), rate=0.2))
    values = [res.best.mean_s] + [c.mean_s for c in res.alternatives]
    assert values == sorted(values)
    pairs = [(c.plan.s_e, c.plan.s_w) for c in (res.best, *res.alternatives)]
    assert len(pairs) == len(set(pairs))


def test_batched_scores_equal_single_scores():
    # candidates of very different sizes share a batch: each must get its own grid
    from common.perf.batch import SelectionEvaluator
    from common.perf.jncss import _rank, _worker_keys

    sys_ = system((4, 4, 4), rate=0.3)
    ev = SelectionEvaluator(sys_, _rank(_worker_keys(sys_, 0.25)), 192)
    batch: list[tuple[int, ...]] = [(4, 4, 4), (4, 0, 0), (2, 4, 0), (1, 1, 1)]
    together = ev.means(batch, 0, 0)
    alone = [float(ev.means([c], 0, 0)[0]) for c in batch]
    np.testing.assert_allclose(together, alone, rtol=1e-6)


@pytest.mark.parametrize("name", ["heterogeneous", "persistent-stragglers", "homogeneous"])
def test_jncss_is_never_worse_than_the_best_fixed_hgc(name):
    from pathlib import Path

    from common.perf import expected_time, plan_scheme
    from common.scenario import load_scenario

    root = Path(__file__).resolve().parents[3]
    sys_ = load_scenario(root / "scenarios" / f"{name}.yaml").system_model()
    fixed = expected_time(sys_, plan_scheme(sys_, "hgc"))
    assert greedy_jncss(sys_).best.mean_s <= fixed * 1.002
