"""Real kernel shaping in namespaces we create: a slower link is measurably slower, netem is
probed (absent on the build machines), and cleanup leaves no namespace behind."""

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
import socket
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", {PORT})); s.listen(8); print("ready", flush=True)
for _ in range(2):
    c, _a = s.accept()
    while c.recv(65536):
        pass
    c.close()
"""

SOURCE = f"""
import socket, sys, time
c = socket.create_connection((sys.argv[1], {PORT}), timeout=60)
t = time.perf_counter(); c.sendall(b"x" * {PAYLOAD}); c.shutdown(socket.SHUT_WR); c.recv(1)
print(time.perf_counter() - t)
"""


def send_time(lab: NetworkLab, node: str) -> float:
    out = subprocess.run(
        [*lab.command_prefix(node), sys.executable, "-c", SOURCE, lab.addresses["edge-0"]],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return float(out.stdout)


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
        fast = send_time(lab, "worker-0-0")
        slow = send_time(lab, "worker-0-1")
        sink.wait(timeout=30)
    finally:
        if sink is not None:
            sink.kill()
        problems = lab.cleanup()
    assert problems == []
    assert not any(name.startswith(f"hgcrun-{lab.owner_pid}-") for name in list_lab_netns())
    # 4x the bandwidth: expect ~4x; generous margin for a noisy machine
    assert slow / fast > 2.0, (fast, slow)


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
