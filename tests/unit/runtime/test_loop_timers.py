"""``transport.Loop``'s wait: zmq polls whole milliseconds, so the loop polls the whole
milliseconds before a timer *rounded down* and sleeps the sub-millisecond rest; the old rule
(round up) released a timer up to 1 ms late. Fake poller and clock, no sockets."""

from __future__ import annotations

import pytest

from common.runtime import transport
from common.runtime.transport import Loop


class FakePoller:
    def __init__(self, ready: list[tuple[object, int]] | None = None) -> None:
        self.calls: list[int] = []
        self.ready = ready or []

    def poll(self, timeout_ms: int) -> list[tuple[object, int]]:
        self.calls.append(timeout_ms)
        return self.ready


def make_loop(poller: FakePoller, precise: bool) -> Loop:
    loop = Loop.__new__(Loop)  # only _wait is exercised: no endpoints needed
    loop._poller = poller  # type: ignore[assignment]
    loop.precise_timers = precise
    return loop


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    slept: list[float] = []
    monkeypatch.setattr(transport.time, "sleep", slept.append)
    return slept


@pytest.mark.parametrize(
    ("rest_s", "polls", "slept"),
    [
        (0.0017, [1], []),  # whole ms down: never past the timer
        (0.0004, [0], [0.0004]),  # sub-ms rest: look at the sockets, then sleep it
        (0.0, [0], []),
        (-0.01, [0], []),  # overdue: no wait
        (0.25, [250], []),
    ],
)
def test_precise_wait_never_overshoots(
    sleeps: list[float], rest_s: float, polls: list[int], slept: list[float]
) -> None:
    poller = FakePoller()
    make_loop(poller, precise=True)._wait(rest_s)
    assert poller.calls == polls
    assert sleeps == pytest.approx(slept)
    # what the wait asks for never exceeds the rest (a timer is never released late by it)
    assert sum(poller.calls) / 1000 + sum(sleeps) <= max(rest_s, 0.0) + 1e-12


def test_input_ready_is_not_slept_on(sleeps: list[float]) -> None:
    poller = FakePoller(ready=[("sock", 1)])
    ready = make_loop(poller, precise=True)._wait(0.0004)
    assert ready == {"sock": 1}
    assert sleeps == []


def test_control_old_rule_rounds_up(sleeps: list[float]) -> None:
    """The control: the old rule asked zmq for up to 1 ms more than the rest."""
    poller = FakePoller()
    make_loop(poller, precise=False)._wait(0.0004)
    assert poller.calls == [1]  # 0.6 ms past the timer
    make_loop(poller, precise=False)._wait(0.0017)
    assert poller.calls == [1, 2]
