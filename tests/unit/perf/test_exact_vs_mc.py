"""The exact E[T] and the Monte Carlo estimate agree within the MC confidence interval."""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np
import pytest

from common.coding import Tolerances
from common.coding import is_feasible as is_hgc_feasible
from common.perf import (
    ExactUnavailableError,
    Link,
    StragglerModel,
    SystemModel,
    expected_time,
    make_plan,
    plan_scheme,
    simulate_plan,
)
from common.perf.batch import prob_at_most_misses
from common.perf.exact import exact_distribution
from common.perf.hetero import make_hetero_plan
from common.perf.model import compile_plan
from common.perf.plan import InfeasiblePlanError
from tests.unit.perf.helpers import system

ITER = 40_000
# grid discretisation and link-quadrature error allowance, relative to the mean
MODEL_TOL = 3e-3


def assert_agree(sys_, plan, seed=1):
    exact = expected_time(sys_, plan, "exact")
    mc = simulate_plan(sys_, plan, ITER, np.random.default_rng(seed))
    allowed = 4 * mc.stderr_s + MODEL_TOL * exact
    assert abs(exact - mc.mean_s) <= allowed, (plan.describe(), exact, mc.mean_s, mc.stderr_s)
    return exact, mc


CASES: dict[str, dict[str, Any]] = {
    "homogeneous": dict(),
    "heterogeneous": dict(workers_per_edge=(3, 5, 4), hetero=True, rate=0.5),
    "slow-edge": dict(slow_edge=1, gradient_bytes=400_000),
    "jitter-loss": dict(
        link=Link(0.002, jitter_s=0.0015, bandwidth_bytes_per_s=5e6, loss=0.05),
        uplink=Link(0.01, jitter_s=0.008, bandwidth_bytes_per_s=2e7, loss=0.02),
    ),
    "markov": dict(
        straggler=StragglerModel("markov", p_slow=0.1, p_recover=0.4, slowdown=5.0), rate=4.0
    ),
    "no-stragglers": dict(rate=math.inf),
}


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("tol", [(0, 0), (1, 1), (2, 0), (0, 2)])
def test_exact_matches_monte_carlo(name, tol):
    sys_ = system(**CASES[name])
    s_e, s_w = tol
    if not is_hgc_feasible(sys_.workers_per_edge, s_e, s_w):
        with pytest.raises(InfeasiblePlanError, match="s_e=|s_w="):
            make_plan("hgc", *_all(sys_), s_e=s_e, s_w=s_w)
        return
    plan = make_plan("hgc", *_all(sys_), s_e=s_e, s_w=s_w)
    assert_agree(sys_, plan)


@pytest.mark.parametrize("name", ["homogeneous", "heterogeneous", "markov"])
def test_exact_matches_monte_carlo_hetero_and_ignore(name):
    sys_ = system(**CASES[name])
    assert_agree(sys_, make_hetero_plan(sys_, *_all(sys_), s_e=1, s_w=1))
    assert_agree(sys_, make_plan("ignore", *_all(sys_), s_e=1, s_w=1))


def test_flat_exact_with_uncontended_uplink_matches_monte_carlo():
    sys_ = system(uplink=Link(0.004, bandwidth_bytes_per_s=math.inf), rate=0.5)
    assert_agree(sys_, make_plan("flat-crc", *_all(sys_), s=2))


def test_flat_with_contended_uplink_refuses_exact():
    sys_ = system()
    plan = make_plan("flat-crc", *_all(sys_), s=2)
    with pytest.raises(ExactUnavailableError, match="queue"):
        expected_time(sys_, plan, "exact")


def test_negative_control_wrong_tolerance_is_detected():
    sys_ = system(rate=0.5)
    exact = expected_time(sys_, make_plan("hgc", *_all(sys_), s_e=1, s_w=1))
    mc = simulate_plan(
        sys_, make_plan("hgc", *_all(sys_), s_e=0, s_w=1), ITER, np.random.default_rng(1)
    )
    assert abs(exact - mc.mean_s) > 4 * mc.stderr_s + MODEL_TOL * exact


def test_poisson_binomial_tail_matches_brute_force():
    rng = np.random.default_rng(3)
    p = rng.random((2, 5, 3))
    for s in range(6):
        got = prob_at_most_misses(p, s)
        want = np.zeros((2, 3))
        for hits in itertools.product([0, 1], repeat=5):
            mask = np.array(hits, dtype=bool)
            prob = np.prod(np.where(mask[None, :, None], p, 1 - p), axis=1)
            if (5 - mask.sum()) <= s:
                want += prob
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)


def test_quantiles_match_monte_carlo():
    sys_ = system(rate=0.5)
    plan = make_plan("hgc", *_all(sys_), s_e=1, s_w=1)
    dist = exact_distribution(compile_plan(sys_, plan))
    mc = simulate_plan(sys_, plan, ITER, np.random.default_rng(2))
    for q in (0.5, 0.95, 0.99):
        assert dist.quantile(q) == pytest.approx(mc.quantile(q), rel=0.02)


def test_monte_carlo_is_reproducible_from_the_seed():
    sys_ = system(rate=0.5, straggler=StragglerModel("markov", 0.1, 0.5, 3.0))
    plan = plan_scheme(sys_, "hgc", Tolerances(1, 1))
    a = simulate_plan(sys_, plan, 500, np.random.default_rng(7)).times
    b = simulate_plan(sys_, plan, 500, np.random.default_rng(7)).times
    c = simulate_plan(sys_, plan, 500, np.random.default_rng(8)).times
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_trace_straggler_model_replays_rows():
    trace = np.tile(np.arange(1.0, 13.0), (3, 1)) * np.array([[1.0], [2.0], [3.0]])
    sys_ = system(straggler=StragglerModel("trace", trace=trace, trace_load=1 / 12))
    plan = make_plan("uncoded", *_all(sys_))
    times = simulate_plan(sys_, plan, 6, np.random.default_rng(0)).times
    assert times[0] < times[1] < times[2]
    np.testing.assert_allclose(times[:3], times[3:])
    with pytest.raises(ExactUnavailableError, match="trace"):
        expected_time(sys_, plan)


def _all(sys_: SystemModel) -> tuple[tuple[int, ...], tuple[tuple[int, ...], ...]]:
    return tuple(range(sys_.n_edges)), tuple(tuple(range(m)) for m in sys_.workers_per_edge)
