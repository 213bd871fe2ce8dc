"""Run compute off the I/O loop and hand results back to it as events.

A worker's gradient (or an emulated straggler delay) runs in a background thread so the I/O
loop keeps answering heartbeats; completion wakes the loop through a pipe that
``transport.Loop`` polls next to its sockets::

    offload = Offload()
    loop = Loop(child, offload=offload)
    offload.submit(("gradient", t), compute_gradient, params)
    for event in loop.poll(1.0):
        if isinstance(event, TaskDone): ...   # event.key, event.result, event.error

numpy releases the GIL in its kernels, so a busy thread slows the loop only a little.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections import deque
from collections.abc import Callable, Hashable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class TaskDone:
    """A submitted task finished: ``result`` if it returned, ``error`` if it raised."""

    key: Hashable
    result: Any = None
    error: BaseException | None = None


class Offload:
    """A small thread pool whose completions are read by the I/O loop (``fileno``/``drain``)."""

    def __init__(self, max_workers: int = 1) -> None:
        if max_workers < 1:
            raise ValueError(f"max_workers must be >= 1, got {max_workers}")
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="hgc-compute")
        self._read_fd, self._write_fd = os.pipe()
        os.set_blocking(self._read_fd, False)
        self._done: deque[TaskDone] = deque()  # deque append/popleft are thread-safe
        self._pending = 0
        self._closed = False
        # close() and a task finishing after it must not race: once the pipe's fds are closed
        # their numbers are reused (by the next node's sockets, in one process), and a late
        # wake-up byte written there would corrupt whatever now owns the number
        self._fd_lock = threading.Lock()

    @property
    def pending(self) -> int:
        """Tasks submitted whose ``TaskDone`` has not been drained yet."""
        return self._pending

    def fileno(self) -> int:
        return self._read_fd

    def submit(self, key: Hashable, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        if self._closed:
            raise RuntimeError("Offload is closed")
        self._pending += 1
        future = self._pool.submit(fn, *args, **kwargs)
        future.add_done_callback(lambda f: self._finished(key, f))

    def _finished(self, key: Hashable, future: Future[Any]) -> None:
        if future.cancelled():  # close(cancel_futures=True): nobody waits for the result
            return
        error = future.exception()
        self._done.append(TaskDone(key, None if error else future.result(), error))
        with self._fd_lock:
            if self._closed:  # closed while the task ran: nobody listens, the fd is not ours
                return
            with contextlib.suppress(OSError):  # the pipe is full: the loop wakes anyway
                os.write(self._write_fd, b"x")

    def drain(self) -> list[TaskDone]:
        """Completed tasks since the last call (non-blocking)."""
        try:
            while os.read(self._read_fd, 4096):
                pass
        except BlockingIOError:
            pass
        out: list[TaskDone] = []
        while self._done:
            out.append(self._done.popleft())
        self._pending -= len(out)
        return out

    def close(self, wait: bool = True) -> None:
        with self._fd_lock:
            if self._closed:
                return
            self._closed = True
        self._pool.shutdown(wait=wait, cancel_futures=True)
        with self._fd_lock:  # no task writes after this: _finished sees _closed under the lock
            os.close(self._write_fd)
            os.close(self._read_fd)
