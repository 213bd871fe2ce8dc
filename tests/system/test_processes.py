"""The real system: master, edges and workers as separate processes on loopback.

Exactness under stragglers (SIGSTOP) and crashes (SIGKILL) mid-run, failure beyond the
tolerance, and hostile frames to the master and an edge (scraped from their /metrics).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import zmq
from prometheus_client.parser import text_string_to_metric_families

from common.runtime.codec import decode, encode
from common.runtime.messages import Heartbeat, ModelUpdate, Shutdown, WorkerSetup
from hgc.cluster import ClusterError, LocalCluster, reference_trace
from tests.conftest import poll_for
from tests.integration.test_cluster_hostile import (
    CODEC_REASONS,
    expected_drops,
    hostile_frames,
)

pytestmark = [pytest.mark.timeout(180), pytest.mark.slow]


def run_config(code: dict[str, Any], iterations: int = 12, **training: Any) -> dict[str, Any]:
    m = code["workers_per_edge"]
    return {
        "code": code,
        "data_spec": {"kind": "digits"},
        "model_spec": {"kind": "logreg"},
        # a small fixed delay keeps the run going long enough to act on it mid-run
        "emulation_spec": {
            f"worker-{i}-{j}": {"fixed_delay_s": 0.05} for i in range(len(m)) for j in range(m[i])
        },
        "training": {
            "iterations": iterations,
            "learning_rate": 0.5,
            "deadline_s": 20.0,
            **training,
        },
        "seed": 1,
    }


HGC = {"scheme": "hgc", "workers_per_edge": [3, 3, 3], "s_e": 1, "s_w": 1}


def after_first_iterations(cluster: LocalCluster, n: int = 2) -> None:
    poll_for(lambda: len(cluster.records()) >= n, 60, what=f"{n} iterations")


def check_exact(cluster: LocalCluster, config: dict[str, Any]) -> None:
    trace = cluster.params_trace()
    reference = reference_trace(config)
    assert list(trace["iterations"]) == list(range(len(reference)))
    errors = np.linalg.norm(trace["params"] - reference, axis=1) / np.linalg.norm(reference, axis=1)
    assert errors.max() < 1e-9, f"worst relative error {errors.max():.3g}"


def test_hgc_with_paused_edge_and_workers_is_exactly_gradient_descent(tmp_path: Path) -> None:
    config = run_config(HGC)
    with LocalCluster(config, workdir=tmp_path, params_trace=True) as cluster:
        after_first_iterations(cluster)
        for node in ("edge-2", "worker-0-1", "worker-1-0"):  # s_e edges, s_w workers per edge
            cluster.pause(node)
        poll_for(cluster.done, 120, what="the master to finish")
        for node in ("edge-2", "worker-0-1", "worker-1-0"):
            cluster.resume(node)  # they read their Shutdown and exit
        assert cluster.wait() == 0
        check_exact(cluster, config)
        records = cluster.records()
        assert all(r["ok"] for r in records) and len(records) == 12
        assert "edge-2" in records[-1]["edge_stragglers"]
        assert "worker-0-1" in records[-1]["worker_stragglers"]
        assert set(cluster.exit_codes().values()) == {0}


@pytest.mark.parametrize(
    "code",
    [
        {"scheme": "flat-frc", "workers_per_edge": [2, 2], "s": 1},
        {"scheme": "flat-crc", "workers_per_edge": [2, 1], "s": 1},
    ],
    ids=lambda c: c["scheme"],
)
def test_flat_scheme_with_a_killed_worker_is_exact(tmp_path: Path, code: dict[str, Any]) -> None:
    config = run_config(code, iterations=8)
    with LocalCluster(config, workdir=tmp_path, params_trace=True) as cluster:
        after_first_iterations(cluster)
        cluster.kill("worker-1-0")
        assert cluster.wait() == 0
        check_exact(cluster, config)


def test_killing_a_worker_and_an_edge_mid_run_loses_no_iteration(tmp_path: Path) -> None:
    config = run_config(HGC)
    orphan = ["--orphan-timeout-s", "1"]
    with LocalCluster(
        config, workdir=tmp_path, params_trace=True, extra_args=lambda node: orphan
    ) as cluster:
        after_first_iterations(cluster)
        cluster.kill("worker-0-2")
        cluster.kill("edge-1")
        assert cluster.wait() == 0
        records = cluster.records()
        assert [(r["iteration"], r["attempt"], r["ok"]) for r in records] == [
            (t, 0, True) for t in range(12)
        ]
        check_exact(cluster, config)
        # the dead edge's workers notice their parent is gone and give up (status 3)
        poll_for(
            lambda: all(cluster.exit_codes()[f"worker-1-{j}"] is not None for j in range(3)),
            30,
            what="orphaned workers to exit",
        )
        codes = cluster.exit_codes()
        assert [codes[f"worker-1-{j}"] for j in range(3)] == [3, 3, 3]
        assert codes["edge-0"] == 0 and codes["worker-0-0"] == 0


def test_beyond_tolerance_stops_within_the_deadline_with_a_clear_message(tmp_path: Path) -> None:
    config = run_config(HGC, iterations=200, deadline_s=2.0, on_failure="stop")
    with LocalCluster(config, workdir=tmp_path) as cluster:
        after_first_iterations(cluster)
        cluster.kill("edge-0")
        cluster.kill("edge-1")
        status = cluster.wait(timeout=60)
        records = cluster.records()
        log = cluster.log("master")
    assert status == 1
    assert records[-1]["ok"] is False
    error = records[-1]["error"]
    assert "needed 2 of 3 edges" in error
    assert "edge-0" in error and "edge-1" in error and "edge-2" not in error.split("missing")[1]
    assert records[-1]["duration_s"] >= 2.0  # the failed attempt waited out the deadline
    assert error in log  # the master says why it stopped


def scrape(port: int, name: str) -> float:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    return sum(
        s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == name
    )


def scrape_reasons(port: int, role: str) -> dict[str, float]:
    """``hgc_<role>_messages_dropped_total`` per reason label, from a node's /metrics."""
    url = f"http://127.0.0.1:{port}/metrics"
    text = urllib.request.urlopen(url, timeout=10).read().decode()
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == f"hgc_{role}_messages_dropped_total":
                out[s.labels["reason"]] = out.get(s.labels["reason"], 0.0) + s.value
    return out


