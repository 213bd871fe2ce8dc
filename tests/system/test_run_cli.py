"""``hgc run`` as a user runs it: a real subprocess, real node processes, the run folder and
the table; Ctrl-C and SIGKILL leave nothing behind (with ``--cleanup`` for the latter)."""

from __future__ import annotations

import csv
import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from hgc.testbed.cgroups import PREFIX, detect_cgroups
from hgc.testbed.cleanup import pid_alive
from hgc.testbed.netns import list_lab_netns
from tests.conftest import poll_for

ROOT = Path(__file__).resolve().parents[2]
HGC = [str(Path(sys.executable).parent / "hgc")]  # the console script, as a user runs it

SMALL = """
name: small
seed: 3
topology:
  workers_per_edge: [2, 2]
  workers: {device: laptop, link: lan}
  edges: {device: laptop, uplink: lan}
  overrides:
    worker-1-1: {device: rpi3}
model: {kind: logreg}
data: {kind: digits}
training: {iterations: %(iterations)d, eval_every: 2, deadline_s: 20}
code: {s_e: 0, s_w: 1, s: 1}
schemes: [uncoded, hgc]
emulation: {compute: delay, cpu_quota: %(quota)s, network: %(network)s}
"""


def small_scenario(
    tmp_path: Path, iterations: int = 3, quota: bool = False, network: str = "in-process"
) -> Path:
    path = tmp_path / "small.yaml"
    text = SMALL % {"iterations": iterations, "quota": str(quota).lower(), "network": network}
    path.write_text(text)
    return path


def leftovers(owner: int) -> list[str]:
    support = detect_cgroups()
    groups = [] if support.cpu_root is None else list(support.cpu_root.glob(f"{PREFIX}{owner}"))
    return [str(g) for g in groups] + [
        n for n in list_lab_netns() if n.startswith(f"hgcrun-{owner}-")
    ]


