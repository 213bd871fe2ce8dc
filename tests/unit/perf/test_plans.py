"""Loads, feasibility and plans; every plan rebuilds its code with common.coding."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from common.coding import InfeasibleCodeError, Tolerances, code_from_placement, code_from_spec
from common.perf import InfeasiblePlanError, communication, make_plan, plan_scheme
from common.perf.hetero import coverage_ok, hetero_placement, make_hetero_plan, proportional_counts
from tests.unit.perf.helpers import system

EDGES = (0, 1, 2)
WORKERS = ((0, 1, 2), (0, 1, 2, 3), (0, 1, 2))


@pytest.mark.parametrize(
    ("scheme", "kw", "load"),
    [
        ("uncoded", {}, 1 / 10),
        ("hgc", {"s_e": 1, "s_w": 1}, 4 / 10),
        ("worker-gc", {"s_w": 2}, 3 / 10),
        ("edge-gc", {"s_e": 1}, 2 / 10),
        ("ignore", {"s_e": 1, "s_w": 1}, 1 / 10),
        ("flat-crc", {"s": 3}, 4 / 10),
        ("flat-frc", {"s": 4}, 5 / 10),
    ],
)
def test_equal_loads_follow_the_bound(scheme, kw, load):
    plan = make_plan(scheme, EDGES, WORKERS, **kw)
    assert all(x == pytest.approx(load) for row in plan.loads for x in row)
    code = code_from_spec(plan.code_spec)
    if code.is_flat:
        assert code.load_fraction(0, 0) == pytest.approx(load)
    else:
        assert code.load_fraction(1, 3) == pytest.approx(load)


@pytest.mark.parametrize(
    ("m", "s_e", "s_w", "match"),
    [
        ((1, 5), 1, 0, r"\(s_e\+1\)\*max\(workers_per_edge\) = 10 > sum\(workers_per_edge\) = 6"),
        ((3, 3), 2, 0, r"s_e=2 >= n_edges=2"),
        ((3, 2), 0, 2, r"s_w=2 >= min workers_per_edge=2"),
        ((3, 2), -1, 0, r"s_e: must be >= 0, got -1"),
    ],
)
def test_infeasible_tolerances_name_the_condition(m, s_e, s_w, match):
    """Plans are checked by the coding core's rule (one rule, one error type)."""
    edges = tuple(range(len(m)))
    workers = tuple(tuple(range(k)) for k in m)
    with pytest.raises(InfeasiblePlanError, match=match) as info:
        make_plan("hgc", edges, workers, s_e=s_e, s_w=s_w)
    assert isinstance(info.value, InfeasibleCodeError)
    assert info.value.field in ("s_e", "s_w")


def test_flat_frc_needs_divisibility():
    with pytest.raises(
        InfeasiblePlanError,
        match=r"flat-frc needs \(s\+1\) to divide M: s\+1=3 does not divide M=10",
    ):
        make_plan("flat-frc", EDGES, WORKERS, s=2)


def test_plan_k_is_the_coding_cores_smallest_or_the_one_asked_for():
    from common.coding import minimal_K

    for m, s_e, s_w in [((3, 3, 3), 1, 1), ((4, 3, 4, 3), 1, 1), ((2, 5, 3), 1, 0), ((6,), 0, 2)]:
        edges = tuple(range(len(m)))
        workers = tuple(tuple(range(k)) for k in m)
        K0 = minimal_K(m, s_e, s_w)
        assert make_plan("hgc", edges, workers, s_e=s_e, s_w=s_w).code_spec["K"] == K0
        plan = make_plan("hgc", edges, workers, s_e=s_e, s_w=s_w, K=3 * K0)
        assert plan.code_spec["K"] == 3 * K0 == plan.code.K
    with pytest.raises(InfeasiblePlanError, match="multiples of 9") as info:
        make_plan("hgc", (0, 1, 2), ((0, 1, 2),) * 3, s_e=1, s_w=1, K=10)
    assert info.value.field == "K"


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.floats(0.1, 10.0), min_size=1, max_size=8),
    st.integers(1, 40),
)
def test_proportional_counts_respect_bounds_and_total(weights, per):
    n = len(weights)
    total = n * per
    counts = proportional_counts(weights, total, cap=2 * per, floor=1)
    assert sum(counts) == total
    assert all(1 <= c <= 2 * per for c in counts)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.lists(st.floats(0.2, 5.0), min_size=1, max_size=5), min_size=1, max_size=4),
    st.integers(0, 3),
    st.integers(0, 4),
)
def test_hetero_placement_has_valid_coverage(speeds, s_e, s_w):
    n, m_min = len(speeds), min(len(r) for r in speeds)
    if s_e > n - 1 or s_w > m_min - 1:
        return
    K = 4 * sum(len(r) for r in speeds)
    placement = hetero_placement(speeds, s_e, s_w, K)
    assert coverage_ok(placement, K, s_e, s_w)
    # negative control: take partition 0 away from one holder -> coverage must break
    i = next(i for i, edge in enumerate(placement) if any(0 in parts for parts in edge))
    j = next(j for j, parts in enumerate(placement[i]) if 0 in parts)
    broken = [list(edge) for edge in placement]
    broken[i][j] = tuple(x for x in placement[i][j] if x != 0)
    assert not coverage_ok(tuple(tuple(e) for e in broken), K, s_e, s_w)


