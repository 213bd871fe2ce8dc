"""Verify mode: a node with a valid key that lies is detected, located, left out, counted.

- Edge tier (real processes, hgc, 4 workers per edge, s_w = 2): worker-0-1 (played by the
  test with its own key) sends 3x its true vector; edge-0 decodes from the consistent
  workers, names the liar, and training equals uncoded gradient descent.
- Master tier, flat scheme (real processes, flat-crc, s = 2): the master checks the relayed
  worker vectors and leaves worker-1-1's scaled vector out.
- Master tier, hierarchical (the pure state machine with a real code): an edge's lie is
  located among n = 4 edges with s_e = 2.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from common.coding import code_from_spec
from common.runtime.messages import EdgeGradient, ModelUpdate, Ready, Register
from hgc.cluster import LocalCluster, reference_trace
from services.common import integrity
from services.common.actions import Observe, Received, Record, SendDown, Started
from services.master.state import MasterState, TrainingConfig
from tests.integration.rogue import RogueWorker

pytestmark = pytest.mark.timeout(180)


def config(code: dict[str, Any], iterations: int = 5) -> dict[str, Any]:
    return {
        "code": code,
        "data_spec": {"kind": "digits"},
        "model_spec": {"kind": "logreg"},
        "training": {
            "iterations": iterations,
            "learning_rate": 0.5,
            "deadline_s": 30.0,
            "verify": True,
            "verify_wait_s": 20.0,  # everyone answers: the check always has every vector
        },
        "seed": 2,
    }


def run_with_liar(tmp_path: Path, cfg: dict[str, Any], liar: tuple[int, int]) -> dict[str, Any]:
    i, j = liar
    name = f"worker-{i}-{j}"
    cluster = LocalCluster(cfg, workdir=tmp_path, params_trace=True, external=(name,))
    with contextlib.closing(cluster):
        cluster.start(wait_ready=False)
        rogue = RogueWorker(
            i,
            j,
            f"tcp://127.0.0.1:{cluster.ports[f'edge-{i}']}",
            keys=cluster.keys_of(name),
            tamper=lambda v, t: 3.0 * v,
        ).start()
        try:
            cluster.wait_ready()
            status = cluster.wait(150)
        finally:
            rogue.close()
        return {
            "status": status,
            "records": cluster.records(),
            "trace": cluster.params_trace(),
            "logs": {n: cluster.log(n, 500) for n in ("master", f"edge-{i}")},
            "sent": list(rogue.sent),
        }


def assert_exact(out: dict[str, Any], cfg: dict[str, Any]) -> None:
    reference = reference_trace(cfg)
    p = out["trace"]["params"]
    rel = np.linalg.norm(p - reference, axis=1) / np.linalg.norm(reference, axis=1)
    assert float(rel.max()) < 1e-9


def test_edge_locates_a_lying_worker_and_training_stays_exact(tmp_path: Path) -> None:
    cfg = config({"scheme": "hgc", "workers_per_edge": [4, 4], "s_e": 1, "s_w": 2})
    out = run_with_liar(tmp_path, cfg, (0, 1))
    assert out["status"] == 0 and out["sent"]
    records = out["records"]
    assert [r["iteration"] for r in records] == list(range(5)) and all(r["ok"] for r in records)
    # every iteration whose decode used edge-0 names the liar
    assert all("worker-0-1" in r["liars"] for r in records if "edge-0" in r["edges_used"])
    assert "worker-0-1 sent an inconsistent vector" in out["logs"]["edge-0"]
    assert_exact(out, cfg)


def test_master_locates_a_lying_worker_of_a_flat_code(tmp_path: Path) -> None:
    cfg = config({"scheme": "flat-crc", "workers_per_edge": [2, 2, 2], "s": 2})
    out = run_with_liar(tmp_path, cfg, (1, 1))
    assert out["status"] == 0 and out["sent"]
    records = out["records"]
    assert all(r["ok"] and r["liars"] == ["worker-1-1"] for r in records)
    assert "worker-1-1 sent an inconsistent vector" in out["logs"]["master"]
    assert_exact(out, cfg)


def _drive_master(lie: float, verify: bool) -> tuple[MasterState, list[Any], np.ndarray]:
    """One iteration of a real hgc code (4 edges, s_e = 2) whose edge-2 scales its vector."""
    spec = {"scheme": "hgc", "workers_per_edge": [2, 2, 2, 2], "s_e": 2, "s_w": 0}
    code = code_from_spec(spec)
    rng = np.random.default_rng(1)
    G = rng.normal(size=(code.K, 6))  # per-partition gradients
    tc = TrainingConfig(
        code.spec(), {"kind": "digits"}, {"kind": "logreg"}, iterations=1, verify=verify
    )
    state = MasterState(tc, code, np.zeros(6), 10, lambda p: (0.0, 0.0))
    acts: list[Any] = list(state.handle(Started(), 0.0))
    for i in range(4):
        acts += state.handle(Received(f"edge-{i}", Register(-1, "edge", f"edge-{i}", i, -1)), 0)
    for i in range(4):
        acts += state.handle(Received(f"edge-{i}", Ready(-1, f"edge-{i}", i, -1)), 0.0)
    assert any(isinstance(a, SendDown) and isinstance(a.msg, ModelUpdate) for a in acts)
    for i in (2, 0, 1, 3):  # the liar first: without verify it is used
        y = np.asarray(code.edge_targets[i]) @ G * (lie if i == 2 else 1.0)
        msg = EdgeGradient(0, i, y, (0, 1), 0.0, 0.0, (0.0, 0.0))
        acts += state.handle(Received(f"edge-{i}", msg), 1.0)
    return state, acts, -(0.1 / 10) * G.sum(axis=0)


def test_master_locates_a_lying_edge_among_four_with_s_e_2() -> None:
    state, acts, expected = _drive_master(lie=3.0, verify=True)
    rows = [a.row for a in acts if isinstance(a, Record)]
    assert len(rows) == 1 and rows[0]["ok"] and rows[0]["liars"] == ["edge-2"]
    assert any(isinstance(a, Observe) and a.name == "integrity_failure" for a in acts)
    np.testing.assert_allclose(state.params, expected, rtol=1e-9, atol=1e-12)
    # negative control: without verify mode the same lie poisons the update (edge-2 is
    # among the first n - s_e answers)
    plain, _, _ = _drive_master(lie=3.0, verify=False)
    assert not np.allclose(plain.params, expected, rtol=1e-6)


def test_one_extra_answer_detects_but_cannot_locate() -> None:
    code = code_from_spec({"scheme": "hgc", "workers_per_edge": [3, 3], "s_e": 1, "s_w": 1})
    rng = np.random.default_rng(4)
    G = rng.normal(size=(code.K, 5))
    z = [
        np.asarray(code.worker_coefficients[0][j]) @ G[list(code.placement[0][j])] for j in range(3)
    ]
    z[2] = z[2] * 2.0
    verdict = integrity.check([0, 1, 2], z, 2, lambda ks: code.edge_decode_weights(0, ks))
    assert verdict.detected and verdict.liar is None and verdict.use == ()
    honest = [
        np.asarray(code.worker_coefficients[0][j]) @ G[list(code.placement[0][j])] for j in range(3)
    ]
    ok = integrity.check([0, 1, 2], honest, 2, lambda ks: code.edge_decode_weights(0, ks))
    assert ok.checked and not ok.detected
