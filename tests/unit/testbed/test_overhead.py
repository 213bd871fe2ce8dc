"""The deterministic twin that measures the real system's per-message overhead, and
predictions with that overhead (pure functions; the run itself is in bench_fidelity)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from common.perf import plan_scheme, simulate_plan
from common.scenario import Scenario, load_scenario
from hgc.testbed.config import emulation_spec, scenario_plan
from hgc.testbed.overhead import HOPS_PER_ITERATION, Overhead, deterministic_twin
from hgc.testbed.predict import predict

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def scenario() -> Scenario:
    return load_scenario(ROOT / "scenarios" / "heterogeneous.yaml")


def test_twin_keeps_the_hardware_and_removes_every_random_part(scenario: Scenario) -> None:
    twin = deterministic_twin(scenario)
    assert twin.workers_per_edge == scenario.workers_per_edge
    assert twin.data_spec == scenario.data_spec and twin.seed == scenario.seed
    for i, m in enumerate(scenario.workers_per_edge):
        up, up0 = twin.edge_profile(i).uplink, scenario.edge_profile(i).uplink
        assert (up.jitter_s, up.loss) == (0.0, 0.0)
        assert (up.latency_s, up.bandwidth_bytes_per_s) == (
            up0.latency_s,
            up0.bandwidth_bytes_per_s,
        )
        for j in range(m):
            w, w0 = twin.worker_profile(i, j), scenario.worker_profile(i, j)
            assert math.isinf(w.rate) and w.shift_s == w0.shift_s
            assert (w.link.jitter_s, w.link.loss) == (0.0, 0.0)
            assert w.link.latency_s == w0.link.latency_s
    system = twin.system_model()
    plan = plan_scheme(system, "uncoded")
    times = simulate_plan(system, plan, 20, np.random.default_rng(0)).times
    assert np.ptp(times) == 0.0  # the model of the twin is exact: no spread at all
    # what the twin's nodes are told to emulate is deterministic too
    spec = emulation_spec(twin, plan, "full")
    assert all(math.isinf(e["rate"]) for k, e in spec.items() if k.startswith("worker-"))
    assert all(e["link"]["jitter_s"] == 0 and e["link"]["loss"] == 0 for e in spec.values())


def test_per_hop_overhead_is_the_residual_over_four_hops() -> None:
    o = Overhead(measured_s=0.262, predicted_s=0.250, iterations=30)
    assert o.per_iteration_s == pytest.approx(0.012)
    assert o.per_hop_s == pytest.approx(0.012 / HOPS_PER_ITERATION)
    assert Overhead(0.2, 0.25, 30).per_hop_s == 0.0  # faster than exact: not a cost


def test_prediction_with_overhead_adds_four_hops_on_the_twin(scenario: Scenario) -> None:
    twin = deterministic_twin(scenario)
    for scheme in ("uncoded", "hgc", "flat-frc"):
        plan = scenario_plan(twin, scheme)
        pure, _ = predict(twin, plan)
        slow, info = predict(twin, plan, message_overhead_s=0.0025)
        assert pure is not None and slow is not None
        assert slow - pure == pytest.approx(4 * 0.0025, abs=2e-4), scheme
        assert info["scheme"] == scheme and info["K"] == plan.K and info["D"] == plan.D


def test_overhead_does_not_change_the_plan(scenario: Scenario) -> None:
    plan = scenario_plan(scenario, "hgc-jncss")
    _, pure = predict(scenario, plan)
    _, slow = predict(scenario, plan, message_overhead_s=0.01)
    assert (pure["edges"], pure["workers"]) == (slow["edges"], slow["workers"])
