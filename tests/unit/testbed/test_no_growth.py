"""No growth (issue 11): the master keeps no per-iteration history unless a trace is asked
for. Driven without sockets: the master's state machine over many iterations, and the
runner's handling of the per-iteration parameters."""

from __future__ import annotations

import gc
import tracemalloc

import numpy as np

from services.common.actions import ParamsUpdated
from services.master.service import MasterRunner
from tests.unit.services.test_master_state import _edge_grad, _running


def _retained_after(iterations: int) -> int:
    """Bytes still allocated after ``iterations`` iterations of a running master."""
    m = _running(iterations=10**6)
    gc.collect()
    tracemalloc.start()
    try:
        for t in range(iterations):
            m.handle(_edge_grad(0, t), 2.0 + t)
        gc.collect()
        current, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert m.attempt is not None and m.attempt.iteration == iterations  # all finished
    return current


def test_master_state_retains_nothing_per_iteration() -> None:
    small, large = _retained_after(200), _retained_after(2000)
    # 1800 more iterations; a record or a parameter vector kept per iteration would be
    # >= 100 bytes each (180 KB); allow 20 KB of noise
    assert large - small < 20_000, (small, large)


def test_runner_keeps_the_parameter_trace_only_when_asked() -> None:
    runner = MasterRunner.__new__(MasterRunner)  # only the trace bookkeeping is exercised
    runner.trace, runner.keep_trace, runner.record = [], False, None
    for t in range(100):
        runner.perform_extra(ParamsUpdated(t, np.zeros(1000)))
    assert runner.trace == []
    runner.keep_trace = True
    runner.perform_extra(ParamsUpdated(100, np.zeros(3)))
    assert [t for t, _ in runner.trace] == [100]