@pytest.mark.timeout(240)
def test_short_run_prints_the_table_and_writes_the_folder(tmp_path: Path) -> None:
    out = tmp_path / "run"
    proc = subprocess.run(
        [*HGC, "run", str(small_scenario(tmp_path)), "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=220,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "meas/sim" in proc.stdout and "speedup" in proc.stdout
    assert "[hgc] iter 2/3" in proc.stdout
    assert "emulation compute_delay: active" in proc.stderr
    assert "emulation netem: unavailable" in proc.stderr
    for name in (
        "scenario.yaml",
        "seed.txt",
        "summary.json",
        "table.txt",
        "emulation.json",
        "metrics_ports.json",
        "uncoded.csv",
        "hgc.csv",
    ):
        assert (out / name).is_file(), name
    assert (out / "seed.txt").read_text().strip() == "3"
    rows = list(csv.DictReader((out / "hgc.csv").open()))
    assert [int(r["iteration"]) for r in rows if r["ok"] == "1"] == [0, 1, 2]
    assert all(float(r["duration_s"]) > 0 for r in rows)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["schemes"]["uncoded"]["speedup_vs_uncoded"] == pytest.approx(1.0)
    assert summary["schemes"]["hgc"]["predicted_mean_s"] > 0
    ports = json.loads((out / "metrics_ports.json").read_text())
    assert set(ports["hgc"]) == {
        "master",
        "edge-0",
        "edge-1",
        "worker-0-0",
        "worker-0-1",
        "worker-1-0",
        "worker-1-1",
    }
    pngs = sorted((out / "plots").glob("*.png"))
    assert len(pngs) == 3 and all(p.stat().st_size > 1000 for p in pngs)


def test_bad_requests_exit_2_naming_the_problem(tmp_path: Path) -> None:
    scenario = small_scenario(tmp_path)
    cases = [
        (["--schemes", "uncoded,nope"], "--schemes: unknown nope"),
        (["--iterations", "0"], "--iterations: must be >= 1"),
    ]
    for extra, message in cases:
        proc = subprocess.run(
            [*HGC, "run", str(scenario), *extra],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=ROOT,
        )
        assert proc.returncode == 2 and message in proc.stderr, proc.stderr
    proc = subprocess.run(
        [*HGC, "run", str(tmp_path / "missing.yaml")],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert proc.returncode == 2 and "no such file" in proc.stderr


@pytest.mark.timeout(120)
def test_bad_out_and_busy_metrics_port_are_one_line_exit_2(tmp_path: Path) -> None:
    """Refused before any node starts: nothing is written, no traceback, one line."""
    import socket

    not_a_dir = tmp_path / "a-file"
    not_a_dir.write_text("keep me")
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        busy = small_scenario(tmp_path).read_text() + f"ports: {{metrics_base_port: {port}}}\n"
        (tmp_path / "busy.yaml").write_text(busy)
        cases = [
            ([str(small_scenario(tmp_path)), "--out", str(not_a_dir)], "--out"),
            ([str(tmp_path / "busy.yaml"), "--out", str(tmp_path / "o")], f"port {port}"),
        ]
        for argv, message in cases:
            proc = subprocess.run(
                [*HGC, "run", *argv], capture_output=True, text=True, timeout=60, cwd=ROOT
            )
            assert proc.returncode == 2, proc.stderr
            assert message in proc.stderr and proc.stderr.count("\n") == 1, proc.stderr
            assert "Traceback" not in proc.stderr + proc.stdout
    assert not_a_dir.read_text() == "keep me"
    assert "ports.metrics_base_port" in proc.stderr and not (tmp_path / "o").exists()


def start_run(tmp_path: Path, out: Path) -> subprocess.Popen[str]:
    scenario = small_scenario(tmp_path, iterations=200, quota=True, network="kernel")
    return subprocess.Popen(
        [*HGC, "run", str(scenario), "--out", str(out), "--schemes", "hgc"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=ROOT,
        # started as a background job of a non-interactive shell is: SIGINT ignored on
        # entry; the launcher must re-arm it (hgc.cli.interruptible)
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
    )


def node_pids(out: Path) -> list[int]:
    info = json.loads((out / "hgc" / "nodes.json").read_text())
    return list(info["pids"].values())


def training_started(out: Path) -> bool:
    record = out / "hgc" / "record.jsonl"
    return record.exists() and len(record.read_text().splitlines()) >= 2


@pytest.mark.timeout(180)
def test_ctrl_c_leaves_no_process_cgroup_or_namespace(tmp_path: Path) -> None:
    out = tmp_path / "run"
    proc = start_run(tmp_path, out)
    try:
        poll_for(
            lambda: training_started(out) or proc.poll() is not None,
            timeout=120,
            what="training to start",
        )
        assert proc.poll() is None, proc.communicate()[0]
        pids = node_pids(out)
        assert leftovers(proc.pid), "the run should have made cgroups and namespaces"
        proc.send_signal(signal.SIGINT)
        output, _ = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130, output
    assert "interrupted" in output
    assert not [p for p in pids if pid_alive(p)]
    assert leftovers(proc.pid) == []
    # what was measured before Ctrl-C is still written
    assert (out / "hgc.csv").exists() and (out / "summary.json").exists()


@pytest.mark.timeout(180)
def test_sigkill_leftovers_are_swept_by_cleanup(tmp_path: Path) -> None:
    out = tmp_path / "run"
    proc = start_run(tmp_path, out)
    try:
        poll_for(
            lambda: training_started(out) or proc.poll() is not None,
            timeout=120,
            what="training to start",
        )
        assert proc.poll() is None, proc.communicate()[0]
        pids = node_pids(out)
        proc.kill()  # no chance to clean up
        proc.wait(30)
        assert leftovers(proc.pid), "SIGKILL should leave the namespaces for the sweep"
        sweep = subprocess.run(
            [*HGC, "run", "--cleanup"], capture_output=True, text=True, timeout=60, cwd=ROOT
        )
    finally:
        proc.kill()
    assert sweep.returncode == 0, sweep.stderr
    assert f"hgcrun-{proc.pid}-hub" in sweep.stdout
    assert leftovers(proc.pid) == []
    # every node lived in a namespace or cgroup of the dead launcher: the sweep killed them
    poll_for(lambda: not [p for p in pids if pid_alive(p)], timeout=10, what="nodes to die")
