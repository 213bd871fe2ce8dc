"""From scenario + plan to the master's config: node names, loads, links (pure, no cluster)."""

from __future__ import annotations

from pathlib import Path

import pytest

from common.coding import Tolerances, code_from_spec, fixed_tolerances
from common.perf import Plan
from common.scenario import Scenario, load_scenario
from hgc.testbed.config import NodeMap, emulation_spec, master_config
from hgc.testbed.launcher import translate

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def scenario() -> Scenario:
    return load_scenario(ROOT / "scenarios" / "heterogeneous.yaml")


def subset_plan() -> Plan:
    """Edges 0 and 2 of the topology, a subset of their workers, uncoded over the selection."""
    spec = {"scheme": "uncoded", "workers_per_edge": [2, 1], "s_e": 0, "s_w": 0, "K": 3}
    return Plan("hgc-jncss", (0, 2), ((1, 3), (2,)), spec)


def test_node_map_goes_from_selection_positions_to_topology_names() -> None:
    names = NodeMap.of(subset_plan())
    assert names("worker-0-1") == "worker-0-3"
    assert names("worker-1-0") == "worker-2-2"
    assert names("edge-1") == "edge-2"
    assert names.edge(1) == names.edge("edge-1") == "edge-2"
    assert names.worker("1-0") == names.worker("worker-1-0") == "worker-2-2"


def test_records_are_translated_and_labelled_with_the_requested_scheme() -> None:
    record = {
        "scheme": "hgc",
        "edges_used": ["edge-0", "edge-1"],
        "edge_stragglers": [],
        "edge_arrivals_s": {"edge-1": 0.2},
        "worker_stragglers": ["worker-0-1"],
        "worker_arrivals_s": {"worker-1-0": 0.1},
    }
    out = translate(record, NodeMap.of(subset_plan()), "hgc-jncss")
    assert out["scheme"] == "hgc-jncss" and out["code_scheme"] == "hgc"
    assert out["edges_used"] == ["edge-0", "edge-2"]
    assert out["worker_stragglers"] == ["worker-0-3"]
    assert out["worker_arrivals_s"] == {"worker-2-2": 0.1}
    assert out["edge_arrivals_s"] == {"edge-2": 0.2}


def test_emulation_spec_uses_topology_profiles_for_selected_workers(scenario: Scenario) -> None:
    spec = emulation_spec(scenario, subset_plan(), "full")
    assert set(spec) == {"edge-0", "edge-1", "worker-0-0", "worker-0-1", "worker-1-0"}
    w = spec["worker-1-0"]  # topology worker-2-2
    prof = scenario.worker_profile(2, 2)
    assert w["shift_s"] == prof.shift_s and w["rate"] == prof.rate
    assert w["load"] == pytest.approx(1 / 3)
    assert w["worker_index"] == 4 + 3 + 2  # edge-major index of worker-2-2
    assert "bandwidth_bytes_per_s" in w["link"]


def test_link_modes(scenario: Scenario) -> None:
    no_rate = emulation_spec(scenario, subset_plan(), "no-rate")
    assert "bandwidth_bytes_per_s" not in no_rate["worker-0-0"]["link"]
    assert "latency_s" in no_rate["worker-0-0"]["link"]
    none = emulation_spec(scenario, subset_plan(), "none")
    assert "link" not in none["worker-0-0"] and "edge-0" not in none
    with pytest.raises(ValueError, match="link_mode"):
        emulation_spec(scenario, subset_plan(), "fast")


def test_master_config_ships_the_complete_code_spec(scenario: Scenario) -> None:
    spec = {"scheme": "flat-frc", "workers_per_edge": [4, 3, 4, 3], "s": 1}
    plan = Plan("flat-frc", (0, 1, 2, 3), ((0, 1, 2, 3), (0, 1, 2), (0, 1, 2, 3), (0, 1, 2)), spec)
    shipped = master_config(scenario, plan, 3, "full")["code_spec"]
    assert shipped["K"] >= 1
    assert code_from_spec(shipped).spec() == shipped


def test_master_config_carries_training_and_seed(scenario: Scenario) -> None:
    config = master_config(scenario, subset_plan(), 7, "full")
    assert config["training"]["iterations"] == 7
    assert config["seed"] == scenario.seed
    assert config["code_spec"]["K"] == 3


def test_tolerances_per_scheme_come_from_the_registry(scenario: Scenario) -> None:
    code = scenario.code
    assert fixed_tolerances("uncoded", code) == Tolerances(0, 0, K=code.K)
    assert fixed_tolerances("hgc-jncss", code) == Tolerances()  # chosen by the optimiser
    assert fixed_tolerances("worker-gc", code) == Tolerances(0, 1, K=code.K)
    assert fixed_tolerances("edge-gc", code) == Tolerances(1, 0, K=code.K)
    assert fixed_tolerances("hgc", code) == Tolerances(1, 1, K=code.K)
    assert fixed_tolerances("flat-frc", code) == Tolerances(s=code.s, K=code.K)


def test_scheme_plan_is_the_planner_with_the_scenario_tolerances(scenario: Scenario) -> None:
    from common.perf import plan_scheme
    from hgc.testbed.config import scenario_plan

    plan = scenario_plan(scenario, "worker-gc")
    assert plan == plan_scheme(scenario.system_model(), "worker-gc", scenario.code)
    assert plan.code_spec["s_e"] == 0 and plan.code_spec["s_w"] == scenario.code.s_w
    with pytest.raises(ValueError, match="unknown 'hgc-best'"):
        scenario_plan(scenario, "hgc-best")
