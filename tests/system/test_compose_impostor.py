"""Impostors on a real compose stack's network (issue 10): while the stack trains with CURVE
on (the default), attacker containers of the same image claim ``worker-0-0`` at its edge and
``edge-0`` at the master, with no key (plain DEALERs) and with a fresh key of their own that is
on no allow-list, and send hostile payloads. They receive nothing, both parents count the
refused handshakes in ``hgc_<role>_auth_rejected_total{reason}``, the attack is known to have
ended while training still ran, and training completes every iteration, equal to local
gradient descent.

Load-proof by construction: the attacker container is started (detached) right after the stack
and waits, imports done, for a ``go`` file; the test drops it only once the master has recorded
iterations, and the attacker stops only when each impostor has been refused three times (its
own socket monitor), not after a fixed time. "While training" is then checked on the record:
fewer iterations than the run's are recorded after the attackers' report.
"""

from __future__ import annotations

import json
import re
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.conftest import poll_for
from tests.system.docker_helpers import (  # noqa: F401 (fixtures)
    container_ip,
    docker_client,
    hgc_image,
    run_on_network,
    running_stack,
    sweep_leftovers,
)

pytestmark = [pytest.mark.docker, pytest.mark.slow, pytest.mark.timeout(420)]

# 2 edges x 2 workers (7 containers), deterministic 0.1 s of emulated compute per iteration.
SCENARIO = """
name: impostor
seed: 5
topology:
  workers_per_edge: [2, 2]
  devices:
    steady: {shift_s: 0.1, rate: .inf, cpu_fraction: 1.0}
  links:
    fast-lan: {latency_s: 0.0005, bandwidth: 1gbit}
  workers: {device: steady, link: fast-lan}
  edges: {device: steady, uplink: fast-lan}
stragglers: {kind: shifted-exponential}
model: {kind: logreg, l2: 0.0001}
data: {kind: digits, test_fraction: 0.2, seed: 0}
training: {iterations: 30, learning_rate: 0.5, eval_every: 50}
code: {s_e: 1, s_w: 1}
schemes: [hgc]
emulation: {compute: delay, cpu_quota: false, network: in-process}
"""
ITERATIONS = 200
GO_AFTER = 3  # recorded iterations before the attack starts

