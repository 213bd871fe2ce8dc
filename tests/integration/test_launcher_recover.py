"""The launchers cannot strand or collide (issue 11): ``hgc run`` and ``hgc cluster`` work from
any directory with relative and default output paths; SIGKILL of either leaves no node alive;
two runs with the same ``--out`` cannot both start; SIGTERM ends a run as Ctrl-C does.

Real processes throughout: the console script, real node processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hgc.testbed.cleanup import pid_alive
from hgc.testbed.records import read_records
from tests.conftest import poll_for

HGC = [str(Path(sys.executable).parent / "hgc")]

SCENARIO = """
name: tiny
seed: 5
topology:
  workers_per_edge: [2, 2]
  workers: {device: laptop, link: lan}
  edges: {device: laptop, uplink: lan}
model: {kind: logreg}
data: {kind: synthetic, n_samples: 200, n_features: 8, n_classes: 3}
training: {iterations: %(iterations)d, eval_every: 1, deadline_s: 20}
code: {s_e: 0, s_w: 1, s: 1}
schemes: [uncoded]
emulation: {compute: "off", network: "off"}
"""


def scenario(folder: Path, iterations: int) -> Path:
    path = folder / "tiny.yaml"
    path.write_text(SCENARIO % {"iterations": iterations})
    return path


def hgc(args: list[str], cwd: Path, timeout: float = 150) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*HGC, *args], capture_output=True, text=True, timeout=timeout, cwd=cwd)


def alive(pids: list[int]) -> list[int]:
    return [p for p in pids if pid_alive(p)]


@pytest.mark.timeout(200)
def test_hgc_run_from_another_directory_with_the_default_out(tmp_path: Path) -> None:
    """The default run folder (runs/<scenario>-<stamp> under the current directory); a
    relative --out from another directory is exercised by the SIGTERM test below."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    scenario(elsewhere, 2)
    first = hgc(["run", "tiny.yaml"], elsewhere)
    assert first.returncode == 0, first.stdout + first.stderr
    (folder,) = (elsewhere / "runs").iterdir()
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["schemes"]["uncoded"]["iterations"] == 2
    # the folder is not empty now: a run into it is refused at once, nothing touched
    before = (folder / "summary.json").read_text()
    again = hgc(["run", "tiny.yaml", "--out", str(folder.relative_to(elsewhere))], elsewhere, 60)
    assert again.returncode == 2, again.stderr
    assert "not empty" in again.stderr and "--force" in again.stderr
    assert again.stderr.count("\n") == 1 and "Traceback" not in again.stderr
    assert (folder / "summary.json").read_text() == before


def test_default_run_folders_are_unique_in_the_same_second(tmp_path: Path) -> None:
    from hgc.testbed.runfolder import unique_folder

    base = tmp_path / "runs" / "x-20260101T000000Z"
    made = {unique_folder(base) for _ in range(5)}
    assert len(made) == 5 and all(p.is_dir() and p.is_absolute() for p in made)


