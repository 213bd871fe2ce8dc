"""True names (services.master.naming, services.common.names): the position -> scenario name
table is validated naming the field, record rows and log lines are translated, metric labels
move from positions to scenario indices, and a hostile name is ignored, not labelled."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry

from common.runtime.metrics import EdgeMetrics, MasterMetrics, WorkerMetrics
from services.common import names
from services.master.naming import NodeNames, check_names
from services.master.progress import iteration_line
from services.master.service import mark_selection

# hgc-jncss kept edges 1 and 3; of edge 1 workers 0 and 2
TABLE = {
    "edge-0": "edge-1",
    "edge-1": "edge-3",
    "worker-0-0": "worker-1-0",
    "worker-0-1": "worker-1-2",
    "worker-1-0": "worker-3-0",
}
LEFT_OUT = ["edge-0", "edge-2", "worker-0-0", "worker-1-1", "worker-2-0"]


def test_a_valid_table_is_accepted_and_positions_translate() -> None:
    table, left = check_names(TABLE, LEFT_OUT, [2, 1])
    n = NodeNames(table, left)
    assert n.edge_label(1) == "3" and n.name("worker-0-1") == "worker-1-2"
    row = {
        "edges_used": ["edge-1"],
        "edge_stragglers": ["edge-0"],
        "edge_arrivals_s": {"edge-1": 0.1},
        "worker_arrivals_s": {"worker-0-0": 0.05},
        "worker_stragglers": ["worker-0-1"],
        "refused": [],
        "liars": [],
        "error": "iteration 3 failed: waited for edge-0 (worker-0-1)",
    }
    out = n.row(row)
    assert out["edges_used"] == ["edge-3"] and out["edge_stragglers"] == ["edge-1"]
    assert out["worker_arrivals_s"] == {"worker-1-0": 0.05}
    assert out["worker_stragglers"] == ["worker-1-2"] and out["names"] == "scenario"
    assert out["error"] == "iteration 3 failed: waited for edge-1 (worker-1-2)"
    header = n.header("hgc")
    assert header["left_out"] == LEFT_OUT and "worker-1-2" in header["selected"]
    line = iteration_line({**out, "iteration": 3, "ok": True, "duration_s": 0.25})
    assert line.startswith("INFO master: iteration 3 ok 0.250 s")
    assert "edges used: edge-3" in line and "stragglers: edge-1,worker-1-2" in line


def test_no_table_means_positions_are_the_names() -> None:
    n = NodeNames()
    row = {"worker_stragglers": ["worker-0-1"]}
    assert n.row(row) == row and not n.scenario and n.text("edge-0 x") == "edge-0 x"


@pytest.mark.parametrize(
    ("table", "left_out", "field"),
    [
        (
            {**TABLE, "worker-0-1": "worker-2-1"},
            [],
            r"names\['worker-0-1'\]: must be a worker of edge-1",
        ),
        ({**TABLE, "edge-1": "worker-3-0"}, [], r"names\['edge-1'\]: must be edge-<i>"),
        ({k: v for k, v in TABLE.items() if k != "worker-1-0"}, [], r"config\.names: .*missing"),
        ({**TABLE, "worker-0-1": "worker-1-0"}, [], r"config\.names: two positions"),
        (TABLE, ["edge-1"], r"config\.left_out: \['edge-1'\] are used"),
        (TABLE, ["node-9"], r"config\.left_out: 'node-9'"),
        ({}, ["edge-0"], r"config\.left_out: needs config\.names"),
    ],
)
def test_a_bad_table_names_the_field(table: dict, left_out: list, field: str) -> None:
    with pytest.raises(ValueError, match=field):
        check_names(table, left_out, [2, 1])


def test_master_gauge_marks_every_scenario_node() -> None:
    reg = CollectorRegistry()
    m = MasterMetrics(reg)
    mark_selection(NodeNames(*check_names(TABLE, LEFT_OUT, [2, 1])), m, [2, 1])
    value = lambda node: reg.get_sample_value("hgc_master_node_selected", {"node": node})  # noqa: E731
    assert value("worker-1-2") == 1 and value("edge-3") == 1 and value("master") == 1
    assert all(value(node) == 0 for node in LEFT_OUT)
    assert value("worker-0-1") is None  # a position is never a label


def test_edge_and_worker_metrics_move_to_scenario_indices() -> None:
    reg = CollectorRegistry()
    e = EdgeMetrics(reg, 0)
    e.rename(1)
    e.worker_wait.observe(0.1)
    e.worker_straggler("2")
    assert reg.get_sample_value("hgc_edge_worker_wait_seconds_count", {"edge": "1"}) == 1
    assert reg.get_sample_value("hgc_edge_worker_wait_seconds_count", {"edge": "0"}) is None
    labels = {"edge": "1", "worker": "2"}
    assert reg.get_sample_value("hgc_edge_worker_stragglers_total", labels) == 1
    reg2 = CollectorRegistry()
    w = WorkerMetrics(reg2, 0, 1)
    w.rename(1, 2)
    w.compute_duration.observe(0.2)
    assert reg2.get_sample_value("hgc_worker_compute_duration_seconds_count", labels) == 1
    old = {"edge": "0", "worker": "1"}
    assert reg2.get_sample_value("hgc_worker_compute_duration_seconds_count", old) is None


def test_hostile_names_from_a_set_up_are_ignored() -> None:
    hostile = {
        "edge-0": 'edge-1"} evil',
        "worker-0-0": "worker-1-99999999",
        "worker-0-1": "worker-1-2",
        "x": "edge-2",
        "edge-1": 7,
    }
    assert names.valid_table(hostile) == {"worker-0-1": "worker-1-2"}
    assert names.valid_table(["edge-0"]) == {}
    assert names.worker_indices("worker-01-2") is None and names.edge_index("edge-3") == 3
