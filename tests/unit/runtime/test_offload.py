"""Offload: results and errors come back through drain(); the pipe wakes a poller."""

from __future__ import annotations

import select
import threading

import pytest

from common.runtime.offload import Offload, TaskDone
from tests.conftest import poll_for

pytestmark = pytest.mark.timeout(30)


def test_results_errors_and_wakeup() -> None:
    off = Offload()
    gate = threading.Event()
    off.submit("a", lambda: gate.wait(10) and 5)
    assert off.drain() == [] and off.pending == 1
    assert select.select([off.fileno()], [], [], 0)[0] == []  # nothing to wake for yet
    gate.set()
    assert select.select([off.fileno()], [], [], 10)[0] == [off.fileno()]
    done = poll_for(off.drain, timeout=10, what="task a")
    assert done == [TaskDone("a", 5, None)] and off.pending == 0
    off.submit(("b", 1), lambda x: x / 0, 3)
    (err,) = poll_for(off.drain, timeout=10, what="task b")
    assert err.key == ("b", 1) and isinstance(err.error, ZeroDivisionError)
    off.close()
    with pytest.raises(RuntimeError, match="closed"):
        off.submit("c", lambda: 1)


def test_tasks_run_in_submission_order_one_at_a_time() -> None:
    off = Offload()
    order: list[int] = []
    for k in range(20):
        off.submit(k, order.append, k)
    got: list[TaskDone] = []

    def all_done() -> bool:
        got.extend(off.drain())
        return len(got) == 20

    poll_for(all_done, timeout=10)
    assert order == list(range(20)) and [d.key for d in got] == list(range(20))
    off.close()


def test_bad_pool_size() -> None:
    with pytest.raises(ValueError, match="max_workers"):
        Offload(0)


def test_a_task_finishing_after_close_writes_nothing_into_a_reused_fd() -> None:
    # close(wait=False) while a task runs, then a new pipe takes the freed fd numbers (as the
    # next in-process node's sockets did): the late task must not write its wake-up byte
    # there (it corrupted a worker of the next cluster and stalled its Ready barrier)
    import os
    import threading
    import time

    release = threading.Event()
    offload = Offload()
    offload.submit("slow", release.wait, 30)
    time.sleep(0.05)  # the task is running
    old = {offload.fileno(), offload._write_fd}
    offload.close(wait=False)
    r, w = os.pipe()
    r2, w2 = os.pipe()
    try:
        assert old & {r, w, r2, w2}, "the freed fd numbers were not reused"
        release.set()
        time.sleep(0.3)  # the task finishes and runs its done-callback
        for fd in (r, r2):
            os.set_blocking(fd, False)
            try:
                data = os.read(fd, 10)
            except BlockingIOError:
                data = b""
            assert data == b"", f"a late wake-up byte landed in reused fd {fd}"
    finally:
        for fd in (r, w, r2, w2):
            os.close(fd)
