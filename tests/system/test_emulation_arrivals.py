"""Emulation is real: a worker given a 4x slower CPU profile, a slower link or a smaller CPU
quota arrives later than its peers in the per-node times the master records. Real processes
via ``hgc run``'s launcher.

Load-proof (CI runs on a busy 2-core machine): every figure is measured against peers of the
same run, at the same time, under the same load, and asserted as a direction with a wide
margin; the precise figures are ``make bench``'s. For modelled delays and links the test
takes the DIFFERENCE between the subject's arrival and its peers' (load adds about the same
to both and cancels) and asks for at least half the modelled extra time; for the real CPU
quota both workers run under a quota, so the ratio is set by the quotas, not by the load.
Each test prints its figures (``pytest -s``)."""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

import pytest

from common.scenario import load_scenario
from hgc.testbed.cgroups import CpuQuotas, detect_cgroups
from hgc.testbed.launcher import RunRequest, run_testbed
from hgc.testbed.records import read_records
from tests.conftest import IN_CI

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


def extra_s(per_iteration: list[dict[str, Any]]) -> float:
    """Median over iterations of (worker-0-3's arrival - median arrival of its peers)."""
    extra, ratios = [], []
    for arr in per_iteration:
        peers = statistics.median(t for node, t in arr.items() if not node.endswith("0-3"))
        slow = next(t for node, t in arr.items() if node.endswith("0-3"))
        extra.append(slow - peers)
        ratios.append(slow / peers)
    print(f"extra {statistics.median(extra):.3f} s of {extra}; ratios {ratios}")
    return statistics.median(extra)


# Each of four workers computes a quarter of the data (uncoded): ``base`` models 0.4 s / 4 =
# 0.1 s per iteration, ``slow4x`` 1.6 s / 4 = 0.4 s, so worker-0-3 is modelled 0.3 s later.
SLOW4X_EXTRA_S = (1.6 - 0.4) / 4


def test_four_times_slower_cpu_profile_arrives_about_four_times_later(tmp_path: Path) -> None:
    extra = extra_s(arrivals(tmp_path, "{device: slow4x}", "in-process"))
    assert 0.5 * SLOW4X_EXTRA_S < extra < 2.0 * SLOW4X_EXTRA_S, extra


def test_negative_control_same_profile_arrives_together(tmp_path: Path) -> None:
    extra = extra_s(arrivals(tmp_path, "{device: base}", "in-process"))
    assert abs(extra) < 0.5 * SLOW4X_EXTRA_S, extra


# 400 kbit/s = 50 kB/s; the gradient up (and, in process, the model down) is 650 float64 =
# 5.2 kB plus framing: at least ~0.1 s per shaped direction (kernel shaping acts on the
# worker's egress; the in-process emulator on both directions). Measured on a busy machine:
# ~0.11 s (kernel) and ~0.22 s (in process) later than the peers.
NARROW_ONE_WAY_S = 650 * 8 / 50_000


def test_slower_kernel_shaped_link_arrives_later(tmp_path: Path) -> None:
    extra = extra_s(arrivals(tmp_path, "{link: narrow}", "kernel", narrow="400kbit"))
    assert 0.5 * NARROW_ONE_WAY_S < extra < 4 * NARROW_ONE_WAY_S, extra


def test_slower_in_process_link_arrives_later(tmp_path: Path) -> None:
    extra = extra_s(arrivals(tmp_path, "{link: narrow}", "in-process", narrow="400kbit"))
    assert 0.5 * 2 * NARROW_ONE_WAY_S < extra < 4 * 2 * NARROW_ONE_WAY_S, extra


