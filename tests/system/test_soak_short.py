"""The short version of ``make soak`` that CI runs: a real local cluster, random worker kills
with restarts, worker and edge pauses, edge restarts and master restarts (resumed from its
checkpoint); no iteration lost, every decoded gradient exact."""

from __future__ import annotations

from pathlib import Path

import pytest

from hgc.testbed.soak import Soak


@pytest.mark.timeout(240)
def test_short_soak_loses_nothing_and_stays_exact(tmp_path: Path) -> None:
    soak = Soak(50, seed=7, workdir=tmp_path, fault_every=(3, 6))
    report = soak.run(timeout_s=200)
    text = "\n".join(report.lines())
    assert sum(report.faults.values()) >= 3, text
    assert report.faults["restart-master"] >= 1, text
    assert report.lost == 0, text
    assert report.checked == 50 and report.wrong == 0, text
    assert not report.notes, text
    assert set(report.fds_start) == {"master", "edge", "worker"}, text
