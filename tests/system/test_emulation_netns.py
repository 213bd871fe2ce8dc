"""Real kernel shaping in namespaces we create: a slower link is measurably slower, netem is
probed (absent on the build machines), and cleanup leaves no namespace behind.

Load-proof: each transfer's time has a lower bound that follows from its shaped rate (load
only adds time), and the two transfers run at the same time, so the slower link's direction
is asserted against a concurrent control; the precise figures are ``make bench``'s."""

from __future__ import annotations

import subprocess
import sys

import pytest

from common.runtime.shaping import Shape
from hgc.testbed.netns import (
    NetworkLab,
    list_lab_netns,
    probe_netem,
    probe_qdisc,
    sweep_netns,
)

pytestmark = pytest.mark.timeout(120)

PORT = 47001
PAYLOAD = 400_000  # bytes

SINK = f"""
import socket, threading
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", {PORT})); s.listen(8); print("ready", flush=True)
def drain(c):
    while c.recv(65536):
        pass
    c.close()
threads = [threading.Thread(target=drain, args=(s.accept()[0],)) for _ in range(2)]
for t in threads:
    t.start()
for t in threads:
    t.join()
"""

SOURCE = f"""
import socket, sys, time
c = socket.create_connection((sys.argv[1], {PORT}), timeout=60)
t = time.perf_counter(); c.sendall(b"x" * {PAYLOAD}); c.shutdown(socket.SHUT_WR); c.recv(1)
print(time.perf_counter() - t)
"""


def send_times(lab: NetworkLab, nodes: list[str]) -> list[float]:
    """Seconds each node takes to push PAYLOAD to edge-0's sink, all nodes at the same time."""
    procs = [
        subprocess.Popen(
            [*lab.command_prefix(node), sys.executable, "-c", SOURCE, lab.addresses["edge-0"]],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for node in nodes
    ]
    times = []
    for proc in procs:
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        times.append(float(out))
    return times


def test_slower_link_is_slower_and_cleanup_leaves_nothing() -> None:
    lab = NetworkLab(["edge-0", "worker-0-0", "worker-0-1"])
    sink = None
    try:
        lab.setup(
            {
                "worker-0-0": Shape(rate_bytes_per_s=4_000_000),
                "worker-0-1": Shape(rate_bytes_per_s=1_000_000),
            },
            netem=False,
        )
        assert set(list_lab_netns()) >= {lab.hub, *(lab.netns(n) for n in lab.nodes)}
        sink = subprocess.Popen(
            [*lab.command_prefix("edge-0"), sys.executable, "-c", SINK],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert sink.stdout is not None and sink.stdout.readline().strip() == "ready"
        fast, slow = send_times(lab, ["worker-0-0", "worker-0-1"])
        sink.wait(timeout=30)
    finally:
        if sink is not None:
            sink.kill()
        problems = lab.cleanup()
    assert problems == []
    assert not any(name.startswith(f"hgcrun-{lab.owner_pid}-") for name in list_lab_netns())
    print(f"fast {fast:.3f} s, slow {slow:.3f} s, ratio {slow / fast:.2f}")
    # the shaped rates bound each transfer from below (burst: a few kB of the 400 kB) ...
    assert fast >= 0.8 * PAYLOAD / 4_000_000, (fast, slow)
    assert slow >= 0.8 * PAYLOAD / 1_000_000, (fast, slow)
    # ... and, measured together under the same load, the 4x slower link is clearly slower
    # (expected ~4x; asserted: more than 1.5x)
    assert slow > 1.5 * fast, (fast, slow)


def test_netem_probe_answers_and_cleans_up() -> None:
    available, detail = probe_netem()
    assert isinstance(available, bool) and detail
    assert not any(name.endswith("-probe") for name in list_lab_netns())


def test_sweep_removes_namespaces_of_dead_launchers_only() -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    lab_dead = NetworkLab(["worker-0-0"], owner_pid=dead.pid)
    lab_live = NetworkLab(["worker-0-0"])
    try:
        lab_dead.setup({}, netem=False)
        lab_live.setup({}, netem=False)
        leftover = subprocess.Popen(
            [
                *lab_dead.command_prefix("worker-0-0"),
                sys.executable,
                "-c",
                "import time; time.sleep(60)",
            ]
        )
        removed = sweep_netns()
        assert lab_dead.netns("worker-0-0") in removed and lab_dead.hub in removed
        assert lab_live.hub in list_lab_netns()
        assert leftover.wait(timeout=10) != 0
    finally:
        lab_live.cleanup()
        lab_dead.cleanup()


def test_qdisc_probe_tells_kinds_apart() -> None:
    assert probe_qdisc(["tbf", "rate", "1mbit", "burst", "16000", "latency", "50ms"])[0]
    assert probe_qdisc(["htb"])[0]
    available, detail = probe_qdisc(["no-such-qdisc"])
    assert not available and "no-such-qdisc" in detail