# A REAL cgroup CPU quota (no modelled extra time: shift_s 0, rate .inf, so each worker's time
# is its own real gradient computation, burning CPU under ``compute: work``). Two workers of one
# edge, BLAS single-threaded. The MLP on 24,000 training rows makes each worker's real compute
# span several CFS periods (100 ms) even at half a core, so the quota really throttles it,
# while the model stays small (~27k parameters) so messaging does not dilute the ratio.
#
# Load-proof by design: BOTH workers run under a quota, the control at half a core and the
# subject at a sixteenth. While the machine gives each worker at least half a core, both
# quotas bind and the arrival ratio is the ratio of the quotas, ~8, whatever else runs; when
# it gives less (the control then gets only its fair share f), the ratio is f * 16, still
# above 2 down to f = 1/8 of a core: two busy loops on two cores leave f ~ 0.5, and a shared
# machine at a load average of 10 left ~0.2. (An unlimited control instead gets whatever
# the load leaves it, so the ratio followed the load: a clean CI run measured 1.87 against a
# quarter-core quota and the old 2.0 < ratio.) Asserted: the direction with a wide margin,
# > 2; the negative control, both at half a core, expects 1 and must stay < 2. The kernel's
# own counters confirm the throttling. Precise figures are ``make bench``'s business.
QUOTA_SCENARIO = """
name: quota-arrivals
seed: 1
topology:
  workers_per_edge: [2]
  devices:
    half: {shift_s: 0.0, rate: .inf, cpu_fraction: 0.5}
    sixteenth: {shift_s: 0.0, rate: .inf, cpu_fraction: 0.0625}
  workers: {device: half, link: ideal}
  edges: {device: laptop, uplink: ideal}
  overrides:
    worker-0-1: %(override)s
model: {kind: mlp, hidden: 128, activation: tanh}
data: {kind: synthetic, n_samples: 30000, n_features: 200, n_classes: 10, seed: 0}
training: {iterations: 5, eval_every: 5, deadline_s: 120}
schemes: [uncoded]
emulation: {compute: work, cpu_quota: true, network: "off"}
"""


def cpu_stat(group: Path) -> dict[str, int]:
    """The kernel's CFS bandwidth counters of a cgroup (v1 and v2 name them alike)."""
    pairs = (line.split() for line in (group / "cpu.stat").read_text().splitlines())
    return {k: int(v) for k, v in pairs}


def quota_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, override: str
) -> tuple[float, dict[str, dict[str, int]]]:
    """(median over iterations of worker-0-1's arrival / worker-0-0's, each worker's
    ``cpu.stat`` as the launcher removes its groups)."""
    support = detect_cgroups()
    if not support.available:
        if IN_CI:
            pytest.fail(f"CI must offer cgroups for the CPU quota test: {support.reason}")
        pytest.skip(f"no cgroup CPU controller here: {support.reason}")
    # one BLAS thread per worker (inherited by the node processes): a quota is a share of
    # one core's time, and a multi-threaded worker would reach it sooner
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        monkeypatch.setenv(var, "1")
    stats: dict[str, dict[str, int]] = {}
    cleanup = CpuQuotas.cleanup

    def snapshot_then_cleanup(self: CpuQuotas) -> list[str]:
        stats.update({node: cpu_stat(group) for node, group in self.groups.items()})
        return cleanup(self)

    monkeypatch.setattr(CpuQuotas, "cleanup", snapshot_then_cleanup)
    path = tmp_path / "quota.yaml"
    path.write_text(QUOTA_SCENARIO % {"override": override})
    scenario = load_scenario(path)
    out = tmp_path / "run"
    outcome = run_testbed(
        RunRequest(path, scenario, ("uncoded",), scenario.training.iterations, out=out)
    )
    assert outcome.ok, outcome.failures
    emulation = json.loads((out / "emulation.json").read_text())
    assert emulation["mechanisms"]["cpu_quota"]["active"], emulation["mechanisms"]["cpu_quota"]
    records = read_records(out / "uncoded" / "record.jsonl")
    assert len(records) == scenario.training.iterations
    ratios = [
        r["worker_arrivals_s"]["worker-0-1"] / r["worker_arrivals_s"]["worker-0-0"] for r in records
    ]
    print(f"quota ratio {statistics.median(ratios):.2f} of {ratios}; cpu.stat {stats}")
    return statistics.median(ratios), stats


def test_real_cpu_quota_of_a_sixteenth_arrives_later_than_a_half_core_peer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ratio, stats = quota_run(tmp_path, monkeypatch, "{device: sixteenth}")
    # ~8 expected, the quotas' ratio (seen 8.5-16 under two busy loops: a sixteenth of a
    # core also pays for the worker's I/O threads and period boundaries). Only the direction
    # is asserted, with a wide margin; how far it goes is ``make bench``'s business.
    assert ratio > 2.0, (ratio, stats)
    assert set(stats) >= {"worker-0-0", "worker-0-1"}, stats
    # the kernel did throttle the limited worker, and more often than its peer
    slow, peer = stats["worker-0-1"], stats["worker-0-0"]
    assert slow["nr_throttled"] > 0, stats
    assert slow["nr_throttled"] > peer["nr_throttled"], stats


def test_negative_control_same_quota_arrives_together(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ratio, stats = quota_run(tmp_path, monkeypatch, "{device: half}")
    assert 0.5 < ratio < 2.0, (ratio, stats)
