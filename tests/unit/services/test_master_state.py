"""The master's state machine, driven without sockets, with a fake code."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from common.runtime.messages import (
    EdgeGradient,
    EdgeSetup,
    IterationFailed,
    ModelUpdate,
    Ready,
    Register,
    Shutdown,
    WorkerGradient,
)
from services.common.actions import (
    Drop,
    Exit,
    ParamsUpdated,
    Received,
    Record,
    SendDown,
    Started,
    Tick,
)
from services.master.state import MasterState, TrainingConfig
from tests.unit.services.fakes import FakeFlatCode, FakeHierCode


def _config(**kw: Any) -> TrainingConfig:
    base: dict[str, Any] = dict(
        code_spec={"scheme": "fake"},
        data_spec={"kind": "d"},
        model_spec={"kind": "m"},
        emulation_spec={"edge-0": {"a": 1}, "worker-1-0": {"b": 2}},
        iterations=3,
        learning_rate=1.0,
        deadline_s=5.0,
    )
    base.update(kw)
    return TrainingConfig(**base)


def _master(code: Any = None, **kw: Any) -> MasterState:
    m = MasterState(
        _config(**kw), code or FakeHierCode(), np.zeros(2), 2, lambda p: (float(p[0]) ** 2, 0.5)
    )
    m.handle(Started(), 0.0)
    return m


def _running(code: Any = None, **kw: Any) -> MasterState:
    m = _master(code, **kw)
    for i in (0, 1):
        m.handle(Received(f"edge-{i}", Register(-1, "edge", f"edge-{i}", i, -1)), 0.0)
    for i in (0, 1):
        m.handle(Received(f"edge-{i}", Ready(-1, f"edge-{i}", i, -1)), 1.0)
    return m


def _edge_grad(i: int, t: int, value: float = 2.0) -> Received:
    msg = EdgeGradient(t, i, np.full(2, value), (0,), 0.1, 0.0, (0.1, -1.0))
    return Received(f"edge-{i}", msg)


def test_setup_sent_when_all_edges_registered_with_their_emulation() -> None:
    m = _master()
    acts = m.handle(Received("edge-1", Register(-1, "edge", "edge-1", 1, -1)), 0.0)
    assert not any(isinstance(a, SendDown) for a in acts)
    acts = m.handle(Received("edge-0", Register(-1, "edge", "edge-0", 0, -1)), 0.0)
    setups: list[Any] = [a for a in acts if isinstance(a, SendDown)]
    assert [s.to for s in setups] == ["edge-0", "edge-1"]
    assert all(isinstance(s.msg, EdgeSetup) for s in setups)
    assert setups[0].msg.emulation_spec == {"edge-0": {"a": 1}}
    assert setups[1].msg.emulation_spec == {"worker-1-0": {"b": 2}}


def test_register_out_of_range_or_spoofed_is_dropped() -> None:
    m = _master()
    (drop,) = m.handle(Received("edge-7", Register(-1, "edge", "edge-7", 7, -1)), 0.0)
    assert isinstance(drop, Drop) and drop.reason == "unknown_peer"
    (drop,) = m.handle(Received("edge-1", Register(-1, "edge", "edge-0", 0, -1)), 0.0)
    assert isinstance(drop, Drop)


def test_iteration_starts_after_ready_barrier() -> None:
    m = _master()
    for i in (0, 1):
        m.handle(Received(f"edge-{i}", Register(-1, "edge", f"edge-{i}", i, -1)), 0.0)
    assert m.handle(Received("edge-0", Ready(-1, "edge-0", 0, -1)), 1.0) == []
    acts = m.handle(Received("edge-1", Ready(-1, "edge-1", 1, -1)), 1.0)
    models = [a.msg for a in acts if isinstance(a, SendDown)]
    assert len(models) == 2 and all(isinstance(x, ModelUpdate) and x.iteration == 0 for x in models)


def test_decodes_from_first_edge_and_steps_mean_gradient() -> None:
    m = _running()
    acts = m.handle(_edge_grad(1, 0, value=2.0), 1.5)
    (pu,) = [a for a in acts if isinstance(a, ParamsUpdated)]
    np.testing.assert_allclose(pu.params, [-1.0, -1.0])  # 0 - 1.0 * 2 / n_train(2)
    (rec,) = [a.row for a in acts if isinstance(a, Record)]
    assert rec["ok"] and rec["iteration"] == 0 and rec["attempt"] == 0
    assert rec["edges_used"] == ["edge-1"] and rec["edge_stragglers"] == ["edge-0"]
    assert rec["worker_arrivals_s"] == {"worker-1-0": 0.1}
    assert rec["worker_stragglers"] == ["worker-1-1"]
    assert rec["loss"] == 1.0 and rec["accuracy"] == 0.5
    assert rec["edge_wait_s"] == pytest.approx(0.5) and rec["error"] is None
    nxt = [a.msg for a in acts if isinstance(a, SendDown)]
    assert [x.iteration for x in nxt] == [1, 1]
    # the straggling edge answers iteration 0 late: dropped, not used
    (drop,) = m.handle(_edge_grad(0, 0), 1.6)
    assert isinstance(drop, Drop) and drop.reason == "late"


def test_runs_n_iterations_then_shuts_down_cleanly() -> None:
    m = _running()
    acts: list[Any] = []
    for t in range(3):
        acts = m.handle(_edge_grad(0, t), 2.0 + t)
    assert [a.msg.op for a in acts if isinstance(a, SendDown)] == ["shutdown", "shutdown"]
    assert Exit(0, "finished 3 iterations") in acts


def test_target_loss_stops_early() -> None:
    m = _running(target_loss=2.0)
    acts = m.handle(_edge_grad(0, 0), 2.0)  # params -> -1, loss 1.0 <= 2.0
    assert any(isinstance(a, Exit) and a.status == 0 and "target loss" in a.message for a in acts)


def test_flat_scheme_decodes_from_first_m_minus_s_worker_vectors() -> None:
    m = _running(FakeFlatCode())
    for j, (i, w) in enumerate([(0, 0), (1, 1)]):
        msg = WorkerGradient(0, i, w, np.ones(2), 0.1)
        assert not any(isinstance(a, Record) for a in m.handle(Received(f"edge-{i}", msg), 1.1 + j))
    acts = m.handle(Received("edge-1", WorkerGradient(0, 1, 0, np.ones(2), 0.1)), 1.3)
    (rec,) = [a.row for a in acts if isinstance(a, Record)]
    assert rec["worker_stragglers"] == ["worker-0-1"]
    np.testing.assert_allclose(m.params, [-1.5, -1.5])


def test_worker_vector_relayed_by_the_wrong_edge_is_dropped() -> None:
    m = _running(FakeFlatCode())
    (drop,) = m.handle(Received("edge-0", WorkerGradient(0, 1, 0, np.ones(2), 0.1)), 1.1)
    assert isinstance(drop, Drop) and drop.reason == "unknown_peer"


def _fail(m: MasterState) -> list[Any]:
    m.handle(Received("edge-0", IterationFailed(0, 0, (0, 1), "edge-0: dead workers")), 2.0)
    assert m.handle(Tick(), 5.9) == []  # deadline 5 s after the model went out at 1.0
    return m.handle(Tick(), 6.1)


def test_deadline_stop_names_missing_edges_and_workers() -> None:
    m = _running(on_failure="stop")
    acts = _fail(m)
    (rec,) = [a.row for a in acts if isinstance(a, Record)]
    assert not rec["ok"] and "edge-0" in rec["error"] and "edge-1" in rec["error"]
    assert "worker-0-0, worker-0-1" in rec["error"]
    (ex,) = [a for a in acts if isinstance(a, Exit)]
    assert ex.status == 1 and "missing edges" in ex.message
    assert [a.msg.op for a in acts if isinstance(a, SendDown)] == ["shutdown", "shutdown"]
    assert isinstance([a for a in acts if isinstance(a, SendDown)][0].msg, Shutdown)


def test_deadline_retry_resends_same_iteration_then_gives_up() -> None:
    m = _running(on_failure="retry", max_retries=1)
    acts = _fail(m)
    models = [a.msg for a in acts if isinstance(a, SendDown)]
    assert [x.iteration for x in models] == [0, 0] and m.attempt and m.attempt.attempt == 1
    acts = m.handle(Tick(), 11.2)
    assert any(isinstance(a, Exit) and a.status == 1 and "gave up" in a.message for a in acts)


def test_deadline_skip_moves_on_without_update() -> None:
    m = _running(on_failure="skip")
    acts = _fail(m)
    (pu,) = [a for a in acts if isinstance(a, ParamsUpdated)]
    np.testing.assert_array_equal(pu.params, [0.0, 0.0])
    assert [a.msg.iteration for a in acts if isinstance(a, SendDown)] == [1, 1]


def test_bad_config_names_the_field() -> None:
    with pytest.raises(ValueError, match="on_failure"):
        _config(on_failure="pray")
    with pytest.raises(ValueError, match="iterations"):
        _config(iterations=0)


def test_edge_vector_of_the_wrong_shape_is_dropped_not_decoded() -> None:
    m = _running()
    msg = EdgeGradient(0, 1, np.ones(5), (0,), 0.1, 0.0, (0.1, -1.0))
    (drop,) = m.handle(Received("edge-1", msg), 1.5)
    assert isinstance(drop, Drop) and drop.reason == "malformed"
    assert m.attempt is not None and m.attempt.edge_vectors == []