# Runs in a container on the stack's network. Four impostors: a plain DEALER (no CURVE) and a
# CURVE client with a fresh keypair (the parent's public key is public), each claiming
# worker-0-0 at edge-0 and edge-0 at the master. Each keeps sending hostile messages (register,
# ready, heartbeats, NaN and huge gradients for every iteration, garbage frames) and counts
# what it receives and the handshake refusals its socket monitor reports, reconnecting after
# each refusal. It stops once every impostor was refused three times (and at least 3 s
# passed), then writes /att/result.json.
ATTACKER = r"""
import json, os, time
import numpy as np, zmq
from common.runtime.codec import encode
from common.runtime.messages import (
    EdgeGradient, Heartbeat, Ready, Register, WorkerGradient)

ctx = zmq.Context()
rogue_public, rogue_secret = zmq.curve_keypair()
n = int(os.environ["ITERATIONS"])
P = 650  # digits logreg: 64 x 10 + 10
bads = [np.full(P, np.nan), np.full(P, 1e4), np.full(3, np.inf)]

def as_worker():
    out = [Register(-1, "worker", "worker-0-0", 0, 0), Ready(-1, "worker-0-0", 0, 0),
           Heartbeat(-1, "worker-0-0")]
    out += [WorkerGradient(i, 0, 0, bads[i % 3], 0.0) for i in range(n)]
    return [encode(m) for m in out]

def as_edge():
    out = [Register(-1, "edge", "edge-0", 0, -1), Ready(-1, "edge-0", 0, -1),
           Heartbeat(-1, "edge-0")]
    out += [EdgeGradient(i, 0, bads[i % 3], (0, 1), 0.0, 0.0) for i in range(n)]
    return [encode(m) for m in out]

garbage = [[b"\x00garbage"], [os.urandom(64)], [b"\x92\xa3op", b"x" * 1000]]
targets = [  # label, host, claimed name, server key (None: no CURVE at all), payloads
    ("plain@edge-0", "edge-0", b"worker-0-0", None, as_worker() + garbage),
    ("plain@master", "master", b"edge-0", None, as_edge() + garbage),
    ("rogue-key@edge-0", "edge-0", b"worker-0-0", os.environ["EDGE_KEY"], as_worker() + garbage),
    ("rogue-key@master", "master", b"edge-0", os.environ["MASTER_KEY"], as_edge() + garbage),
]
from zmq.utils.monitor import recv_monitor_message
REFUSED = (zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
           | zmq.EVENT_HANDSHAKE_FAILED_AUTH)
print("ready", flush=True)
while not os.path.exists("/att/go"):
    time.sleep(0.05)
start = time.time()
stats = {t[0]: {"received": 0, "sent": 0, "refused": 0, "connections": 0} for t in targets}

def connect(label, host, name, key):
    # A fresh connection each time: libzmq does not retry one refused by the handshake.
    s = ctx.socket(zmq.DEALER)
    s.setsockopt(zmq.ROUTING_ID, name)
    s.setsockopt(zmq.LINGER, 0)
    if key is not None:
        s.curve_serverkey = key.encode()
        s.curve_publickey = rogue_public
        s.curve_secretkey = rogue_secret
    mon = s.get_monitor_socket(REFUSED)
    s.connect(f"tcp://{host}:5555")
    stats[label]["connections"] += 1
    return [s, mon, time.time()]

live = {t[0]: connect(*t[:4]) for t in targets}
while True:
    for label, host, name, key, payloads in targets:
        s, mon, since = live[label]
        st = stats[label]
        for frames in payloads:
            try:
                s.send_multipart(frames, zmq.NOBLOCK)
                st["sent"] += 1
            except zmq.Again:
                break
        while s.poll(0):
            s.recv_multipart()
            st["received"] += 1
        refused = False
        while mon.poll(0):
            if recv_monitor_message(mon)["event"] & REFUSED:
                st["refused"] += 1
                refused = True
        if refused or time.time() - since > 5:
            s.disable_monitor()
            mon.close(0)
            s.close(0)
            live[label] = connect(label, host, name, key)
    elapsed = time.time() - start
    if elapsed > 3 and all(st["refused"] >= 3 for st in stats.values()):
        break
    if elapsed > 120:
        break
    time.sleep(0.1)
result = {"start": start, "end": time.time(), "stats": stats}
with open("/att/result.tmp", "w") as f:
    json.dump(result, f)
os.replace("/att/result.tmp", "/att/result.json")
print(json.dumps(result), flush=True)
"""


@pytest.fixture(autouse=True)
def _clean(docker_client: Any) -> Any:  # noqa: F811
    yield
    sweep_leftovers(docker_client)


def auth_rejected(ip: str, role: str) -> dict[str, float]:
    """``hgc_<role>_auth_rejected_total`` per reason, scraped from the node's /metrics."""
    with urllib.request.urlopen(f"http://{ip}:9100/metrics", timeout=10) as resp:
        text = resp.read().decode()
    pattern = rf'^hgc_{role}_auth_rejected_total\{{reason="(\w+)"\}} (\S+)$'
    return {m[1]: float(m[2]) for m in re.finditer(pattern, text, re.MULTILINE)}


def _ok(stack: Any) -> int:
    return len([r for r in stack.records() if r["ok"]])


