"""``code.K`` in a scenario is honoured on every path: the simulator, ``hgc run`` (its summary,
the master's config and the code the master built), and the compose stack's master config."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
import yaml

from common.perf.simulator import compare_schemes
from common.scenario import Scenario, load_scenario
from hgc.compose.generate import StackOptions
from hgc.compose.generate import master_config as stack_master_config
from hgc.testbed.launcher import RunRequest, run_testbed
from hgc.testbed.records import read_records

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.timeout(240)
K = 18  # 3 x 3 workers, s_e = s_w = 1: the smallest K is 9, the load D/K = 4/9


@pytest.fixture()
def scenario_file(tmp_path: Path) -> Path:
    doc = yaml.safe_load((ROOT / "scenarios" / "homogeneous.yaml").read_text())
    doc["code"] = {"s_e": 1, "s_w": 1, "K": K}
    doc["schemes"] = ["uncoded", "hgc"]
    path = tmp_path / "k18.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def test_the_simulator_plans_with_the_scenario_k(scenario_file: Path) -> None:
    scenario = load_scenario(scenario_file)
    assert scenario.code.K == K
    results = compare_schemes(scenario.system_model(), scenario.schemes, scenario.code, 200, 1)
    by_name = {r.name: r for r in results}
    assert by_name["hgc"].plan.K == K and by_name["hgc"].plan.D == K * 4 // 9
    assert by_name["hgc"].row()["K"] == K
    assert by_name["uncoded"].plan.K == K  # every fixed scheme takes the scenario's K


def test_hgc_run_ships_and_records_the_scenario_k(scenario_file: Path, tmp_path: Path) -> None:
    scenario: Scenario = load_scenario(scenario_file)
    out = tmp_path / "run"
    request = RunRequest(scenario_file, scenario, ("hgc",), 2, out=out, stream=io.StringIO())
    outcome = run_testbed(request)
    assert outcome.ok, outcome.failures
    summary = json.loads((out / "summary.json").read_text())
    assert summary["schemes"]["hgc"]["K"] == K
    assert summary["schemes"]["hgc"]["D"] == K * 4 // 9
    shipped = json.loads((out / "hgc" / "run.json").read_text())  # the master's --config
    assert shipped["code_spec"]["K"] == K
    records = read_records(out / "hgc" / "record.jsonl")
    assert len(records) == 2 and {r["K"] for r in records} == {K}  # the code the master built


def test_compose_ships_the_scenario_k(scenario_file: Path) -> None:
    config = stack_master_config(load_scenario(scenario_file), StackOptions(scheme="hgc"))
    assert config["code_spec"]["K"] == K
