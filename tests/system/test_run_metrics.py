"""Every process of a real ``hgc run`` serves /metrics: scraped over plain HTTP while the run
is going, the metric families of docs/architecture.md are there, and the counters agree
with the iteration records the CSV is written from."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from hgc.testbed.records import read_records
from hgc.testbed.scrape import Sample, scrape, total, value
from tests.conftest import poll_for

ROOT = Path(__file__).resolve().parents[2]
HGC = [str(Path(sys.executable).parent / "hgc")]
ITERATIONS = 40

COMMON = ["received_bytes", "sent_bytes", "messages_dropped", "emulation_active", "peers_alive"]
FAMILIES = {
    "master": [
        "iteration_duration_seconds",
        "iterations",
        "edge_wait_seconds",
        "edge_arrival_seconds",
        "edge_stragglers",
        "decode_duration_seconds",
        "loss",
        "accuracy_ratio",
        "iteration",
        "code_info",
        *COMMON,
    ],
    "edge": [
        "worker_wait_seconds",
        "worker_arrival_seconds",
        "worker_stragglers",
        "decode_duration_seconds",
        *COMMON,
    ],
    "worker": ["compute_duration_seconds", "emulated_delay_seconds", *COMMON],
}

Families = dict[str, list[Sample]]


def role(node: str) -> str:
    return node.split("-")[0]


def snapshot(records_path: Path, host: str, port: int) -> tuple[list[Any], Families, list[Any]]:
    """Records before, the scrape, records after: the counters must lie in between."""
    before = read_records(records_path)
    families = scrape(host, port)
    after = read_records(records_path)
    return before, families, after


def ok_count(records: list[dict[str, Any]]) -> int:
    return sum(1 for r in records if r["ok"])


def edge_stragglers(records: list[dict[str, Any]]) -> Counter[str]:
    return Counter(e for r in records if r["ok"] for e in r["edge_stragglers"])


def worker_stragglers_of_edge(records: list[dict[str, Any]], edge: int) -> int:
    return sum(
        1
        for r in records
        if r["ok"]
        for w in r["worker_stragglers"]
        if w.split("-")[1] == str(edge)
    )


@pytest.mark.timeout(300)
def test_every_process_serves_consistent_metrics(tmp_path: Path) -> None:
    out = tmp_path / "run"
    proc = subprocess.Popen(
        [
            *HGC,
            "run",
            str(ROOT / "scenarios" / "heterogeneous.yaml"),
            "--schemes",
            "hgc",
            "--iterations",
            str(ITERATIONS),
            "--out",
            str(out),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=ROOT,
    )
    records_path = out / "hgc" / "record.jsonl"
    try:
        poll_for(
            lambda: len(read_records(records_path)) >= 5 or proc.poll() is not None,
            timeout=180,
            what="five iterations",
        )
        assert proc.poll() is None, proc.communicate()[0]
        nodes = json.loads((out / "hgc" / "nodes.json").read_text())["metrics_ports"]
        assert len(nodes) == 1 + 4 + 14
        snaps = {n: snapshot(records_path, m["host"], m["port"]) for n, m in nodes.items()}
        output, _ = proc.communicate(timeout=240)
    finally:
        proc.kill()
    assert proc.returncode == 0, output

    for node, (_, families, _) in snaps.items():
        r = role(node)
        missing = [f for f in FAMILIES[r] if f"hgc_{r}_{f}" not in families]
        assert not missing, f"{node} lacks {missing}"

    before, master, after = snaps["master"]
    ok = value(master, "hgc_master_iterations_total", outcome="ok")
    assert ok is not None and ok_count(before) <= ok <= ok_count(after)
    count = value(master, "hgc_master_iteration_duration_seconds_count")
    assert count is not None and ok_count(before) <= count <= ok_count(after)
    lo, hi = edge_stragglers(before), edge_stragglers(after)
    for e in range(4):
        got = value(master, "hgc_master_edge_stragglers_total", edge=str(e)) or 0.0
        assert lo[f"edge-{e}"] <= got <= hi[f"edge-{e}"], (e, got, lo, hi)
    info = value(master, "hgc_master_code_info", scheme="hgc", s_e="1", s_w="1")
    assert info == 1.0

    for e in range(4):
        before, fams, after = snaps[f"edge-{e}"]
        got = total(fams, "hgc_edge_worker_stragglers_total")
        # the master lists only the stragglers of the edges it used; the edge counts every
        # iteration it decoded (at most s_w = 1 each, and it may be one iteration ahead)
        assert worker_stragglers_of_edge(before, e) <= got <= len(after) + 1, (e, got)

    # the CSV of the finished run says the same as the master's counters did
    rows = list(csv.DictReader((out / "hgc.csv").open()))
    assert sum(r["ok"] == "1" for r in rows) == ITERATIONS
    final = read_records(records_path)
    assert sum(len(r["edge_stragglers"]) for r in final) == sum(
        len(r["edge_stragglers"].split(";")) for r in rows if r["edge_stragglers"]
    )

    # every worker the master heard from reported its own compute time, within its round trip
    for r in final:
        if not r["ok"]:
            continue
        computes = r["worker_compute_s"]
        for worker, arrival in r["worker_arrivals_s"].items():
            assert 0 < computes[worker] <= arrival, (r["iteration"], worker)

    # cpu.json: every node's CPU seconds per iteration, and their sum
    cpu = json.loads((out / "hgc" / "cpu.json").read_text())
    per_node = cpu["per_node_s"]
    assert set(per_node) == set(nodes)
    assert all(0 < s < 1 for s in per_node.values()), per_node
    assert cpu["cpu_s_per_iteration"] == pytest.approx(sum(per_node.values()), rel=1e-9)
    assert cpu["samples"] >= 3 and 1 <= cpu["iterations"][0] < cpu["iterations"][1] < ITERATIONS
