"""The scenario's fault schedule on a real run: a worker killed within the code's tolerance
(HGC, s_w = 1) is ignored from then on and training completes; a paused edge is resumed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from common.scenario import load_scenario
from hgc.testbed.launcher import RunRequest, run_testbed
from hgc.testbed.records import read_records

pytestmark = pytest.mark.timeout(240)

SCENARIO = """
name: faults
seed: 2
topology:
  workers_per_edge: [3, 3]
  workers: {device: laptop, link: lan}
  edges: {device: laptop, uplink: lan}
model: {kind: logreg}
data: {kind: digits}
training: {iterations: 8, eval_every: 4, deadline_s: 10, on_failure: retry}
code: {s_e: 0, s_w: 1}
schemes: [hgc]
faults:
  - {iteration: 2, node: worker-1-0, action: kill}
  - {iteration: 4, node: edge-0, action: pause, duration_s: 0.3}
"""


def test_kill_within_tolerance_and_pause_are_applied(tmp_path: Path) -> None:
    path = tmp_path / "faults.yaml"
    path.write_text(SCENARIO)
    scenario = load_scenario(path)
    outcome = run_testbed(
        RunRequest(path, scenario, ("hgc",), scenario.training.iterations, out=tmp_path / "run")
    )
    assert outcome.ok, outcome.failures
    assert outcome.results["hgc"].stats.iterations == 8
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    applied = summary["faults_applied"]["hgc"]
    assert applied == [
        "fault: killed worker-1-0",
        "fault: paused edge-0",
        "fault: resumed edge-0",
    ]
    records = read_records(tmp_path / "run" / "hgc" / "record.jsonl")
    after_kill = [r for r in records if r["ok"] and r["iteration"] >= 3]
    assert after_kill and all("worker-1-0" in r["worker_stragglers"] for r in after_kill)
