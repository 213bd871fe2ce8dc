"""The ``restart`` fault: any node (the master included), optional ``duration_s``; the
schedule kills the node at its iteration and starts it again after ``duration_s``."""

from __future__ import annotations

from typing import Any

import pytest

from common.scenario import ScenarioError, parse_scenario
from hgc.testbed.faults import FaultSchedule


def scenario(*faults: dict[str, Any]) -> Any:
    return parse_scenario(
        {
            "topology": {"workers_per_edge": [2, 2]},
            "training": {"iterations": 10},
            "schemes": ["uncoded"],
            "faults": list(faults),
        }
    )


def test_restart_parses_for_every_tier_and_is_scheduled_as_kill_then_start() -> None:
    sc = scenario(
        {"iteration": 2, "node": "master", "action": "restart", "duration_s": 1.5},
        {"iteration": 3, "node": "edge-1", "action": "restart"},
        {"iteration": 4, "node": "worker-0-1", "action": "restart", "duration_s": 0.5},
    )
    assert [(f.node, f.action, f.duration_s) for f in sc.faults] == [
        ("master", "restart", 1.5),
        ("edge-1", "restart", None),
        ("worker-0-1", "restart", 0.5),
    ]
    schedule = FaultSchedule(sc.faults, {"master", "edge-1", "worker-0-1"})
    first = schedule.due(1, now=100.0)
    assert [(a.kind, a.node) for a in first] == [("kill", "master")]
    assert schedule.due(1, now=101.0) == []  # not yet
    assert [(a.kind, a.node) for a in schedule.due(1, now=101.6)] == [("start", "master")]
    both = schedule.due(2, now=200.0)  # iteration 3 starts: the edge goes and comes back
    assert [(a.kind, a.node) for a in both] == [("kill", "edge-1"), ("start", "edge-1")]


@pytest.mark.parametrize(
    "fault, field, message",
    [
        ({"iteration": 1, "node": "master", "action": "kill"}, "node", "can only restart"),
        (
            {"iteration": 1, "node": "edge-0", "action": "restart", "factor": 2.0},
            "factor",
            "only for action slow",
        ),
        ({"iteration": 1, "node": "edge-7", "action": "restart"}, "node", "no node"),
        (
            {"iteration": 1, "node": "edge-0", "action": "restart", "duration_s": -1},
            "duration_s",
            "",
        ),
    ],
)
def test_bad_restart_faults_name_the_field(fault: dict[str, Any], field: str, message: str) -> None:
    with pytest.raises(ScenarioError) as err:
        scenario(fault)
    assert err.value.field == f"faults[0].{field}"
    assert message in str(err.value)
