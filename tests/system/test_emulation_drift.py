"""Drift in the kernel emulation modes: on a real ``hgc run`` with CPU quotas (cgroups) and
kernel networking (namespaces, tc), ``set-device`` changes the worker's CPU quota and
``set-link`` the tc shaping of the edge's uplink at the fault's iteration.

A sampler thread reads the kernel's own state (the group's quota file, ``tc qdisc show`` /
``tc class show`` inside the edge's namespace) beside the last iteration the master recorded.
Before iteration 4 starts (last recorded <= 2) every sample shows the old profile; once
iteration 4 is under way (last recorded >= 4) every sample shows the new one. Root and
cgroups are needed: skipped on a user's machine without them, a failure in CI
(``docker_helpers.unavailable``)."""

from __future__ import annotations

import os
import subprocess
import threading
import time
from pathlib import Path

import pytest

from common.scenario import load_scenario
from hgc.testbed import cgroups, netns
from hgc.testbed.launcher import RunRequest, run_testbed
from hgc.testbed.records import read_records
from tests.system.docker_helpers import unavailable

pytestmark = [pytest.mark.timeout(240), pytest.mark.slow]

SCENARIO = """
name: kernel-drift
seed: 3
topology:
  workers_per_edge: [2]
  devices: {slowpi: {shift_s: 0.2, rate: 5.0, cpu_fraction: 0.25}}
  links: {thin: {bandwidth: 2Mbit}}
  workers: {device: laptop, link: lan}
  edges: {device: laptop, uplink: lan}
model: {kind: logreg}
data: {kind: digits}
training: {iterations: 9, eval_every: 9, deadline_s: 30}
schemes: [uncoded]
emulation: {compute: delay, cpu_quota: true, network: kernel}
faults:
  - {iteration: 4, node: worker-0-1, action: set-device, device: slowpi}
  - {iteration: 4, node: edge-0, action: set-link, link: thin}
"""


def quota(node: str) -> float | None:
    support = cgroups.detect_cgroups()
    assert support.cpu_root is not None
    group = support.cpu_root / f"{cgroups.PREFIX}{os.getpid()}" / node
    if support.version == 2:
        f = group / "cpu.max"
        if not f.exists():
            return None
        q, p = f.read_text().split()[:2]
        return None if q == "max" else int(q) / int(p)
    f = group / "cpu.cfs_quota_us"
    if not f.exists():
        return None
    quota_us = int(f.read_text())
    period_us = int((group / "cpu.cfs_period_us").read_text())
    return None if quota_us < 0 else quota_us / period_us


def tc_state(node: str) -> str:
    ns = f"{netns.PREFIX}{os.getpid()}-{node}"
    out = subprocess.run(
        ["ip", "netns", "exec", ns, "tc", "class", "show", "dev", "eth0"],
        capture_output=True,
        text=True,
        timeout=10,
    )
    return out.stdout


def test_set_device_and_set_link_change_quota_and_tc_at_their_iteration(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        unavailable("not root: network namespaces and tc need root")
    support = cgroups.detect_cgroups()
    if not support.available:
        unavailable(f"no cgroups: {support.reason}")
    path = tmp_path / "drift.yaml"
    path.write_text(SCENARIO)
    out = tmp_path / "run"
    record = out / "uncoded" / "record.jsonl"
    samples: list[tuple[int, float | None, str]] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            last = max((int(r["iteration"]) for r in read_records(record)), default=-1)
            if 0 <= last < 8:  # the last iteration's record: the run is being torn down
                state = (last, quota("worker-0-1"), tc_state("edge-0"))
                if state[2] and read_records(record)[-1]["iteration"] < 8:
                    samples.append(state)  # (an empty tc answer: `ip netns exec` failed)
            time.sleep(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        outcome = run_testbed(RunRequest(path, load_scenario(path), ("uncoded",), 9, out=out))
    finally:
        stop.set()
        sampler.join(timeout=10)
    assert outcome.ok, outcome.failures
    before = [s for s in samples if s[0] <= 2]
    after = [s for s in samples if s[0] >= 4]
    assert before and after, samples[:3]
    # laptop (cpu_fraction 1) has no group before; the slow device's quarter after
    assert all(q is None or q > 0.99 for _, q, _ in before), before[:3]
    assert all(q == pytest.approx(0.25) for _, q, _ in after), after[:3]
    # lan (100 Mbit) before, 2 Mbit after, in the htb class towards the master
    assert all("rate 100Mbit" in t for _, _, t in before), before[0][2]
    assert all("rate 2Mbit" in t for _, _, t in after), after[0][2]
    notes = " ".join(outcome_notes(out))
    assert "CPU quota 0.25 of a core" in notes and "tc rate 250000 B/s" in notes


def outcome_notes(out: Path) -> list[str]:
    import json

    summary = json.loads((out / "summary.json").read_text())
    return list(summary["faults_applied"]["uncoded"])