def _raw_dealer(ctx: zmq.Context, port: int, identity: bytes) -> zmq.Socket:
    s = ctx.socket(zmq.DEALER)
    s.setsockopt(zmq.LINGER, 0)
    s.setsockopt(zmq.ROUTING_ID, identity)
    s.connect(f"tcp://127.0.0.1:{port}")
    return s


def test_hostile_frames_to_master_and_edge_are_dropped_and_training_completes(
    tmp_path: Path,
) -> None:
    """edge-0 and worker-1-1 are killed (within s_e = s_w = 1) and raw DEALERs take their
    names, so the master's and edge-1's codec checks are reached and each drop reason is
    asserted; intruder identities are refused before decoding (unknown_peer)."""
    config = run_config(HGC, iterations=30)  # long enough to scrape while it runs
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context.instance()
    orphan = ["--orphan-timeout-s", "1"]
    # curve off: the codec and plain-mode identity checks (CURVE: tests/integration/test_auth.py)
    with LocalCluster(
        config, workdir=tmp_path, extra_args=lambda node: orphan, curve=False
    ) as cluster:
        after_first_iterations(cluster, 1)
        cluster.kill("edge-0")
        cluster.kill("worker-1-1")
        impostors = {
            "master": _raw_dealer(ctx, cluster.ports["master"], b"edge-0"),
            "edge-1": _raw_dealer(ctx, cluster.ports["edge-1"], b"worker-1-1"),
        }
        intruders = {
            "master": [b"mallory", b"edge-9"],
            "edge-1": [b"mallory", b"worker-1-3", b"worker-0-0"],  # worker-1-3: j >= m_1
        }
        socks = [*impostors.values()]
        for node, names in intruders.items():
            socks += [_raw_dealer(ctx, cluster.ports[node], name) for name in names]
        for s in socks:
            for frames in hostile_frames().values():
                s.send_multipart(frames)
        for s in socks[len(impostors) :]:  # valid: only the identity check refuses it
            s.send_multipart(encode(Heartbeat(-1, "mallory")))
        counts: dict[str, dict[str, float]] = {}
        for node, names in intruders.items():
            role, port = node.split("-")[0], cluster.metrics_ports[node]
            want = {**expected_drops(1), "unknown_peer": len(names) * (len(hostile_frames()) + 1)}

            def reached() -> bool:
                try:
                    got = scrape_reasons(port, role)  # noqa: B023
                except OSError:  # the node exited: poll_for then names what never happened
                    return False
                return all(got.get(r, 0) >= n for r, n in want.items())  # noqa: B023

            poll_for(reached, 60, what=f"{node} to count hostile frames by reason")
            counts[node] = scrape_reasons(port, role)
        edge_alive = scrape(cluster.metrics_ports["edge-1"], "hgc_edge_peers_alive")
        for s in socks:
            s.close()
        assert cluster.wait() == 0
        records = cluster.records()
    assert [r["iteration"] for r in records] == list(range(30)) and all(r["ok"] for r in records)
    for node, got in counts.items():  # exactly the codec drops sent: legit traffic adds none
        assert {r: got.get(r, 0) for r in CODEC_REASONS} == expected_drops(1), node
    # only edge-1's own workers (the killed worker-1-1 until it times out), no intruder
    assert edge_alive <= 3


