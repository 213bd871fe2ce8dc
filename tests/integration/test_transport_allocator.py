"""The endpoint tunes the allocator for large gradients (``TransportConfig.tune_allocator``).

Counted in page faults, not time: a 40 MB gradient (above glibc's 32 MiB dynamic mmap cap)
received with the default allocator is a fresh ``mmap`` every time (~9 800 faults of 4 kB);
with the tuned allocator its pages are reused from the heap. Each mode runs in its own
process: the setting is process-wide and cannot be undone.
"""

from __future__ import annotations

import platform
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(120)
ROOT = Path(__file__).resolve().parents[2]

SCRIPT = textwrap.dedent(
    """
    import resource, sys, time
    import numpy as np
    from prometheus_client import CollectorRegistry
    from common.runtime.messages import WorkerGradient
    from common.runtime.metrics import EdgeMetrics, WorkerMetrics
    from common.runtime.transport import (
        ChildEndpoint, Loop, ParentEndpoint, Received, TransportConfig,
    )
    config = TransportConfig(heartbeat_interval_s=5.0, tune_allocator=sys.argv[1] == "tuned")
    parent = ParentEndpoint("edge-0", EdgeMetrics(CollectorRegistry(), 0), config=config)
    child = ChildEndpoint("worker-0-0", WorkerMetrics(CollectorRegistry(), 0, 0),
                          parent.address, parent="edge-0", config=config)
    loop = Loop(parent, child)
    vector = np.ones(5_000_000)  # 40 MB
    deadline = time.monotonic() + 60

    def receive(k):
        for t in range(k):
            assert child.send(WorkerGradient(t, 0, 0, vector, 0.0))
        got = 0
        while got < k:
            for e in loop.poll(0.5):
                if isinstance(e, Received) and isinstance(e.message, WorkerGradient):
                    assert e.message.vector[-1] == 1.0  # a usable array, read to the end
                    got += 1
            if time.monotonic() > deadline:
                raise TimeoutError(f"{got}/{k} gradients received")

    # Warm-up: the connection, and the heap grows to hold the gradients alive at once (up
    # to 6, depending on scheduling: a later batch may still grow it by one gradient).
    receive(6)
    receive(6)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(3):  # the same pattern again, as in the next training iterations
        receive(6)
    print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 18)
    """
)


def faults_per_message(mode: str) -> float:
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT, mode],
        capture_output=True,
        text=True,
        timeout=100,
        check=True,
        cwd=ROOT,
    )
    return float(out.stdout.split()[-1])


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc-only")
def test_endpoint_reuses_receive_buffers_instead_of_faulting_them_in() -> None:
    tuned = faults_per_message("tuned")
    default = faults_per_message("default")
    # negative control: with tune_allocator=False every 40 MB gradient is faulted in (fewer
    # faults where transparent huge pages apply, still far more than reused pages)
    assert default > 1000, f"default allocator: only {default} faults per 40 MB message"
    assert tuned < default / 10, f"tuned {tuned} vs default {default} faults per message"