def test_hetero_plan_gives_faster_workers_more_and_rebuilds_with_the_coding_core():
    sys_ = system((3, 4, 3), hetero=True)
    plan = make_hetero_plan(sys_, EDGES, WORKERS, s_e=1, s_w=1)
    loads = plan.loads
    assert loads[0][0] > loads[0][2]  # worker 2 of each edge is 3x slower
    K = plan.code_spec["K"]
    code = code_from_placement(plan.code_spec["placement"], K, 1, 1)
    for i, row in enumerate(loads):
        for j, x in enumerate(row):
            assert code.load_fraction(i, j) == pytest.approx(x)
    assert code_from_spec(plan.code_spec).scheme == "hgc-hetero"


def test_plan_scheme_picks_tolerances_and_rejects_missing_ones():
    sys_ = system(rate=0.05)  # heavy stragglers: some tolerance pays
    plan = plan_scheme(sys_, "hgc")
    assert (plan.s_e, plan.s_w) != (0, 0)
    with pytest.raises(ValueError, match="ignore: s_e and s_w are required"):
        plan_scheme(sys_, "ignore")
    with pytest.raises(ValueError, match="scheme: unknown 'nope'"):
        plan_scheme(sys_, "nope")


def test_communication_counts_messages_and_bytes():
    sys_ = system((3, 4, 3), gradient_bytes=1000)
    hier = communication(sys_, make_plan("hgc", EDGES, WORKERS, s_e=1, s_w=1))
    flat = communication(sys_, make_plan("flat-crc", EDGES, WORKERS, s=1))
    assert (hier.master_messages, hier.master_bytes) == (3, 3000)
    assert hier.edge_bytes == (3000, 4000, 3000)
    assert (flat.master_messages, flat.master_bytes) == (10, 10_000)


def test_no_stragglers_coding_loses():
    sys_ = system(rate=math.inf)
    from common.perf import expected_time

    base = expected_time(sys_, plan_scheme(sys_, "uncoded"))
    for s_e, s_w in [(1, 0), (0, 1), (1, 1), (2, 3)]:
        coded = expected_time(sys_, plan_scheme(sys_, "hgc", Tolerances(s_e, s_w)))
        assert coded > base * 1.2, (s_e, s_w)
    assert np.isfinite(base)


def test_a_plan_built_by_hand_gets_its_loads_from_the_code():
    from common.perf import expected_time
    from common.perf.plan import Plan

    sys_ = system((3, 3, 3), rate=0.5)
    spec = {"scheme": "hgc", "workers_per_edge": [2, 1], "s_e": 0, "s_w": 0}
    by_hand = Plan("hgc-jncss", (0, 2), ((1, 2), (2,)), spec)
    built = make_plan("hgc-jncss", (0, 2), ((1, 2), (2,)))
    assert expected_time(sys_, by_hand) == pytest.approx(expected_time(sys_, built))


def test_optimised_schemes_plan_on_a_trace_driven_system():
    from common.perf.system import StragglerModel

    rng = np.random.default_rng(0)
    trace = rng.exponential(1.0, size=(50, 9)) + 0.5
    sys_ = system((3, 3, 3), straggler=StragglerModel("trace", trace=trace, trace_load=1.0))
    for scheme in ("hgc-jncss", "hgc-hetero"):
        plan = plan_scheme(sys_, scheme)
        assert plan.scheme == scheme and plan.edges
