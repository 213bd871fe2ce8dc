"""``with_message_overhead``: a per-hop constant adds exactly four hops to every iteration,
hierarchical or flat, in the exact method and in Monte Carlo alike."""

from __future__ import annotations

import math

import numpy as np
import pytest

from common.coding import Tolerances
from common.perf import Link, expected_time, plan_scheme, simulate_plan, with_message_overhead
from tests.unit.perf.helpers import system

O = 0.003  # seconds per message hop


def deterministic():
    return system((3, 3, 3), rate=math.inf, hetero=True, gradient_bytes=10_000)


@pytest.mark.parametrize(
    ("scheme", "kw"),
    [("uncoded", {}), ("hgc", {"s_e": 1, "s_w": 1}), ("flat-frc", {"s": 2})],
)
def test_overhead_adds_four_hops_to_a_deterministic_iteration(scheme: str, kw: dict) -> None:
    base = deterministic()
    plan = plan_scheme(base, scheme, Tolerances(**kw))
    slow = with_message_overhead(base, O)
    rng = np.random.default_rng(0)
    got = simulate_plan(slow, plan, 50, rng).mean_s - simulate_plan(base, plan, 50, rng).mean_s
    assert got == pytest.approx(4 * O, abs=1e-9)


def test_exact_and_monte_carlo_agree_with_overhead() -> None:
    s = with_message_overhead(system((4, 3, 4), hetero=True, shift=0.1, rate=10.0), O)
    plan = plan_scheme(s, "hgc", Tolerances(s_e=1, s_w=1))
    mc = simulate_plan(s, plan, 40_000, np.random.default_rng(1))
    assert abs(expected_time(s, plan) - mc.mean_s) < 4 * mc.stderr_s + 0.003 * mc.mean_s


def test_zero_overhead_is_the_pure_model_and_bad_values_are_refused() -> None:
    s = deterministic()
    assert with_message_overhead(s, 0.0) is s
    slow = with_message_overhead(s, O)
    assert slow.workers[0][0].link.latency_s == pytest.approx(s.workers[0][0].link.latency_s + O)
    assert slow.edges[2].uplink.latency_s == pytest.approx(s.edges[2].uplink.latency_s + O)
    assert slow.workers[0][0].shift_s == s.workers[0][0].shift_s  # compute untouched
    for bad in (-0.001, math.nan, math.inf):
        with pytest.raises(ValueError, match="overhead_s"):
            with_message_overhead(s, bad)


def test_overhead_keeps_jitter_and_loss() -> None:
    link = Link(latency_s=0.01, jitter_s=0.002, bandwidth_bytes_per_s=1e6, loss=0.1)
    s = with_message_overhead(system((2, 2), link=link, uplink=link), O)
    got = s.workers[1][1].link
    assert (got.jitter_s, got.loss, got.bandwidth_bytes_per_s) == (0.002, 0.1, 1e6)
