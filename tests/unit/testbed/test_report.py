"""``hgc report`` on a run folder written here: every figure is on the page, node names are the
scenario's (a subset plan's positions translated), left-out nodes are marked, bad folders are
a one-line error, and data cannot inject markup."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from xml.etree import ElementTree

import pytest

from hgc.report import ReportError, render
from hgc.report.page import node_names
from hgc.report.svg import nice_ticks

HGC = [sys.executable, "-m", "hgc.cli"]
FIGURES = ("fig-prediction", "fig-cdf", "fig-time", "fig-loss", "fig-accuracy", "fig-edge-wait")

SCENARIO = """
name: tiny
seed: 1
topology:
  workers_per_edge: [3, 3]
  workers: {device: laptop, link: lan}
  edges: {device: laptop, uplink: lan}
model: {kind: logreg}
data: {kind: digits}
training: {iterations: 4}
code: {s_e: 0, s_w: 1, s: 1}
schemes: [uncoded, hgc-jncss]
"""

# hgc-jncss kept edge 1 only, with scenario workers 2 and 0 (positions 0 and 1).
JNCSS_PLAN = {"edges": [1], "workers": [[2, 0]], "scheme": "hgc-jncss"}


def record(scheme: str, i: int, workers: dict[str, float], late: list[str], edges: list[str]):
    return {
        "scheme": scheme,
        "iteration": i,
        "ok": True,
        "duration_s": 0.1 + 0.01 * i,
        "edge_wait_s": 0.1,
        "edge_arrivals_s": {e: 0.05 + 0.01 * i for e in edges},
        "edges_used": edges,
        "edge_stragglers": [],
        "worker_arrivals_s": workers,
        "worker_stragglers": late,
        "loss": 1.0 / (i + 1),
        "accuracy": 0.5 + 0.1 * i,
        "wall_s": 0.2 * (i + 1),
        "error": None,
    }


def write_folder(tmp_path: Path, scheme_name: str = "hgc-jncss") -> Path:
    (tmp_path / "scenario.yaml").write_text(SCENARIO)
    schemes = {
        "uncoded": {
            "mean_s": 0.3,
            "predicted_mean_s": 0.28,
            "plan": {"edges": [0, 1], "workers": [[0, 1, 2], [0, 1, 2]]},
        },  # fmt: skip
        scheme_name: {"mean_s": 0.1, "predicted_mean_s": 0.09, "plan": JNCSS_PLAN},
    }
    (tmp_path / "summary.json").write_text(json.dumps({"schemes": schemes}))
    uncoded = [
        record(
            "uncoded",
            i,
            {f"worker-{e}-{w}": 0.02 for e in (0, 1) for w in range(3)},
            [],
            ["edge-0", "edge-1"],
        )  # fmt: skip
        for i in range(4)
    ]
    # position worker-0-1 (scenario worker-1-0) straggles every iteration
    jncss = [record("hgc", i, {"worker-0-0": 0.03}, ["worker-0-1"], ["edge-0"]) for i in range(4)]
    for name, recs in (("uncoded", uncoded), (scheme_name, jncss)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "record.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    return tmp_path


def test_every_figure_is_on_the_page_and_it_is_well_formed(tmp_path: Path) -> None:
    page = render(write_folder(tmp_path))
    for fig in (*FIGURES, "fig-heatmap-0", "fig-heatmap-1"):
        assert f'id="{fig}"' in page, fig
    assert "<script" not in page and "http://" not in page.replace(
        'xmlns="http://www.w3.org/2000/svg"', ""
    )  # self-contained: nothing to fetch
    for svg in re.findall(r"<svg .*?</svg>", page, flags=re.S):
        ElementTree.fromstring(svg)  # each figure parses as XML
    # table order: uncoded before hgc-jncss
    assert page.index("<h3>uncoded</h3>") < page.index("<h3>hgc-jncss</h3>")


def test_subset_plan_positions_become_scenario_names(tmp_path: Path) -> None:
    assert node_names(JNCSS_PLAN, [{}]) == {
        "edge-0": "edge-1",
        "worker-0-0": "worker-1-2",
        "worker-0-1": "worker-1-0",
    }
    page = render(write_folder(tmp_path))
    heat = re.search(r'<svg id="fig-heatmap-1".*?</svg>', page, flags=re.S)
    assert heat is not None
    cells = heat.group(0)
    # the straggler is scenario worker-1-0, never position worker-0-1's namesake worker-0-1
    assert "worker-1-0, iteration 0: straggler (ignored)" in cells
    assert "worker-0-1, iteration 0: left out by the plan" in cells
    assert "worker-1-2, iteration 0: arrived at" in cells
    assert "edge-0 (left out)" in cells and "edge-1 (left out)" not in cells


def test_records_with_scenario_names_are_not_translated() -> None:
    assert node_names(JNCSS_PLAN, [{"names": "scenario"}]) == {}


def test_hostile_names_are_escaped(tmp_path: Path) -> None:
    page = render(write_folder(tmp_path, scheme_name="<img src=x onerror=alert(1)>"))
    assert "<img" not in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page


def test_not_a_run_folder(tmp_path: Path) -> None:
    with pytest.raises(ReportError, match="no summary.json"):
        render(tmp_path)
    (tmp_path / "summary.json").write_text("[1, 2]")
    with pytest.raises(ReportError, match="not a run summary"):
        render(tmp_path)


def test_cli_errors_are_one_line_exit_2(tmp_path: Path) -> None:
    for folder in (tmp_path / "missing", tmp_path):
        proc = subprocess.run(
            [*HGC, "report", str(folder)], capture_output=True, text=True, timeout=60
        )
        assert proc.returncode == 2, proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
        assert "Traceback" not in proc.stderr


def test_cli_writes_the_page(tmp_path: Path) -> None:
    folder = write_folder(tmp_path)
    out = tmp_path / "elsewhere.html"
    proc = subprocess.run(
        [*HGC, "report", str(folder), "-o", str(out)], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert out.read_text().startswith("<!DOCTYPE html>")


def test_ticks_end_on_ranges_below_float_resolution() -> None:
    # seen in a run: a constant accuracy, its min and max one ulp apart (used to loop forever)
    assert nice_ticks(0.8789256262333043, 0.8789256262333045) == [0.8789256262333043]
    assert nice_ticks(1e300, 1.0000000000001e300)
    from hgc.report.svg import Series, line_chart

    flat = line_chart(
        "f", "t", [Series("s", [0, 1], [0.8789256262333043, 0.8789256262333045])], "x", "y"
    )
    assert 'id="f"' in flat


@pytest.mark.parametrize(("lo", "hi"), [(0, 1), (0.013, 0.41), (3, 3000), (-2, 7)])
def test_ticks_cover_the_range_in_round_steps(lo: float, hi: float) -> None:
    ticks = nice_ticks(lo, hi)
    assert 2 <= len(ticks) <= 11
    assert ticks[0] >= lo and ticks[-1] <= hi * (1 + 1e-9) + 1e-12
    steps = {round(b - a, 9) for a, b in zip(ticks, ticks[1:], strict=False)}
    assert len(steps) == 1


def test_a_record_with_a_run_header_is_read_by_its_true_names(tmp_path: Path) -> None:
    """What the master writes when given the names (services.master.naming): a header
    naming the nodes used and left out, then records already in scenario names."""
    folder = write_folder(tmp_path)
    header = {
        "kind": "header",
        "names": "scenario",
        "scheme": "hgc",
        "positions": {"edge-0": "edge-1", "worker-0-0": "worker-1-2", "worker-0-1": "worker-1-0"},
        "selected": ["edge-1", "worker-1-2", "worker-1-0"],
        "left_out": ["edge-0", "worker-0-0", "worker-0-1", "worker-0-2", "worker-1-1"],
    }
    recs = [
        {**record("hgc", i, {"worker-1-2": 0.03}, ["worker-1-0"], ["edge-1"]), "names": "scenario"}
        for i in range(4)
    ]
    lines = [json.dumps(header)] + [json.dumps(r) for r in recs]
    (folder / "hgc-jncss" / "record.jsonl").write_text("\n".join(lines) + "\n")
    page = render(folder)
    heat = re.search(r'<svg id="fig-heatmap-1".*?</svg>', page, flags=re.S)
    assert heat is not None
    cells = heat.group(0)
    assert "worker-1-0, iteration 0: straggler (ignored)" in cells
    assert "worker-0-1, iteration 0: left out by the plan" in cells
    assert "worker-1-2, iteration 0: arrived at" in cells
    assert "edge-0 (left out)" in cells and "edge-1 (left out)" not in cells
