"""Restarts without sockets (issue 11): a restarted parent asks unknown children back
(Rejoin), children keep their set-up and answer it with Ready, a new run epoch orders
models after the old ones and drops the old epoch's answers; the master's checkpoint
round-trips exactly and refuses another run's file."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from common.runtime.messages import (
    EdgeGradient,
    EdgeSetup,
    ModelUpdate,
    Ready,
    Register,
    Rejoin,
    WorkerGradient,
    WorkerSetup,
)
from services.common.actions import (
    Compute,
    DataLoaded,
    Drop,
    PeerChanged,
    Received,
    SendDown,
    SendUp,
    Started,
    Tick,
)
from services.common.lifecycle import Rejoiner
from services.edge.state import EdgeState
from services.master import checkpoint
from services.master.state import MasterState, TrainingConfig
from services.worker.state import WorkerState
from tests.unit.services.fakes import FakeHierCode


def _sent(acts: list[Any], kind: type) -> list[Any]:
    return [a.msg for a in acts if isinstance(a, SendUp | SendDown) and isinstance(a.msg, kind)]


def _ready_worker() -> WorkerState:
    w = WorkerState(1, 0)
    w.handle(Started(), 0.0)
    setup = WorkerSetup(-1, 1, 0, (0,), np.ones(1), 2, {"kind": "d"}, {"kind": "m"})
    w.handle(Received("edge-1", setup), 0.1)
    w.handle(DataLoaded(10, 2), 0.2)
    return w


def test_rejoiner_asks_unknown_peers_once_per_retry_period() -> None:
    r = Rejoiner("edge-1", retry_s=2.0)
    known = {"worker-1-0"}.__contains__
    first = r.ask({"worker-1-0", "worker-1-1"}, known, 0.0)
    assert [a.to for a in first if isinstance(a, SendDown)] == ["worker-1-1"]
    assert r.ask({"worker-1-1"}, known, 1.0) == []  # within the retry period
    assert len(r.ask({"worker-1-1"}, known, 2.5)) == 1
    assert r.ask({"worker-1-1"}, lambda p: True, 9.0) == []  # registered now


def test_a_restarted_edge_asks_its_live_workers_back_and_they_become_ready() -> None:
    e = EdgeState(1, lambda spec: FakeHierCode())
    e.handle(Started(), 0.0)
    e.handle(Received("master", EdgeSetup(-1, 1, {"scheme": "f"}, {"kind": "d"}, {})), 0.0)
    e.handle(PeerChanged("worker-1-0", True), 0.1)
    e.handle(PeerChanged("worker-1-1", True), 0.1)
    asks = e.handle(Tick(), 0.2)
    assert sorted(a.to for a in asks if isinstance(a, SendDown)) == ["worker-1-0", "worker-1-1"]
    # the worker side: the Rejoin makes it register again, keeping its data
    w = _ready_worker()
    regs = _sent(w.handle(Received("edge-1", Rejoin(-1, "edge-1 restarted")), 1.0), Register)
    assert regs and regs[0].node == "worker-1-0"
    same = WorkerSetup(-1, 1, 0, (0,), np.ones(1), 2, {"kind": "d"}, {"kind": "m"})
    again = w.handle(Received("edge-1", same), 1.1)
    assert _sent(again, Ready), again  # ready again without reloading
    # without a Rejoin a repeated set-up is still just dropped
    assert isinstance(w.handle(Received("edge-1", same), 1.2)[0], Drop)


def test_a_new_epoch_orders_models_after_the_old_and_drops_old_answers() -> None:
    w = _ready_worker()
    assert isinstance(w.handle(Received("edge-1", ModelUpdate(7, np.zeros(2))), 1.0)[0], Compute)
    # the resumed master (epoch 1) restarts at iteration 5 < 7: a newer model all the same
    acts = w.handle(Received("edge-1", ModelUpdate(5, np.zeros(2), epoch=1)), 2.0)
    assert isinstance(acts[0], Compute) and w.epoch == 1
    late = w.handle(Received("edge-1", ModelUpdate(8, np.zeros(2), epoch=0)), 3.0)
    assert isinstance(late[0], Drop) and late[0].reason == "late"
    # an edge drops a worker vector of another epoch
    e = EdgeState(1, lambda spec: FakeHierCode())
    e.handle(Started(), 0.0)
    for j in (0, 1):
        n = f"worker-1-{j}"
        e.handle(Received(n, Register(-1, "worker", n, 1, j)), 0.0)
    e.handle(Received("master", EdgeSetup(-1, 1, {"scheme": "f"}, {"kind": "d"}, {})), 0.0)
    e.handle(Received("master", ModelUpdate(5, np.zeros(2), epoch=1)), 1.0)
    old = WorkerGradient(5, 1, 0, np.ones(2), 0.1, epoch=0)
    acts = e.handle(Received("worker-1-0", old), 1.1)
    assert isinstance(acts[0], Drop) and acts[0].reason == "late"
    new = WorkerGradient(5, 1, 0, np.ones(2), 0.1, epoch=1)
    assert all(
        g.epoch == 1 for g in _sent(e.handle(Received("worker-1-0", new), 1.2), EdgeGradient)
    )


def test_an_edge_answers_a_restarted_masters_setup_with_ready() -> None:
    e = EdgeState(1, lambda spec: FakeHierCode())
    e.handle(Started(), 0.0)
    for j in (0, 1):
        n = f"worker-1-{j}"
        e.handle(Received(n, Register(-1, "worker", n, 1, j)), 0.0)
    setup = EdgeSetup(-1, 1, {"scheme": "f"}, {"kind": "d"}, {})
    e.handle(Received("master", setup), 0.0)
    for j in (0, 1):
        e.handle(Received(f"worker-1-{j}", Ready(-1, f"worker-1-{j}", 1, j)), 0.5)
    e.handle(Received("master", ModelUpdate(9, np.zeros(2))), 1.0)
    regs = _sent(e.handle(Received("master", Rejoin(-1, "master restarted")), 2.0), Register)
    assert regs and regs[0].node == "edge-1"
    acts = e.handle(Received("master", dataclasses.replace(setup, epoch=1)), 2.1)
    assert _sent(acts, Ready) and e.epoch == 1
    # the resumed iteration 6 of epoch 1 is relayed to the workers
    relayed = e.handle(Received("master", ModelUpdate(6, np.zeros(2), epoch=1)), 2.2)
    assert len(_sent(relayed, ModelUpdate)) == 2


def _config() -> TrainingConfig:
    return TrainingConfig(
        code_spec={"scheme": "fake"},
        data_spec={"kind": "d"},
        model_spec={"kind": "m"},
        iterations=5,
        learning_rate=1.0,
        optimiser={"kind": "adam"},
    )


def _state() -> MasterState:
    return MasterState(_config(), FakeHierCode(), np.zeros(2), 2, lambda p: (0.0, 0.0))


def test_checkpoint_round_trip_resume_and_refusals(tmp_path: Path) -> None:
    path = tmp_path / "ckpt.npz"
    record = tmp_path / "record.jsonl"
    record.write_text('{"iteration": 0}\n')
    s = _state()
    s.params = np.array([0.1 + 1e-17, -3.0])
    s.optimiser.step(s.params, np.array([1.0, 2.0]), 2)
    s.next_iteration, s.epoch = 3, 2
    run = checkpoint.run_id(_config(), 0)
    ck = checkpoint.Checkpointer(path, 3, run)
    with open(record, "a") as f:
        ck.save_now(s, f, [(0, np.ones(2)), (1, np.ones(2)), (2, s.params)])
    with open(record, "a") as f:
        f.write('{"iteration": 3}\n')  # after the checkpoint: must go on resume
    fresh, trace = _state(), list[tuple[int, np.ndarray]]()
    line = checkpoint.Checkpointer(path, 3, run).resume(fresh, str(record), trace)
    assert line and "iteration 3" in line and "run epoch 3" in line
    assert fresh.next_iteration == 3 and fresh.epoch == 3
    np.testing.assert_array_equal(fresh.params, s.params)
    t, m, v = fresh.optimiser.state()
    assert t == 1 and m is not None and v is not None
    np.testing.assert_array_equal(m, s.optimiser.m)
    assert [i for i, _ in trace] == [0, 1, 2]
    assert record.read_text() == '{"iteration": 0}\n'
    assert not list(tmp_path.glob(".*.tmp"))  # the temporary file was renamed
    with pytest.raises(checkpoint.CheckpointError, match="another run"):
        checkpoint.Checkpointer(path, 3, "other").resume(_state(), None)
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(checkpoint.CheckpointError, match="unreadable"):
        checkpoint.load(path)
    assert checkpoint.load(tmp_path / "none.npz") is None


def test_master_resumes_at_the_checkpoint_iteration_with_its_epoch() -> None:
    m = _state()
    m.next_iteration, m.epoch = 3, 1
    m.handle(Started(), 0.0)
    for i in (0, 1):
        setups = _sent(
            m.handle(Received(f"edge-{i}", Register(-1, "edge", f"edge-{i}", i, -1)), 0.0),
            EdgeSetup,
        )
    assert setups and all(s.epoch == 1 for s in setups)
    m.handle(Received("edge-0", Ready(-1, "edge-0", 0, -1)), 1.0)
    models = _sent(m.handle(Received("edge-1", Ready(-1, "edge-1", 1, -1)), 1.0), ModelUpdate)
    assert [(u.iteration, u.epoch) for u in models] == [(3, 1), (3, 1)]
    old = EdgeGradient(3, 0, np.ones(2), (0,), 0.1, 0.0, epoch=0)
    acts = m.handle(Received("edge-0", old), 1.5)
    assert isinstance(acts[0], Drop) and acts[0].reason == "late"


def test_a_restarted_master_asks_unregistered_edges_back() -> None:
    m = _state()
    m.handle(Started(), 0.0)
    m.handle(PeerChanged("edge-0", True), 0.1)
    asks = _sent(m.handle(Tick(), 0.2), Rejoin)
    assert len(asks) == 1


@pytest.mark.parametrize("reader", ["idx", "npz"])
def test_data_files_that_are_devices_or_over_the_cap_are_refused(
    reader: str, tmp_path: Path
) -> None:
    from common.learning import idx, npz
    from common.learning.errors import LearningSpecError

    read = (lambda p: idx.read_idx(p)) if reader == "idx" else (lambda p: npz.npz_shape(p, "X"))
    with pytest.raises(LearningSpecError, match="not a regular file"):
        read(Path("/dev/zero"))
    big = tmp_path / "big.bin"
    big.write_bytes(b"\0" * 64)
    with pytest.raises(LearningSpecError, match="more than the cap of 16 bytes"):
        idx.check_data_file(big, "path", max_bytes=16)


def test_after_a_rejoin_an_identical_setup_is_answered_with_ready() -> None:
    """A master restarted without a checkpoint may send the very same set-up: the edge must
    still pass its barrier (and drop it as a repeat without the master's Rejoin)."""
    e = EdgeState(1, lambda spec: FakeHierCode())
    e.handle(Started(), 0.0)
    for j in (0, 1):
        n = f"worker-1-{j}"
        e.handle(Received(n, Register(-1, "worker", n, 1, j)), 0.0)
    setup = EdgeSetup(-1, 1, {"scheme": "f"}, {"kind": "d"}, {})
    e.handle(Received("master", setup), 0.0)
    for j in (0, 1):
        e.handle(Received(f"worker-1-{j}", Ready(-1, f"worker-1-{j}", 1, j)), 0.5)
    assert isinstance(e.handle(Received("master", setup), 0.6)[0], Drop)
    e.handle(Received("master", Rejoin(-1, "master restarted")), 1.0)
    assert _sent(e.handle(Received("master", setup), 1.1), Ready)
