"""The fault schedule as data: what is due when, undo after duration, unselected nodes noted."""

from __future__ import annotations

from common.scenario import Fault
from hgc.testbed.faults import FaultSchedule

SELECTED = {"master", "edge-0", "edge-1", "worker-0-0", "worker-1-1"}


def test_faults_fire_at_the_start_of_their_iteration() -> None:
    sched = FaultSchedule([Fault(3, "worker-1-1", "kill")], SELECTED)
    assert sched.due(-1, 0.0) == []
    assert sched.due(1, 0.0) == []
    actions = sched.due(2, 0.0)  # iteration 2 recorded: iteration 3 starts
    assert [(a.kind, a.node) for a in actions] == [("kill", "worker-1-1")]
    assert sched.due(5, 0.0) == []


def test_iteration_zero_fires_before_any_record() -> None:
    sched = FaultSchedule([Fault(0, "edge-1", "pause", duration_s=2.0)], SELECTED)
    assert [a.kind for a in sched.due(-1, 10.0)] == ["pause"]
    assert sched.due(0, 11.0) == []
    assert [a.kind for a in sched.due(1, 12.5)] == ["resume"]


def test_slow_until_the_end_has_no_undo() -> None:
    sched = FaultSchedule([Fault(1, "worker-0-0", "slow", factor=4.0)], SELECTED)
    (action,) = sched.due(0, 0.0)
    assert action.kind == "slow" and action.factor == 4.0
    assert sched.undo == []


def test_unselected_node_is_noted_not_skipped() -> None:
    sched = FaultSchedule([Fault(0, "worker-3-0", "kill")], SELECTED)
    (note,) = sched.due(-1, 0.0)
    assert note.kind == "note" and "not in this scheme's plan" in note.text


def test_drift_faults_are_actions_for_the_kernel_emulation_at_their_iteration() -> None:
    faults = [
        Fault(4, "worker-0-0", "set-device", device="rpi3"),
        Fault(4, "edge-1", "set-link", link="cellular"),
    ]
    sched = FaultSchedule(faults, SELECTED)
    assert sched.due(2, 0.0) == []  # iteration 3 starts: not yet
    actions = sched.due(3, 0.0)  # iteration 4 starts
    assert [(a.kind, a.node, a.text) for a in actions] == [
        ("set-device", "worker-0-0", "rpi3"),
        ("set-link", "edge-1", "cellular"),
    ]
