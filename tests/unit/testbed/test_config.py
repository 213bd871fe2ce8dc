"""From scenario + plan to the master's config: node names, loads, links (pure, no cluster)."""

from __future__ import annotations

from pathlib import Path

import pytest

from common.coding import code_from_spec
from common.perf import Plan
from common.scenario import Scenario, load_scenario
from hgc.testbed.config import NodeMap, emulation_spec, full_code_spec, master_config
from hgc.testbed.launcher import translate
from hgc.testbed.predict import tolerances

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


def test_full_code_spec_completes_a_plan_without_k() -> None:
    spec = full_code_spec({"scheme": "flat-frc", "workers_per_edge": [4, 3, 4, 3], "s": 1})
    assert spec["K"] >= 1
    assert code_from_spec(spec).spec() == spec


def test_master_config_carries_training_and_seed(scenario: Scenario) -> None:
    config = master_config(scenario, subset_plan(), 7, "full")
    assert config["training"]["iterations"] == 7
    assert config["seed"] == scenario.seed
    assert config["code_spec"]["K"] == 3


def test_tolerances_per_scheme(scenario: Scenario) -> None:
    assert tolerances(scenario, "uncoded") == {}
    assert tolerances(scenario, "hgc-jncss") == {}
    assert tolerances(scenario, "worker-gc") == {"s_w": 1}
    assert tolerances(scenario, "edge-gc") == {"s_e": 1}
    assert tolerances(scenario, "hgc") == {"s_e": 1, "s_w": 1}
    assert set(tolerances(scenario, "flat-frc")) == {"s"}


def test_scheme_plan_is_the_planner_with_the_scenario_tolerances(scenario: Scenario) -> None:
    from common.perf import plan_scheme
    from hgc.testbed.config import scheme_plan

    plan = scheme_plan(scenario, "worker-gc")
    assert plan == plan_scheme(scenario.system_model(), "worker-gc", s_w=scenario.code.s_w)
    assert plan.code_spec["s_e"] == 0 and plan.code_spec["s_w"] == scenario.code.s_w
    with pytest.raises(ValueError, match="hgc-best"):
        scheme_plan(scenario, "hgc-best")
