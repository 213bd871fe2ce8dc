"""Emulation is real: a worker given a 4x slower CPU profile, or a slower link, arrives later
than its peers in the per-node times the master records, by roughly what the profile asks
(ratios with generous margins, never absolute times). Real processes via ``hgc run``'s
launcher."""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

import pytest

from common.scenario import load_scenario
from common.testbed.launcher import RunRequest, run_testbed
from common.testbed.records import read_records

pytestmark = pytest.mark.timeout(240)

# One edge, four identical workers; deterministic compute (rate .inf) so the only difference
# between workers is the override under test.
SCENARIO = """
name: arrivals
seed: 1
topology:
  workers_per_edge: [4]
  devices:
    base: {shift_s: 0.4, rate: .inf}
    slow4x: {shift_s: 1.6, rate: .inf}
  links:
    narrow: {bandwidth: %(narrow)s}
  workers: {device: base, link: ideal}
  edges: {device: laptop, uplink: ideal}
  overrides:
    worker-0-3: %(override)s
model: {kind: logreg}
data: {kind: digits}
training: {iterations: 4, eval_every: 4, deadline_s: 30}
schemes: [uncoded]
emulation: {compute: delay, cpu_quota: false, network: %(network)s}
"""


def arrivals(
    tmp_path: Path, override: str, network: str, narrow: str = "1gbit"
) -> list[dict[str, float]]:
    path = tmp_path / "arrivals.yaml"
    path.write_text(SCENARIO % {"override": override, "network": network, "narrow": narrow})
    scenario = load_scenario(path)
    out = tmp_path / "run"
    outcome = run_testbed(
        RunRequest(path, scenario, ("uncoded",), scenario.training.iterations, out=out)
    )
    assert outcome.ok, outcome.failures
    records = read_records(out / "uncoded" / "record.jsonl")
    assert len(records) == 4
    return [dict(r["worker_arrivals_s"]) for r in records]


def slow_ratio(per_iteration: list[dict[str, Any]]) -> float:
    """Median over iterations of (worker-0-3's arrival / median arrival of its peers)."""
    ratios = []
    for arr in per_iteration:
        peers = [t for node, t in arr.items() if not node.endswith("0-3")]
        slow = next(t for node, t in arr.items() if node.endswith("0-3"))
        ratios.append(slow / statistics.median(peers))
    return statistics.median(ratios)


def test_four_times_slower_cpu_profile_arrives_about_four_times_later(tmp_path: Path) -> None:
    ratio = slow_ratio(arrivals(tmp_path, "{device: slow4x}", "in-process"))
    assert 2.5 < ratio < 6.0, ratio


def test_negative_control_same_profile_arrives_together(tmp_path: Path) -> None:
    ratio = slow_ratio(arrivals(tmp_path, "{device: base}", "in-process"))
    assert 0.6 < ratio < 1.6, ratio


# 400 kbit/s = 50 kB/s; the model down and the gradient up are 650 float64 = 5.2 kB each
# plus framing: ~0.1 s each way on top of 0.1 s of compute -> about 3x the peers' arrival.
def test_slower_kernel_shaped_link_arrives_later(tmp_path: Path) -> None:
    ratio = slow_ratio(arrivals(tmp_path, "{link: narrow}", "kernel", narrow="400kbit"))
    assert 1.8 < ratio < 6.0, ratio


def test_slower_in_process_link_arrives_later(tmp_path: Path) -> None:
    ratio = slow_ratio(arrivals(tmp_path, "{link: narrow}", "in-process", narrow="400kbit"))
    assert 1.8 < ratio < 6.0, ratio