def test_keyless_and_unlisted_impostors_get_nothing_while_training_stays_exact(
    docker_client: Any,  # noqa: F811
    hgc_image: str,  # noqa: F811
    tmp_path: Path,
) -> None:
    from common.runtime.security import load_public
    from hgc.cluster import reference_trace

    scenario = tmp_path / "impostor.yaml"
    scenario.write_text(SCENARIO)
    with running_stack(
        scenario,
        hgc_image,
        iterations=ITERATIONS,
        training={"deadline_s": 30.0, "on_failure": "stop"},
        master_overrides={"HGC_SAVE_PARAMS": "/out/params.npy"},
    ) as stack:
        public = stack.workdir / "keys" / "public"
        att = stack.workdir / "attack"
        att.mkdir()
        att.chmod(0o777)
        attacker = run_on_network(
            docker_client,
            stack,
            hgc_image,
            ["python", "-c", ATTACKER],
            volumes={str(att): {"bind": "/att", "mode": "rw"}},
            environment={
                "ITERATIONS": str(ITERATIONS),
                "MASTER_KEY": load_public(public / "master.key").decode(),
                "EDGE_KEY": load_public(public / "edge-0.key").decode(),
            },
        )
        try:
            ips = {n: container_ip(stack.container(docker_client, n)) for n in ("master", "edge-0")}
            poll_for(lambda: _ok(stack) >= GO_AFTER, timeout=180, interval=0.2, what="training")
            # Negative control: nothing was refused before the attack.
            before = {n: auth_rejected(ip, n.split("-")[0]) for n, ip in ips.items()}
            assert all(sum(c.values()) == 0 for c in before.values()), before
            poll_for(lambda: b"ready" in attacker.logs(), timeout=120, what="the attacker")
            at_go = _ok(stack)
            (att / "go").write_text("")
            result_file = att / "result.json"
            try:
                poll_for(result_file.exists, timeout=180, interval=0.2, what="the report")
            except TimeoutError:
                raise AssertionError(f"no attackers' report:\n{attacker.logs().decode()}") from None
            result = json.loads(result_file.read_text())

            # The parents counted the refused handshakes: keyless ("handshake") and an
            # unlisted key ("unknown_key", the ZAP denial), at both tiers.
            def refused_at_both() -> dict[str, dict[str, float]]:
                a = {n: auth_rejected(ip, n.split("-")[0]) for n, ip in ips.items()}
                return (
                    a
                    if all(c["handshake"] > 0 and c["unknown_key"] > 0 for c in a.values())
                    else {}
                )

            after = poll_for(
                refused_at_both, timeout=30, interval=0.5, what="auth_rejected_total to rise"
            )
            # The attack ended while training still ran: iterations were still to go.
            done_after_attack = _ok(stack)
            attack_log = attacker.logs().decode()
        finally:
            attacker.remove(force=True)
        code = stack.wait_master_exit(docker_client, timeout=240)
        records = stack.records()
        log = stack.logs("master")
        remote = np.load(stack.workdir / "out" / "params.npy")
        config = stack.config
    print(f"attack: {result['stats']}; parents: {after}")
    print(f"iterations recorded at go: {at_go}, after the attackers' report: {done_after_attack}")
    assert done_after_attack < ITERATIONS, (done_after_attack, attack_log)
    for label, st in result["stats"].items():
        assert st["received"] == 0, (label, st)  # no set-up, model, heartbeat: nothing
        assert st["refused"] >= 3, (label, st)
        assert st["sent"] > 0, (label, st)  # the hostile payloads were handed to zmq
    assert after["master"]["impersonation"] == 0 and after["edge-0"]["impersonation"] == 0
    assert code == 0, log
    assert all(r["ok"] for r in records), [r["error"] for r in records if not r["ok"]]
    assert [r["iteration"] for r in records] == list(range(ITERATIONS))
    local = reference_trace(config, ITERATIONS)[-1]
    np.testing.assert_allclose(remote, local, rtol=1e-7, atol=1e-9)
    # Negative control of the exactness check.
    with pytest.raises(AssertionError):
        np.testing.assert_allclose(remote, local * 1.001, rtol=1e-7, atol=1e-9)
