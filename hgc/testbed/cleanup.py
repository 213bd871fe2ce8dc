"""Guaranteed cleanup: whatever the launcher sets up (processes, cgroups, namespaces) is
registered here and undone on normal exit, on an exception, on SIGTERM/SIGHUP and at
interpreter exit. Ctrl-C arrives as ``KeyboardInterrupt`` and unwinds through the same path.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import signal
import threading
from collections.abc import Callable, Iterator
from types import FrameType

log = logging.getLogger(__name__)


def pid_alive(pid: int) -> bool:
    """True if a process with this id exists (zombies count as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
        return state != "Z"
    except (OSError, IndexError):
        return True


class CleanupStack:
    """Undo actions run once each, last registered first; errors are logged, not raised,
    so that one failed step never leaves the later ones undone."""

    def __init__(self) -> None:
        self._actions: list[tuple[str, Callable[[], object]]] = []
        self._lock = threading.Lock()
        self._previous: dict[int, object] = {}
        self.problems: list[str] = []

    def push(self, what: str, action: Callable[[], object]) -> None:
        with self._lock:
            self._actions.append((what, action))

    def run(self) -> list[str]:
        """Run every pending action; returns the problems met (also kept in ``problems``).

        A second Ctrl-C (or SIGTERM) while cleaning up would leave the rest undone, so
        those signals are held off until the actions have run."""
        with _signals_deferred():
            self._run_actions()
        return list(self.problems)

    def _run_actions(self) -> None:
        while True:
            with self._lock:
                if not self._actions:
                    break
                what, action = self._actions.pop()
            try:
                result = action()
            except Exception as exc:  # noqa: BLE001 - keep undoing the rest
                self.problems.append(f"{what}: {exc}")
                log.warning("cleanup of %s failed: %s", what, exc)
                continue
            if isinstance(result, list) and result:
                self.problems.extend(f"{what}: {p}" for p in result)

    def install(self) -> None:
        """Run at interpreter exit, and make SIGTERM/SIGHUP end the run as Ctrl-C does
        (``KeyboardInterrupt`` naming the signal): ``finally`` blocks run, what was measured
        is written and the launcher says so (the default action would kill the launcher
        with its children orphaned)."""
        atexit.register(self.run)
        if threading.current_thread() is not threading.main_thread():
            return
        for sig in (signal.SIGTERM, signal.SIGHUP):
            self._previous[sig] = signal.signal(sig, interrupt_on_signal)

    def uninstall(self) -> None:
        atexit.unregister(self.run)
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)  # type: ignore[arg-type]
        self._previous.clear()


@contextlib.contextmanager
def _signals_deferred() -> Iterator[None]:
    """Ignore SIGINT/SIGTERM/SIGHUP inside the block (main thread only: elsewhere Python
    cannot change handlers, and signals are delivered to the main thread anyway)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    sigs = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in sigs}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def interrupt_on_signal(signum: int, frame: FrameType | None) -> None:
    """A signal handler raising ``KeyboardInterrupt("SIGTERM")`` (the signal's name)."""
    raise KeyboardInterrupt(signal.Signals(signum).name)
