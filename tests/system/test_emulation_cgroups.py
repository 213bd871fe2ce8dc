"""A real CPU quota on this machine (root, cgroup v1 here; v2 on Raspberry Pi OS)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from common.testbed.cgroups import CpuQuotas, detect_cgroups

BUSY = (
    "import time\nt = time.perf_counter()\nx = 0\n"
    "for i in range(6_000_000): x += i\nprint(time.perf_counter() - t)"
)

pytestmark = pytest.mark.timeout(120)


def timed_busy(quotas: CpuQuotas | None, node: str) -> float:
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
    return float(out)


def test_quarter_cpu_quota_slows_a_busy_loop() -> None:
    support = detect_cgroups()
    if not support.available:
        pytest.fail(f"this machine is expected to offer cgroups: {support.reason}")
    quotas = CpuQuotas(support)
    try:
        quotas.create("worker-0-0", 0.25)
        assert quotas.quota_of("worker-0-0") == pytest.approx(0.25)
        free = timed_busy(None, "")
        throttled = timed_busy(quotas, "worker-0-0")
    finally:
        assert quotas.cleanup() == []
    assert not quotas.base.exists()
    # 25 % of a core: ~4x slower; generous margin for a shared, noisy machine
    assert throttled / free > 2.0, (free, throttled)


def test_cleanup_kills_what_is_left_in_the_group() -> None:
    quotas = CpuQuotas(detect_cgroups())
    quotas.create("worker-0-0", 0.5)
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    quotas.attach("worker-0-0", proc.pid)
    assert quotas.cleanup() == []
    assert proc.wait(timeout=10) != 0
    assert not quotas.base.exists()
