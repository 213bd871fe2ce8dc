"""A real CPU quota on this machine (root, cgroup v1 here; v2 on Raspberry Pi OS)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from hgc.testbed.cgroups import CpuQuotas, detect_cgroups

BUSY = (
    "import time\nt = time.perf_counter()\nx = 0\n"
    "c = time.process_time()\nfor i in range(6_000_000): x += i\n"
    "print(time.process_time() - c, time.perf_counter() - t)"
)

pytestmark = pytest.mark.timeout(120)


def cpu_share(quotas: CpuQuotas | None, node: str) -> float:
    """CPU seconds / wall seconds of a busy loop (at most 1 for one thread)."""
    # the child waits on stdin so it is inside its group before the loop starts
    code = "import sys; sys.stdin.readline()\n" + BUSY
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        if quotas is not None:
            quotas.attach(node, proc.pid)
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()
        out, _ = proc.communicate(timeout=100)
    finally:
        proc.kill()
    cpu, wall = (float(x) for x in out.split())
    return cpu / wall


def test_quarter_cpu_quota_slows_a_busy_loop() -> None:
    support = detect_cgroups()
    if not support.available:
        pytest.fail(f"this machine is expected to offer cgroups: {support.reason}")
    quotas = CpuQuotas(support)
    try:
        quotas.create("worker-0-0", 0.25)
        assert quotas.quota_of("worker-0-0") == pytest.approx(0.25)
        free = cpu_share(None, "")
        throttled = cpu_share(quotas, "worker-0-0")
        stat = (quotas.groups["worker-0-0"] / "cpu.stat").read_text()
    finally:
        assert quotas.cleanup() == []
    assert not quotas.base.exists()
    # The quota is a ceiling on the CPU share, whatever else runs on this shared machine
    # (contention only lowers both shares): 0.25 of a core, with a margin for accounting.
    assert throttled < 0.35, (free, throttled)
    assert int(stat.split("nr_throttled")[1].split()[0]) > 0, stat


def test_cleanup_kills_what_is_left_in_the_group() -> None:
    quotas = CpuQuotas(detect_cgroups())
    quotas.create("worker-0-0", 0.5)
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    quotas.attach("worker-0-0", proc.pid)
    assert quotas.cleanup() == []
    assert proc.wait(timeout=10) != 0
    assert not quotas.base.exists()
