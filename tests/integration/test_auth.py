"""CURVE authentication and name binding against a real cluster of processes.

One run (master, 2 edges, 5 worker processes; worker-1-2 is played by the test with its own
valid key) is attacked while it trains:

- plain (no CURVE) clients and a client with an unknown key, at the master and at an edge,
  claiming live nodes' names: their handshakes fail (``auth_rejected_total`` rises), they
  never receive a set-up or a model, and nothing they send reaches the model;
- worker-1-2, with its own valid key, first claims to be worker-1-0: refused
  (``impersonation``), it never gets worker-1-0's set-up;
- worker-1-2 then "restarts" (its connection closed, a new one with the same key): it takes
  its name back, gets its set-up again and answers again.

Training stays exactly uncoded gradient descent throughout.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import zmq
from prometheus_client import CollectorRegistry

from common.runtime.codec import encode
from common.runtime.messages import EdgeGradient, Register, WorkerGradient
from common.runtime.metrics import EdgeMetrics, WorkerMetrics
from common.runtime.security import AuthConfig, load_public
from common.runtime.transport import ChildEndpoint, Received, TransportConfig
from hgc.cluster import LocalCluster, reference_trace
from hgc.testbed.scrape import scrape, value
from tests.conftest import poll_for
from tests.integration.rogue import RogueWorker

pytestmark = pytest.mark.timeout(240)

ITERATIONS = 60
CONFIG: dict[str, Any] = {
    "code": {"scheme": "hgc", "workers_per_edge": [3, 3], "s_e": 1, "s_w": 1},
    "data_spec": {"kind": "digits"},
    "model_spec": {"kind": "logreg"},
    "emulation_spec": {
        f"worker-{i}-{j}": {"fixed_delay_s": 0.05} for i in range(2) for j in range(3)
    },
    "training": {"iterations": ITERATIONS, "learning_rate": 0.5, "deadline_s": 30.0},
    "seed": 11,
}


def rejected(cluster: LocalCluster, node: str, reason: str) -> float:
    role = node.split("-")[0]
    families = scrape("127.0.0.1", cluster.metrics_ports[node])
    return value(families, f"hgc_{role}_auth_rejected_total", reason=reason) or 0.0


def send_or_drop(s: zmq.Socket[bytes], frames: list[bytes]) -> None:
    """A plain client's send: once its CURVE handshake has failed, libzmq drops the pipe and
    does not reconnect, so a blocking send would wait forever; the attack is the attempt."""
    with contextlib.suppress(zmq.Again):
        s.send_multipart(frames, flags=zmq.NOBLOCK)


def plain_dealer(port: int, identity: bytes) -> zmq.Socket[bytes]:
    s: zmq.Socket[bytes] = zmq.Context.instance().socket(zmq.DEALER)
    s.setsockopt(zmq.ROUTING_ID, identity)
    s.setsockopt(zmq.LINGER, 0)
    s.connect(f"tcp://127.0.0.1:{port}")
    return s


def unknown_key_client(port: int, name: str, server_key: bytes) -> ChildEndpoint:
    """A CURVE client whose key no parent lists (it does know the parent's public key)."""
    public, secret = zmq.curve_keypair()
    config = TransportConfig(auth=AuthConfig(public, secret, server_key), heartbeat_interval_s=0.2)
    metrics = WorkerMetrics(CollectorRegistry(), 0, 0) if name.startswith("worker") else None
    return ChildEndpoint(
        name,
        metrics or EdgeMetrics(CollectorRegistry(), 0),
        f"tcp://127.0.0.1:{port}",
        parent="parent",
        config=config,
    )


def test_unknown_keys_and_impostors_are_refused_and_a_restarted_node_rejoins(
    tmp_path: Path,
) -> None:
    cluster = LocalCluster(CONFIG, workdir=tmp_path, params_trace=True, external=("worker-1-2",))
    attackers: list[Any] = []
    rogues: list[RogueWorker] = []
    with contextlib.closing(cluster):
        cluster.start(wait_ready=False)
        mport, e0port, e1port = (cluster.ports[n] for n in ("master", "edge-0", "edge-1"))
        # worker-1-2: a valid key of its own, first claiming worker-1-0's name
        first = RogueWorker(
            1,
            2,
            f"tcp://127.0.0.1:{e1port}",
            keys=cluster.keys_of("worker-1-2"),
            claim="worker-1-0",
        ).start()
        rogues.append(first)
        try:
            cluster.wait_ready()
            # plain clients with live nodes' names, sending a register and a poisoned vector
            for port, ident, msgs in [
                (mport, b"edge-0", [Register(-1, "edge", "edge-0", 0, -1)]),
                (e0port, b"worker-0-0", [Register(-1, "worker", "worker-0-0", 0, 0)]),
            ]:
                s = plain_dealer(port, ident)
                attackers.append(s)
                for m in msgs:
                    send_or_drop(s, encode(m))
            bad = np.full(10, 1e4)
            send_or_drop(attackers[0], encode(EdgeGradient(3, 0, bad, (0, 1), 0.0, 0.0)))
            send_or_drop(attackers[1], encode(WorkerGradient(3, 0, 0, bad, 0.0)))
            # CURVE clients with keys nobody listed (they know the parents' public keys)
            master_key = load_public(cluster.keys_of("edge-0") / "parent.key")
            edge0_key = load_public(cluster.keys_of("worker-0-0") / "parent.key")
            unknown = [
                unknown_key_client(mport, "edge-0", master_key),
                unknown_key_client(e0port, "worker-0-0", edge0_key),
            ]
            attackers += unknown
            unknown[0].send(Register(-1, "edge", "edge-0", 0, -1))
            unknown[1].send(Register(-1, "worker", "worker-0-0", 0, 0))
            for node, reason in [
                ("master", "handshake"),
                ("edge-0", "handshake"),
                ("master", "unknown_key"),
                ("edge-0", "unknown_key"),
                ("edge-1", "impersonation"),
            ]:
                poll_for(
                    lambda: rejected(cluster, node, reason) >= 1,  # noqa: B023
                    60,
                    what=f"{node} to count a {reason} refusal",
                )
            received = [ev for c in unknown for ev in c.poll(0.5) if isinstance(ev, Received)]
            # the restart: worker-1-2's connection goes, a new one with the same key comes
            poll_for(lambda: len(first.sent) >= 3, 60, what="worker-1-2 to answer")
            first.close()
            second = RogueWorker(
                1, 2, f"tcp://127.0.0.1:{e1port}", keys=cluster.keys_of("worker-1-2")
            ).start()
            rogues.append(second)
            poll_for(lambda: len(second.sent) >= 3, 90, what="the restarted worker-1-2 to answer")
            status = cluster.wait(180)
            logs = {n: cluster.log(n, 2000) for n in ("master", "edge-0", "edge-1")}
        finally:
            for r in rogues:
                r.close()
            for a in attackers:
                a.close()
        trace = cluster.params_trace()
        records = cluster.records()
    assert status == 0
    assert [r["iteration"] for r in records] == list(range(ITERATIONS))
    assert all(r["ok"] for r in records)
    assert received == []  # no set-up, no model, not even a heartbeat for unknown keys
    # the impostor got only its own set-up, never worker-1-0's
    assert first.setups and all(s.worker == 2 for s in first.setups)
    assert second.setups and all(s.worker == 2 for s in second.setups)
    assert any("refused" in line and "127.0.0.1" in line for line in logs["edge-1"].splitlines())
    assert "unknown key" in logs["master"] and "unknown key" in logs["edge-0"]
    # the restarted worker's answers were used again after the restart
    late = [r for r in records if r["iteration"] > min(second.sent)]
    assert any("worker-1-2" in r["worker_arrivals_s"] for r in late)
    reference = reference_trace(CONFIG)
    rel = np.linalg.norm(trace["params"] - reference, axis=1) / np.linalg.norm(reference, axis=1)
    assert float(rel.max()) < 1e-9


def test_compose_stack_gives_each_node_only_its_own_secret() -> None:
    from common.scenario import load_scenario
    from hgc.cluster import REPO_ROOT
    from hgc.compose.generate import StackOptions, build_stack

    scenario = load_scenario(REPO_ROOT / "scenarios" / "homogeneous.yaml")
    stack = build_stack(scenario, StackOptions())
    nodes = {n: s for n, s in stack["services"].items() if "hgc.node" in s.get("labels", {})}
    assert set(stack["secrets"]) == {f"hgc-key-{n}-secret" for n in nodes}
    for name, svc in nodes.items():
        assert [s["source"] for s in svc["secrets"]] == [f"hgc-key-{name}-secret"]
        assert svc["environment"]["HGC_KEYS"] == "/etc/hgc/keys"
        allow = sorted(
            c["target"].rsplit("/", 1)[1][: -len(".key")]
            for c in svc.get("configs", [])
            if "/allow/" in c["target"]
        )
        if name == "master":
            assert allow == sorted(n for n in nodes if n.startswith("edge-"))
        elif name.startswith("edge-"):
            assert allow == sorted(n for n in nodes if n.startswith(f"worker-{name[5:]}-"))
        else:
            assert allow == []
    plain = build_stack(scenario, StackOptions(curve=False))
    assert "secrets" not in plain
    assert all("HGC_KEYS" not in s.get("environment", {}) for s in plain["services"].values())


def test_a_bad_key_folder_is_one_line_and_exit_2(tmp_path: Path) -> None:
    import subprocess
    import sys

    from hgc.cluster import REPO_ROOT

    (tmp_path / "secret.key").write_text("not a certificate\n")
    for keys in (tmp_path / "missing", tmp_path):
        proc = subprocess.run(
            [sys.executable, "-m", "services.edge", "--edge", "0"]
            + ["--master-addr", "tcp://127.0.0.1:1", "--keys", str(keys)],
            capture_output=True,
            text=True,
            cwd=str(REPO_ROOT),
            timeout=60,
        )
        assert proc.returncode == 2, proc.stderr
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and "--keys" in lines[0] and str(keys) in lines[0], lines


def test_keys_round_trip_and_reject_bad_keys(tmp_path: Path) -> None:
    from common.runtime.security import KeyFileError, load_auth, tree_parents, write_keys

    dirs = write_keys(tmp_path, tree_parents([2, 1]))
    edge = load_auth(dirs["edge-0"])
    master = load_auth(dirs["master"])
    assert set(edge.allowed) == {"worker-0-0", "worker-0-1"}
    assert edge.parent_key == master.public_key and master.parent_key is None
    assert set(master.allowed) == {"edge-0", "edge-1"}
    assert (dirs["worker-1-0"] / "secret.key").stat().st_mode & 0o077 == 0
    with pytest.raises(KeyFileError, match="40-character"):
        AuthConfig(b"short", master.secret_key)
