"""Allocator tuning: counted in page faults (not time), in a subprocess so the test process
keeps its own allocator settings."""

from __future__ import annotations

import platform
import subprocess
import sys
from pathlib import Path

import pytest

from common.runtime.memory import tune_allocator

pytestmark = pytest.mark.timeout(60)
ROOT = Path(__file__).resolve().parents[3]

SCRIPT = """
import resource, sys
import numpy as np
from common.runtime.memory import tune_allocator
applied = tune_allocator() if sys.argv[1] == "tuned" else False
np.ones(5_000_000)  # warm up: the first one faults in either case
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(10):
    a = np.ones(5_000_000)  # 40 MB, as a received gradient
    del a
print(applied, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def faults(mode: str) -> tuple[str, int]:
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT, mode],
        capture_output=True,
        text=True,
        timeout=50,
        check=True,
        cwd=ROOT,
    ).stdout.split()
    return out[0], int(out[1])


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc-only")
def test_large_buffers_are_reused_instead_of_faulted_in() -> None:
    applied, tuned = faults("tuned")
    _, default = faults("default")
    assert applied == "True"
    # 10 fresh 40 MB mmaps fault thousands of pages in (fewer with transparent huge
    # pages); reused heap pages almost none
    assert default > 10 * max(tuned, 100)


def test_arguments_are_checked() -> None:
    with pytest.raises(ValueError, match="trim_threshold_bytes"):
        tune_allocator(trim_threshold_bytes=-1)
    with pytest.raises(ValueError, match="top_pad_bytes"):
        tune_allocator(top_pad_bytes=2**31)
