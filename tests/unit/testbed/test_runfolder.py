"""Run-folder maths and files from hand-made master records (no cluster)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest

from hgc.testbed.plots import write_plots
from hgc.testbed.progress import Progress, format_progress
from hgc.testbed.records import RecordError, read_records, scheme_stats, worker_tier_s
from hgc.testbed.runfolder import RunFolder, SchemeResult, fill_speedups, format_table


def rec(scheme: str, it: int, dur: float, **kw: Any) -> dict[str, Any]:
    base = {
        "scheme": scheme,
        "iteration": it,
        "attempt": 0,
        "ok": True,
        "duration_s": dur,
        "edge_wait_s": dur * 0.9,
        "edges_used": [0, 1],
        "edge_stragglers": [],
        "worker_arrivals_s": {"0-0": 0.1, "0-1": 0.3, "1-0": 0.2},
        "worker_stragglers": [],
        "decode_s": 0.001,
        "loss": 1.0 / (it + 1),
        "accuracy": 0.5,
        "wall_s": None,
        "error": None,
    }
    base.update(kw)
    return base


def test_worker_tier_ignores_stragglers_and_unused_edges() -> None:
    r = rec("hgc", 0, 1.0, worker_stragglers=["0-1"], edges_used=[0])
    assert worker_tier_s(r) == pytest.approx(0.1)
    assert worker_tier_s(rec("hgc", 0, 1.0)) == pytest.approx(0.3)
    assert worker_tier_s(rec("hgc", 0, 1.0, worker_arrivals_s={})) is None


def test_stats_percentiles_and_failures() -> None:
    records = [rec("hgc", i, float(i + 1)) for i in range(100)]
    records.append(rec("hgc", 100, 1000.0, ok=False, error="timeout"))
    s = scheme_stats("hgc", records)
    assert s.iterations == 100 and s.attempts == 101 and s.failed == 1
    assert s.mean_s == pytest.approx(50.5)
    assert s.p50_s == pytest.approx(50.5)
    assert 95 <= s.p95_s <= 96 and 99 <= s.p99_s <= 100
    assert s.final_loss == pytest.approx(1.0 / 100)


def test_straggler_counts() -> None:
    records = [
        rec("hgc", 0, 1.0, edge_stragglers=[1], worker_stragglers=["0-1"]),
        rec("hgc", 1, 1.0, worker_stragglers=["0-0", "1-0"]),
    ]
    s = scheme_stats("hgc", records)
    assert (s.edge_stragglers, s.worker_stragglers) == (1, 3)


def test_speedups_measured_and_predicted() -> None:
    results = {
        "uncoded": SchemeResult(scheme_stats("uncoded", [rec("uncoded", 0, 2.0)]), 2.2),
        "hgc": SchemeResult(scheme_stats("hgc", [rec("hgc", 0, 1.0)]), 1.0),
    }
    fill_speedups(results)
    assert results["hgc"].speedup == pytest.approx(2.0)
    assert results["hgc"].predicted_speedup == pytest.approx(2.2)
    assert results["uncoded"].measured_over_predicted == pytest.approx(2.0 / 2.2)
    table = format_table(results)
    assert "uncoded" in table and "hgc" in table and "2.00" in table


def test_read_records_rejects_bad_lines_but_tolerates_a_torn_last_line(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    path.write_text(json.dumps(rec("hgc", 0, 1.0)) + "\n" + '{"scheme": "hg')
    assert len(read_records(path)) == 1
    path.write_text('{"scheme": "hgc"}\n' + json.dumps(rec("hgc", 0, 1.0)) + "\n")
    with pytest.raises(RecordError, match="missing field 'iteration'"):
        read_records(path)
    path.write_text("nope\n" + json.dumps(rec("hgc", 0, 1.0)) + "\n")
    with pytest.raises(RecordError, match="r.jsonl:1: not JSON"):
        read_records(path)


def test_folder_files(tmp_path: Path) -> None:
    scenario = tmp_path / "s.yaml"
    scenario.write_text("name: x\n")
    folder = RunFolder(tmp_path / "run")
    folder.write_inputs(scenario, 7)
    records = {
        "uncoded": [rec("uncoded", i, 2.0 + i) for i in range(5)],
        "hgc": [rec("hgc", i, 1.0, worker_stragglers=["0-1"]) for i in range(5)],
    }
    results = {}
    for scheme, rs in records.items():
        folder.write_scheme(scheme, rs)
        results[scheme] = SchemeResult(scheme_stats(scheme, rs))
    fill_speedups(results)
    table = folder.write_summary(results, {"seed": 7})
    rows = list(csv.DictReader((folder.path / "hgc.csv").open()))
    assert len(rows) == 5 and rows[0]["worker_stragglers"] == "0-1"
    assert float(rows[0]["worker_wait_s"]) == pytest.approx(0.2)
    summary = json.loads((folder.path / "summary.json").read_text())
    assert summary["seed"] == 7
    assert summary["schemes"]["hgc"]["speedup_vs_uncoded"] == pytest.approx(4.0)
    assert (folder.path / "seed.txt").read_text() == "7\n"
    assert (folder.path / "table.txt").read_text().strip() == table
    for png in write_plots(folder.path / "plots", records):
        assert png.stat().st_size > 1000 and png.read_bytes()[:4] == b"\x89PNG"


def test_progress_plain_and_tty() -> None:
    r = rec("hgc", 3, 0.25, edge_stragglers=[1], worker_stragglers=["0-1"])
    line = format_progress(r, 10)
    assert "iter 3/10" in line and "0.250 s" in line and "edge-1" in line
    assert "worker-0-1" in line and "loss 0.2500" in line
    plain = io.StringIO()
    Progress(plain, tty=False).iteration(r, 10)
    assert plain.getvalue().endswith("\n") and "\r" not in plain.getvalue()
    term = io.StringIO()
    p = Progress(term, tty=True)
    p.iteration(r, 10)
    p.message("done")
    assert term.getvalue().startswith("\r") and term.getvalue().endswith("done\n")
    failed = format_progress(rec("hgc", 0, 1.0, ok=False, error="edge-1 died"), None)
    assert "FAILED (edge-1 died)" in failed
