"""The edge's state machine, driven without sockets, with a fake code."""

from __future__ import annotations

from typing import Any

import numpy as np

from common.runtime.messages import (
    EdgeGradient,
    EdgeSetup,
    IterationFailed,
    ModelUpdate,
    Ready,
    Register,
    Shutdown,
    WorkerGradient,
    WorkerSetup,
)
from services.common.actions import (
    Drop,
    Exit,
    Log,
    PeerChanged,
    Received,
    SendDown,
    SendUp,
    Started,
    Tick,
)
from services.edge.state import EdgeState
from tests.unit.services.fakes import FakeFlatCode, FakeHierCode


def _edge(code: Any = None) -> EdgeState:
    code = code or FakeHierCode()
    e = EdgeState(1, lambda spec: code)
    e.handle(Started(), 0.0)
    return e


def _register(e: EdgeState, j: int, now: float = 0.0) -> list[Any]:
    node = f"worker-1-{j}"
    return e.handle(Received(node, Register(-1, "worker", node, 1, j)), now)


def _setup_msg() -> EdgeSetup:
    return EdgeSetup(-1, 1, {"scheme": "fake"}, {"kind": "d"}, {"kind": "m"}, {"worker-1-0": {}})


def _running(code: Any = None) -> EdgeState:
    e = _edge(code)
    _register(e, 0)
    _register(e, 1)
    e.handle(Received("master", _setup_msg()), 0.0)
    e.handle(Received("worker-1-0", Ready(-1, "worker-1-0", 1, 0)), 9.5)
    e.handle(Received("worker-1-1", Ready(-1, "worker-1-1", 1, 1)), 9.5)
    e.handle(Received("master", ModelUpdate(0, np.zeros(2))), 10.0)
    return e


def _grad(j: int, t: int = 0, value: float = 1.0) -> Received:
    return Received(f"worker-1-{j}", WorkerGradient(t, 1, j, np.full(2, value), 0.1))


def test_setup_waits_for_all_workers_then_sends_each_its_partitions() -> None:
    e = _edge()
    _register(e, 0)
    acts = e.handle(Received("master", _setup_msg()), 0.1)
    assert not any(isinstance(a, SendDown) for a in acts)  # worker 1 not registered yet
    acts = _register(e, 1)
    setups: list[Any] = [a for a in acts if isinstance(a, SendDown)]
    assert [s.to for s in setups] == ["worker-1-0", "worker-1-1"]
    assert all(isinstance(s.msg, WorkerSetup) for s in setups)
    assert setups[1].msg.partitions == (1,)
    assert setups[0].msg.emulation_spec == {"worker-1-0": {}}
    assert setups[1].msg.emulation_spec == {}


def test_ready_goes_up_only_when_all_workers_ready() -> None:
    e = _edge()
    _register(e, 0)
    _register(e, 1)
    e.handle(Received("master", _setup_msg()), 0.0)
    assert e.handle(Received("worker-1-0", Ready(-1, "worker-1-0", 1, 0)), 0.0) == []
    (up,) = e.handle(Received("worker-1-1", Ready(-1, "worker-1-1", 1, 1)), 0.0)
    assert isinstance(up, SendUp) and isinstance(up.msg, Ready) and up.msg.node == "edge-1"


def test_register_with_wrong_identity_is_dropped() -> None:
    e = _edge()
    msg = Register(-1, "worker", "worker-1-0", 1, 0)
    (drop,) = e.handle(Received("worker-9-9", msg), 0.0)
    assert isinstance(drop, Drop) and drop.reason == "unknown_peer"


def test_relays_model_and_decodes_from_first_needed_worker() -> None:
    e = _edge()
    _register(e, 0)
    _register(e, 1)
    e.handle(Received("master", _setup_msg()), 0.0)
    acts = e.handle(Received("master", ModelUpdate(0, np.zeros(2))), 10.0)
    assert [a.to for a in acts if isinstance(a, SendDown)] == ["worker-1-0", "worker-1-1"]
    acts = e.handle(_grad(1, value=3.0), 10.5)
    (up,) = [a for a in acts if isinstance(a, SendUp)]
    assert isinstance(up.msg, EdgeGradient)
    assert up.msg.responders == (1,) and up.msg.wait_s == 0.5
    assert up.msg.worker_arrivals_s == (-1.0, 0.5)
    np.testing.assert_array_equal(up.msg.vector, [3.0, 3.0])
    # the straggler's vector arrives later: no second EdgeGradient
    assert not any(isinstance(a, SendUp) for a in e.handle(_grad(0), 11.0))


def test_late_and_duplicate_vectors_are_dropped() -> None:
    e = _running(FakeHierCode(s_w=0))
    e.handle(_grad(0), 10.1)
    (dup,) = e.handle(_grad(0), 10.2)
    assert isinstance(dup, Drop) and dup.reason == "late"
    e.handle(Received("master", ModelUpdate(1, np.zeros(2))), 11.0)
    (late,) = e.handle(_grad(1, t=0), 11.1)
    assert isinstance(late, Drop) and late.reason == "late"
    (old,) = e.handle(Received("master", ModelUpdate(0, np.zeros(2))), 11.2)
    assert isinstance(old, Drop) and old.reason == "late"


