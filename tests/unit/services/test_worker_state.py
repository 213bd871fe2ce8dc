"""The worker's state machine, driven without sockets."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from common.runtime.messages import (
    LateAnswer,
    ModelUpdate,
    Ready,
    Register,
    Shutdown,
    WorkerSetup,
)
from services.common.actions import (
    Compute,
    DataLoaded,
    Drop,
    Exit,
    GradientDone,
    LoadData,
    PeerChanged,
    Received,
    SendUp,
    Started,
    Tick,
)
from services.worker.state import WorkerState


def _setup(edge: int = 0, worker: int = 1) -> WorkerSetup:
    return WorkerSetup(
        -1, edge, worker, (0, 1), np.array([1.0, 2.0]), 4, {"kind": "digits"}, {"kind": "logreg"},
        {"worker-0-1": {"compute_delay_s": 0.5}, "worker-0-0": {"x": 1}},
    )  # fmt: skip


def _ready_worker() -> WorkerState:
    w = WorkerState(0, 1)
    w.handle(Started(), 0.0)
    w.handle(Received("edge-0", _setup()), 0.0)
    w.handle(DataLoaded(10), 0.0)
    return w


def test_registers_loads_own_partitions_then_ready() -> None:
    w = WorkerState(0, 1)
    (reg,) = w.handle(Started(), 0.0)
    assert isinstance(reg, SendUp) and isinstance(reg.msg, Register)
    assert (reg.msg.node, reg.msg.edge, reg.msg.worker) == ("worker-0-1", 0, 1)
    (load,) = w.handle(Received("edge-0", _setup()), 0.1)
    assert isinstance(load, LoadData)
    assert load.partitions == (0, 1) and load.n_partitions == 4
    assert load.emulation == {"compute_delay_s": 0.5}  # only its own profile
    acts = w.handle(DataLoaded(10), 0.2)
    assert any(isinstance(a, SendUp) and isinstance(a.msg, Ready) for a in acts)


def test_setup_for_another_worker_is_dropped() -> None:
    w = WorkerState(0, 0)
    (drop,) = w.handle(Received("edge-0", _setup(worker=1)), 0.0)
    assert isinstance(drop, Drop) and drop.reason == "unknown_peer"


def test_model_before_setup_is_dropped() -> None:
    w = WorkerState(0, 1)
    (drop,) = w.handle(Received("edge-0", ModelUpdate(0, np.zeros(3))), 0.0)
    assert isinstance(drop, Drop) and drop.reason == "late"


def test_computes_then_sends_one_vector() -> None:
    w = _ready_worker()
    (comp,) = w.handle(Received("edge-0", ModelUpdate(3, np.zeros(3))), 1.0)
    assert isinstance(comp, Compute) and comp.iteration == 3
    acts = w.handle(GradientDone(3, np.ones(3), 0.25), 1.5)
    sent: list[Any] = [a.msg for a in acts if isinstance(a, SendUp)]
    assert len(sent) == 1 and sent[0].iteration == 3 and sent[0].compute_s == 0.25


def test_stale_result_and_old_model_are_dropped_as_late() -> None:
    w = _ready_worker()
    w.handle(Received("edge-0", ModelUpdate(3, np.zeros(3))), 1.0)
    w.handle(Received("edge-0", ModelUpdate(4, np.zeros(3))), 1.1)
    drop, timing = w.handle(GradientDone(3, np.ones(3), 0.2), 1.2)
    assert isinstance(drop, Drop) and drop.reason == "late"
    # the vector is not sent, only its timing (hgc-adaptive measures slow workers by it)
    assert isinstance(timing, SendUp) and isinstance(timing.msg, LateAnswer)
    (drop2,) = w.handle(Received("edge-0", ModelUpdate(2, np.zeros(3))), 1.3)
    assert isinstance(drop2, Drop) and drop2.reason == "late"
    # negative control: the current iteration's result is sent
    assert any(isinstance(a, SendUp) for a in w.handle(GradientDone(4, np.ones(3), 0.2), 1.4))


def test_ticks_and_liveness_need_no_action() -> None:
    w = WorkerState(0, 1)
    assert w.handle(Tick(), 0.5) == []
    assert w.handle(PeerChanged("edge-0", False), 0.5) == []


def test_shutdown_exits_zero() -> None:
    w = _ready_worker()
    acts = w.handle(Received("edge-0", Shutdown(-1, "done")), 2.0)
    assert Exit(0) in acts


def test_bad_indices_rejected() -> None:
    with pytest.raises(ValueError, match="edge and worker must be >= 0"):
        WorkerState(-1, 0)


def test_model_of_the_wrong_length_is_dropped_as_malformed() -> None:
    w = WorkerState(0, 1)
    w.handle(Received("edge-0", _setup()), 0.0)
    w.handle(DataLoaded(10, n_params=4), 0.0)
    (drop,) = w.handle(Received("edge-0", ModelUpdate(0, np.zeros(3))), 1.0)
    assert isinstance(drop, Drop) and drop.reason == "malformed"
    (comp,) = w.handle(Received("edge-0", ModelUpdate(0, np.zeros(4))), 1.0)
    assert isinstance(comp, Compute)


def test_a_worker_without_its_setup_registers_again_until_it_comes() -> None:
    # a set-up lost on the way (e.g. a connection replaced during start-up) must not stall the
    # Ready barrier: the worker asks again every SETUP_RETRY_S until a set-up arrives
    from common.runtime.messages import SETUP_RETRY_S

    w = WorkerState(0, 1)
    w.handle(Started(), 0.0)
    assert w.handle(Tick(), SETUP_RETRY_S / 2) == []
    (again,) = w.handle(Tick(), SETUP_RETRY_S + 0.01)
    assert isinstance(again, SendUp) and isinstance(again.msg, Register)
    assert w.handle(Tick(), SETUP_RETRY_S + 0.02) == []  # not every tick: once per period
    (load,) = w.handle(Received("edge-0", _setup()), 5.0)
    assert isinstance(load, LoadData)
    assert w.handle(Tick(), 50.0) == []  # set up: no more registers
    # the answer to a register that crossed the first set-up: dropped, data not loaded twice
    (dup,) = w.handle(Received("edge-0", _setup()), 50.1)
    assert isinstance(dup, Drop) and dup.reason == "late"
    # a different set-up (a restarted edge, a new code) is taken
    other = WorkerSetup(
        -1, 0, 1, (2, 3), np.array([1.0, 1.0]), 4, {"kind": "digits"}, {"kind": "logreg"}, {}
    )
    (load2,) = w.handle(Received("edge-0", other), 50.2)
    assert isinstance(load2, LoadData) and load2.partitions == (2, 3)