def test_worker_process_survives_hostile_frames(tmp_path: Path) -> None:
    """A real worker process, its edge played by a raw ROUTER (a worker binds nothing)."""
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context.instance()
    edge = ctx.socket(zmq.ROUTER)
    edge.setsockopt(zmq.LINGER, 0)
    port = edge.bind_to_random_port("tcp://127.0.0.1")
    ready = tmp_path / "worker.json"
    cmd = [sys.executable, "-m", "services.worker", "--edge-addr", f"tcp://127.0.0.1:{port}"]
    cmd += ["--ready-file", str(ready), "--liveness", "100"]
    env = {"HGC_EDGE": "0", "HGC_WORKER": "1", "PATH": "/usr/bin:/bin"}
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.Popen(cmd, cwd=root, env=env, stderr=subprocess.PIPE, text=True)

    def next_op(op: str) -> Any:
        def got() -> Any:
            if not edge.poll(100):
                return None
            _, *frames = edge.recv_multipart()
            msg = decode(frames)
            return msg if msg.op == op else None

        return poll_for(got, 60, what=f"{op} from the worker process")

    try:
        next_op("register")
        ident = b"worker-0-1"
        for frames in hostile_frames().values():
            edge.send_multipart([ident, *frames])
        setup = WorkerSetup(
            -1, 0, 1, (0,), np.ones(1), 2, {"kind": "digits"}, {"kind": "logreg"}, {}
        )
        edge.send_multipart([ident, *encode(setup)])
        next_op("ready")
        edge.send_multipart([ident, *encode(ModelUpdate(0, np.zeros(650)))])
        assert next_op("worker_gradient").vector.shape == (650,)
        poll_for(ready.exists, 10, what="the worker's ready file")
        port_m = json.loads(ready.read_text())["metrics_port"]
        assert scrape(port_m, "hgc_worker_messages_dropped_total") >= 7
        edge.send_multipart([ident, *encode(Shutdown(-1, "done"))])
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        edge.close()


def test_cluster_cleans_up_every_process_even_on_an_exception(tmp_path: Path) -> None:
    config = run_config(HGC, iterations=10_000)
    pids: dict[str, int] = {}
    with pytest.raises(RuntimeError, match="boom"), LocalCluster(config, workdir=tmp_path) as c:
        pids = dict(c.pids)
        c.pause("worker-2-2")  # a stopped process must be cleaned up too
        raise RuntimeError("boom")
    assert len(pids) == 13
    for pid in pids.values():
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)  # reaped: no orphan, no zombie


def test_a_node_failing_at_start_up_is_reported_with_its_log(tmp_path: Path) -> None:
    config = run_config(HGC)
    config["data_spec"] = {"kind": "mnist", "path": str(tmp_path / "nowhere.npz")}
    with (
        pytest.raises(ClusterError, match="master exited with status 2") as info,
        LocalCluster(config, workdir=tmp_path, ready_timeout_s=60),
    ):
        pass
    assert "nowhere.npz" in str(info.value)  # the tail of the master's log says why


def test_retry_recovers_when_paused_edges_come_back_and_stays_exact(tmp_path: Path) -> None:
    config = run_config(HGC, iterations=8, deadline_s=1.0, on_failure="retry", max_retries=5)
    with LocalCluster(config, workdir=tmp_path, params_trace=True) as cluster:
        after_first_iterations(cluster)
        cluster.pause("edge-0")
        cluster.pause("edge-1")  # beyond s_e = 1: the iteration cannot complete
        poll_for(lambda: any(not r["ok"] for r in cluster.records()), 60, what="a failed attempt")
        cluster.resume("edge-0")
        cluster.resume("edge-1")
        assert cluster.wait() == 0
        records = cluster.records()
        check_exact(cluster, config)
    failed = [r for r in records if not r["ok"]]
    assert failed and all("missing edges: edge-0" in r["error"] for r in failed)
    retried = {r["iteration"] for r in failed}
    ok = {r["iteration"]: r["attempt"] for r in records if r["ok"]}
    assert sorted(ok) == list(range(8)) and all(ok[t] >= 1 for t in retried)
