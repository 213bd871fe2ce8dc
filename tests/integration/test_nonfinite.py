"""Non-finite values never reach the model (real processes, CURVE on).

- A worker (with its own valid key) that answers NaN every iteration is a straggler: its
  edge drops the vector (``non_finite``), decodes from the others, and training equals
  uncoded gradient descent.
- A divergent learning rate (``hgc cluster --learning-rate inf``): the master refuses the
  non-finite update, the run stops with a non-zero exit and a message saying so, and the
  record parses as strict JSON.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from hgc.cluster import REPO_ROOT, LocalCluster, reference_trace
from hgc.testbed.scrape import scrape, value
from tests.conftest import poll_for
from tests.integration.rogue import RogueWorker

pytestmark = pytest.mark.timeout(180)

CONFIG: dict[str, Any] = {
    "code": {"scheme": "hgc", "workers_per_edge": [3, 3], "s_e": 1, "s_w": 1},
    "data_spec": {"kind": "digits"},
    "model_spec": {"kind": "logreg"},
    # the workers take >= 50 ms per iteration: time to scrape the edge while it runs
    "emulation_spec": {
        f"worker-{i}-{j}": {"fixed_delay_s": 0.05} for i in range(2) for j in range(3)
    },
    "training": {"iterations": 8, "learning_rate": 0.5, "deadline_s": 20.0},
    "seed": 5,
}


def strict_loads(line: str) -> Any:
    def refuse(name: str) -> Any:
        raise ValueError(f"non-standard JSON constant {name}")

    return json.loads(line, parse_constant=refuse)


def test_a_worker_sending_nan_is_a_straggler_and_training_stays_exact(tmp_path: Path) -> None:
    cluster = LocalCluster(CONFIG, workdir=tmp_path, params_trace=True, external=("worker-0-1",))
    with contextlib.closing(cluster):
        cluster.start(wait_ready=False)  # the barrier needs worker-0-1, started below
        # worker-0-1 is the test's: a valid key, a NaN vector every iteration
        nan = RogueWorker(
            0,
            1,
            f"tcp://127.0.0.1:{cluster.ports['edge-0']}",
            keys=cluster.keys_of("worker-0-1"),
            tamper=lambda v, t: np.full_like(v, np.nan),
        ).start()
        try:
            cluster.wait_ready()

            def dropped() -> float:
                families = scrape("127.0.0.1", cluster.metrics_ports["edge-0"])
                found = value(families, "hgc_edge_messages_dropped_total", reason="non_finite")
                return found or 0.0

            poll_for(lambda: dropped() >= 2, 60, what="edge-0 to count non_finite drops")
            status = cluster.wait(120)
            log = cluster.log("edge-0", 400)
        finally:
            nan.close()
        trace = cluster.params_trace()
        lines = cluster.record_path.read_text().splitlines()
    assert status == 0
    assert nan.sent, "the NaN worker never answered: the test proves nothing"
    # NaN vectors were dropped and said so (one arriving after its edge moved on to the next
    # iteration is dropped as late instead; the scrape above saw >= 2 non_finite drops)
    assert log.count("dropped a non-finite vector from worker-0-1") >= 2
    records = [strict_loads(line) for line in lines]
    assert [r["iteration"] for r in records] == list(range(8)) and all(r["ok"] for r in records)
    # never used: every record has it among edge-0's stragglers
    assert all(
        "worker-0-1" in r["worker_stragglers"] for r in records if "edge-0" in r["edges_used"]
    )
    reference = reference_trace(CONFIG)
    assert list(trace["iterations"]) == list(range(8))
    rel = np.linalg.norm(trace["params"] - reference, axis=1) / np.linalg.norm(reference, axis=1)
    assert float(rel.max()) < 1e-9
    assert np.isfinite(trace["params"]).all()


def test_divergent_learning_rate_stops_the_run_non_zero_with_strict_json(tmp_path: Path) -> None:
    workdir = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "hgc"), "cluster", "--workers-per-edge", "2,2"]
        + ["--learning-rate", "inf", "--iterations", "3", "--workdir", str(workdir)]
        + ["--on-failure", "stop", "--json", "--timeout", "120"],
        capture_output=True,
        text=True,
        env=env,
        cwd=str(tmp_path),
        timeout=170,
    )
    assert proc.returncode != 0, proc.stdout + proc.stderr
    assert "not finite" in proc.stderr, proc.stderr
    lines = (workdir / "record.jsonl").read_text().splitlines()
    records = [strict_loads(line) for line in lines]
    assert records and not records[0]["ok"]
    assert "update not applied" in records[0]["error"]
    # the model was never poisoned: the saved parameters (the initial ones) are finite
    params = np.load(workdir / "params.npy")
    assert np.isfinite(params).all()


def test_record_rows_with_non_finite_numbers_become_null_with_a_flag() -> None:
    from services.master.service import strict_row

    row = strict_row({"loss": float("nan"), "ok": True, "times": {"edge-0": float("inf")}})
    text = json.dumps(row, allow_nan=False)
    back = strict_loads(text)
    assert back["loss"] is None and back["times"]["edge-0"] is None
    assert back["non_finite"] == ["loss", "times.edge-0"]


def test_edge_state_drops_non_finite_vectors_and_reports_when_too_few_remain() -> None:
    """The edge's state machine (a fake code: needs 1 of 2 workers): a NaN vector is dropped
    as non_finite and never decoded; when every live worker's answer was refused, the edge
    tells the master at once instead of waiting for the deadline."""
    from common.runtime.messages import EdgeGradient, IterationFailed
    from services.common.actions import Drop, SendUp
    from tests.unit.services.test_edge_state import _grad, _running

    e = _running()
    acts = e.handle(_grad(0, value=float("nan")), 10.5)
    assert [a.reason for a in acts if isinstance(a, Drop)] == ["non_finite"]
    assert not any(isinstance(a, SendUp) for a in acts)
    acts = e.handle(_grad(1, value=2.0), 10.6)
    (up,) = [a.msg for a in acts if isinstance(a, SendUp)]
    assert isinstance(up, EdgeGradient) and up.responders == (1,)
    assert np.isfinite(up.vector).all()

    e = _running()
    e.handle(_grad(0, value=float("inf")), 10.5)
    acts = e.handle(_grad(1, value=float("nan")), 10.6)
    (failed,) = [a.msg for a in acts if isinstance(a, SendUp)]
    assert isinstance(failed, IterationFailed) and "refused" in failed.reason