def test_vector_from_unregistered_peer_is_dropped() -> None:
    e = _running()
    (drop,) = e.handle(Received("intruder", WorkerGradient(0, 1, 0, np.ones(2), 0.1)), 10.1)
    assert isinstance(drop, Drop) and drop.reason == "unknown_peer"


def test_flat_scheme_relays_every_worker_vector() -> None:
    e = _running(FakeFlatCode())
    ups: list[Any] = [a for j in (0, 1) for a in e.handle(_grad(j), 10.1) if isinstance(a, SendUp)]
    assert [u.msg.worker for u in ups] == [0, 1]
    assert all(isinstance(u.msg, WorkerGradient) for u in ups)


def test_dead_workers_beyond_tolerance_reported_to_master() -> None:
    e = _running()  # needs 1 of 2
    acts = e.handle(PeerChanged("worker-1-0", False), 11.0)
    assert not any(isinstance(a, SendUp) for a in acts)  # one dead is within tolerance
    acts = e.handle(PeerChanged("worker-1-1", False), 12.0)
    (failed,) = [a.msg for a in acts if isinstance(a, SendUp)]
    assert isinstance(failed, IterationFailed)
    assert failed.missing_workers == (0, 1) and "worker-1-0, worker-1-1" in failed.reason
    assert e.handle(Tick(), 13.0) == []  # reported once


def test_dead_worker_that_already_answered_is_not_missing() -> None:
    e = _running(FakeHierCode(s_w=0))  # needs both
    e.handle(_grad(0), 10.1)
    e.handle(PeerChanged("worker-1-0", False), 10.2)
    assert not any(isinstance(a, SendUp) for a in e.handle(Tick(), 10.3))
    (failed,) = [
        a.msg for a in e.handle(PeerChanged("worker-1-1", False), 10.4) if isinstance(a, SendUp)
    ]
    assert isinstance(failed, IterationFailed) and failed.missing_workers == (1,)


def test_shutdown_goes_down_and_exits() -> None:
    e = _running()
    acts = e.handle(Received("master", Shutdown(-1, "done")), 20.0)
    assert [a.to for a in acts if isinstance(a, SendDown)] == ["worker-1-0", "worker-1-1"]
    assert Exit(0) in acts


def test_worker_index_beyond_the_code_is_forgotten_at_setup() -> None:
    e = _edge()
    for j in (0, 1, 5):
        _register(e, j)
    acts = e.handle(Received("master", _setup_msg()), 0.0)
    assert sorted(a.to for a in acts if isinstance(a, SendDown)) == ["worker-1-0", "worker-1-1"]
    assert 5 not in e.registered
    (drop,) = _register(e, 7)
    assert isinstance(drop, Drop) and drop.reason == "unknown_peer"


def test_vector_of_the_wrong_shape_or_dtype_is_dropped_as_malformed() -> None:
    e = _running()
    bad: list[np.ndarray] = [np.ones(3), np.ones(2, dtype=np.float32), np.ones((2, 1))]
    for v in bad:
        (drop,) = e.handle(Received("worker-1-0", WorkerGradient(0, 1, 0, v, 0.1)), 10.1)
        assert isinstance(drop, Drop) and drop.reason == "malformed"
    # negative control: the right shape is accepted and decoded
    assert any(isinstance(a, SendUp) for a in e.handle(_grad(0), 10.2))


def test_an_edge_without_its_setup_registers_again_and_answers_re_registers() -> None:
    from common.runtime.messages import SETUP_RETRY_S

    e = _edge()  # Started at 0.0
    assert not any(isinstance(a, SendUp) for a in e.handle(Tick(), SETUP_RETRY_S / 2))
    again = [a for a in e.handle(Tick(), SETUP_RETRY_S + 0.01) if isinstance(a, SendUp)]
    assert len(again) == 1 and isinstance(again[0].msg, Register)
    # a worker registering twice before the set-up is logged once
    first = _register(e, 0)
    assert [a for a in _register(e, 0) if isinstance(a, Log)] == []
    assert any(isinstance(a, Log) for a in first)
    _register(e, 1)
    acts = e.handle(Received("master", _setup_msg()), 3.0)
    assert [a.to for a in acts if isinstance(a, SendDown)] == ["worker-1-0", "worker-1-1"]
    assert not any(isinstance(a, SendUp) for a in e.handle(Tick(), 60.0))  # set up: quiet
    # a repeated set-up from the master is dropped, not rebuilt and re-sent
    (dup,) = e.handle(Received("master", _setup_msg()), 60.1)
    assert isinstance(dup, Drop) and dup.reason == "late"
    # a worker whose set-up was lost registers again: it gets its set-up again
    resent = [a for a in _register(e, 1, 61.0) if isinstance(a, SendDown)]
    assert [a.to for a in resent] == ["worker-1-1"] and isinstance(resent[0].msg, WorkerSetup)
