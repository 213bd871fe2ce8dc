"""Allocator tuning for processes that receive large messages.

ZeroMQ allocates every received message with ``malloc``. With glibc's defaults a block of
more than 32 MiB (a 40 MB gradient) is always a fresh ``mmap``: every message costs ~10 000
page faults and the kernel zeroing the pages, which on loopback halves the receive rate (see
``bench/bench_transport.py``). ``tune_allocator()`` makes glibc serve large blocks from the
heap and keep freed memory for reuse, so the next gradient lands in pages already mapped
(the same reason numpy's large temporaries get faster).

Trade-off: memory freed by the process is returned to the system only above
``trim_threshold_bytes`` of free heap; the peak resident size does not grow.
Call it once at process start: the first transport endpoint of a process does
(``TransportConfig.tune_allocator``, default True), so every service gets it. On non-glibc
systems it does nothing and returns False.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import platform

# mallopt parameters from <malloc.h>
_M_TRIM_THRESHOLD = -1
_M_TOP_PAD = -2
_M_MMAP_MAX = -4


def _libc() -> ctypes.CDLL | None:
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    name = ctypes.util.find_library("c")
    return ctypes.CDLL(name) if name else None


def tune_allocator(trim_threshold_bytes: int = 512 << 20, top_pad_bytes: int = 64 << 20) -> bool:
    """Serve large allocations from the reusable heap instead of per-call mmap (glibc only).

    Parameters
    ----------
    trim_threshold_bytes : int
        Free heap kept before memory is returned to the system (bytes, >= 0).
    top_pad_bytes : int
        Extra heap requested from the kernel each time the heap grows (bytes, >= 0).

    Returns
    -------
    bool
        True if the settings were applied, False where the C library is not glibc.
    """
    for name, value in (
        ("trim_threshold_bytes", trim_threshold_bytes),
        ("top_pad_bytes", top_pad_bytes),
    ):
        if not 0 <= value < 2**31:
            raise ValueError(f"{name} must be in [0, 2**31), got {value}")
    libc = _libc()
    if libc is None:
        return False
    ok = libc.mallopt(_M_MMAP_MAX, 0)
    ok &= libc.mallopt(_M_TRIM_THRESHOLD, trim_threshold_bytes)
    ok &= libc.mallopt(_M_TOP_PAD, top_pad_bytes)
    return bool(ok)