@pytest.mark.timeout(200)
def test_hgc_cluster_from_another_directory_with_relative_workdir(tmp_path: Path) -> None:
    proc = hgc(
        ["cluster", "--workers-per-edge", "2,2", "--s-e", "0", "--iterations", "2"]
        + ["--data", "synthetic", "--workdir", "work"],
        tmp_path,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (tmp_path / "work" / "record.jsonl").exists()
    assert (tmp_path / "work" / "logs" / "master.log").exists()


def _start(args: list[str], cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*HGC, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=cwd,
    )


def _node_pids_when_training(workdir: Path, proc: subprocess.Popen[str]) -> list[int]:
    """Pids of every node once the master has recorded an iteration (from the ready files;
    the record's run header, written at start-up, is not training yet)."""

    def ready() -> bool:
        return proc.poll() is not None or bool(read_records(workdir / "record.jsonl"))

    poll_for(ready, timeout=120, interval=0.1, what="training to start")
    assert proc.poll() is None, proc.communicate()[0]
    pids = []
    for f in (workdir / "ready").glob("*.json"):
        info = json.loads(f.read_text())
        pids.append(int(info["pid"]))
    return pids


@pytest.mark.timeout(200)
def test_sigkill_of_hgc_cluster_leaves_no_node(tmp_path: Path) -> None:
    work = tmp_path / "work"
    proc = _start(
        ["cluster", "--workers-per-edge", "2,2", "--s-e", "0", "--iterations", "100000"]
        + ["--data", "synthetic", "--workdir", str(work)],
        tmp_path,
    )
    try:
        pids = _node_pids_when_training(work, proc)
        assert len(alive(pids)) == 7
        proc.kill()  # no clean-up can run
        proc.wait(30)
        poll_for(lambda: not alive(pids), timeout=10, what="every node to die")
    finally:
        proc.kill()
        for p in pids if "pids" in locals() else []:
            if pid_alive(p):
                os.kill(p, signal.SIGKILL)


@pytest.mark.timeout(240)
def test_sigkill_of_hgc_run_leaves_no_node_and_the_same_out_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "run"
    proc = _start(["run", str(scenario(tmp_path, 100000)), "--out", str(out)], tmp_path)
    pids: list[int] = []
    try:
        pids = _node_pids_when_training(out / "uncoded", proc)
        assert len(alive(pids)) == 7
        # a second run into the same folder, while the first one runs: refused at once
        t0 = time.monotonic()
        second = hgc(["run", str(tmp_path / "tiny.yaml"), "--out", str(out)], tmp_path, 60)
        assert second.returncode == 2, second.stdout + second.stderr
        assert "in use by a running hgc" in second.stderr, second.stderr
        assert time.monotonic() - t0 < 50  # a generous bound: only catches a wait for nodes
        proc.kill()
        proc.wait(30)
        poll_for(lambda: not alive(pids), timeout=10, what="every node to die")
        # nothing left for the sweep to kill either
        sweep = hgc(["run", "--cleanup"], tmp_path, 60)
        assert sweep.returncode == 0 and "killed orphaned node" not in sweep.stdout
    finally:
        proc.kill()
        for p in alive(pids):
            os.kill(p, signal.SIGKILL)


@pytest.mark.timeout(200)
def test_sigterm_ends_hgc_run_like_ctrl_c_with_a_relative_out(tmp_path: Path) -> None:
    scenario(tmp_path, 100000)
    out = tmp_path / "rel" / "run"
    proc = _start(["run", "tiny.yaml", "--out", "rel/run"], tmp_path)  # from tmp_path
    pids: list[int] = []
    try:
        pids = _node_pids_when_training(out / "uncoded", proc)
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 128 + signal.SIGTERM, output
    assert "interrupted (SIGTERM)" in output
    assert (out / "summary.json").exists() and (out / "uncoded.csv").exists()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["schemes"]["uncoded"]["iterations"] >= 1  # the nodes ran and trained
    assert not alive(pids)


@pytest.mark.timeout(60)
def test_guard_exits_when_its_launcher_is_gone_without_parent_death_signal() -> None:
    """The fallback alone (no prctl in a preexec hook): a node whose launcher (here a shell)
    exits notices it is re-parented and exits."""
    script = (
        f'HGC_LAUNCHER="$$:" {sys.executable} -m hgc.testbed.guard http.server 0 '
        "--bind 127.0.0.1 >/dev/null 2>&1 & echo $!; sleep 1"
    )
    shell = subprocess.run(["sh", "-c", script], capture_output=True, text=True, timeout=30)
    node = int(shell.stdout.split()[0])
    try:
        poll_for(lambda: not pid_alive(node), timeout=10, what="the guarded node to exit")
    finally:
        if pid_alive(node):
            os.kill(node, signal.SIGKILL)
