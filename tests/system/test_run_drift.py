"""Drift on a real run: ``set-device`` and ``set-link`` faults switch a node's emulated
profile at an iteration boundary.

- Two identical laptop workers on one edge; from iteration 6 worker-0-1 is a Pi 3 (6x the
  shift and the mean tail). Its arrival divided by worker-0-0's *in the same iteration* (a
  concurrent control: both run under the same machine load) must be ~1 before and several
  times larger after.
- From iteration 6 the edge's uplink has 0.3 s of latency each way: the edge's arrival at
  the master minus its latest worker arrival (the uplink round trip) is at least 0.6 s
  after (an emulated delay is a floor, whatever the load) and well under it before.

A negative control, the same run without the faults, changes neither."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from common.scenario import load_scenario
from hgc.testbed.launcher import RunRequest, run_testbed
from hgc.testbed.records import read_records

pytestmark = pytest.mark.timeout(240)

SCENARIO = """
name: drift
seed: 4
topology:
  workers_per_edge: [2]
  links: {degraded: {latency_s: 0.3}}
  workers: {device: laptop, link: lan}
  edges: {device: laptop, uplink: lan}
model: {kind: logreg}
data: {kind: digits}
training: {iterations: 12, eval_every: 6, deadline_s: 20}
schemes: [uncoded]
"""
FAULT = """faults:
  - {iteration: 6, node: worker-0-1, action: set-device, device: rpi3}
  - {iteration: 6, node: edge-0, action: set-link, link: degraded}
"""


def ratios(tmp_path: Path, text: str, tag: str) -> tuple[np.ndarray, np.ndarray, dict]:
    path = tmp_path / f"{tag}.yaml"
    path.write_text(text)
    scenario = load_scenario(path)
    out = tmp_path / tag
    outcome = run_testbed(RunRequest(path, scenario, ("uncoded",), 12, out=out))
    assert outcome.ok, outcome.failures
    records = [r for r in read_records(out / "uncoded" / "record.jsonl") if r["ok"]]
    assert len(records) == 12
    a = [
        (r["worker_arrivals_s"]["worker-0-1"], r["worker_arrivals_s"]["worker-0-0"])
        for r in records
    ]
    summary = json.loads((out / "summary.json").read_text())
    uplink = [
        r["edge_arrivals_s"]["edge-0"] - max(r["worker_arrivals_s"].values()) for r in records
    ]
    return np.array([x / y for x, y in a]), np.array(uplink), summary


def test_set_device_and_set_link_change_the_nodes_from_their_iteration(tmp_path: Path) -> None:
    r, up, summary = ratios(tmp_path, SCENARIO + FAULT, "drift")
    before, after = np.median(r[:6]), np.median(r[6:])
    assert 0.4 < before < 2.5, r
    assert after > 3.0 and after > 2.5 * before, r
    notes = summary["faults_applied"]["uncoded"]
    assert any("set-device worker-0-1 -> rpi3" in n for n in notes)
    assert any("set-link edge-0 -> degraded" in n for n in notes)
    assert up[6:].min() >= 0.6 and np.median(up[:6]) < 0.3, up
    # negative control: no fault, no change
    r0, up0, _ = ratios(tmp_path, SCENARIO, "steady")
    assert np.median(r0[6:]) < 2.5 and np.median(r0[6:]) < 2.5 * np.median(r0[:6]), r0
    assert np.median(up0[6:]) < 0.3, up0
