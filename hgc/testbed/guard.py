"""Nodes die with their launcher.

A node started by :class:`hgc.cluster.LocalCluster` must not outlive the ``hgc run`` /
``hgc cluster`` process that started it, even when that process is SIGKILLed and cannot run
its clean-up. Three layers, each enough on its own for the common case:

1. ``parent_death_preexec``: in the child between fork and exec, ``prctl(PR_SET_PDEATHSIG,
   SIGKILL)`` (Linux): the kernel kills the node the moment its parent dies. It is kept across
   ``exec`` (also through ``ip netns exec``), so it covers the node's interpreter.
2. ``python -m hgc.testbed.guard MODULE ARGS...``: runs the node's module as ``python -m
   MODULE`` would, after starting a daemon thread that checks every ``POLL_S`` that its
   parent is still the launcher (``os.getppid()``); when the node has been re-parented it
   exits at once with a one-line message. This covers kernels without the parent-death
   signal and a parent thread (not process) ending.
3. Every node carries ``HGC_LAUNCHER=<pid>:<start time>`` in its environment, so
   ``hgc run --cleanup`` can find nodes whose launcher is gone (:func:`orphan_nodes`).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import runpy
import signal
import sys
import threading
import time
from pathlib import Path

ENV = "HGC_LAUNCHER"
PR_SET_PDEATHSIG = 1
POLL_S = 0.5
_LIBC: ctypes.CDLL | None = None


def _libc() -> ctypes.CDLL | None:
    global _LIBC
    if _LIBC is None and sys.platform.startswith("linux"):
        with contextlib.suppress(OSError):
            _LIBC = ctypes.CDLL(None, use_errno=True)
    return _LIBC


def set_parent_death_signal(sig: int = signal.SIGKILL) -> bool:
    """``prctl(PR_SET_PDEATHSIG, sig)`` for the calling process; False where unsupported."""
    libc = _libc()
    if libc is None:
        return False
    return int(libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0)) == 0


def parent_death_preexec() -> None:
    """``preexec_fn`` for ``subprocess.Popen``: async-signal-safe enough (one prctl call;
    the libc handle is loaded in the parent by :func:`launcher_token` beforehand)."""
    set_parent_death_signal(signal.SIGKILL)


def proc_stat_fields(pid: int) -> list[str] | None:
    """The fields of /proc/PID/stat after the command name (which may hold spaces and
    parentheses): index 0 is field 3, the state; None when there is no such process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()


def start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (/proc/PID/stat field 22): with the
    pid it identifies a process even after the pid is reused."""
    fields = proc_stat_fields(pid)
    return fields[19] if fields is not None and len(fields) > 19 else None


def launcher_token(pid: int | None = None) -> str:
    """``<pid>:<start time>`` of the launcher (this process by default)."""
    _libc()  # load before any fork, so the preexec hook only calls into it
    pid = os.getpid() if pid is None else pid
    return f"{pid}:{start_time(pid) or '?'}"


def token_alive(token: str) -> bool:
    """Is the launcher named by ``token`` still running (same pid, same start time)?"""
    pid_text, _, started = token.partition(":")
    try:
        pid = int(pid_text)
    except ValueError:
        return False
    now = start_time(pid)
    if now is None:
        return False
    return started in ("", "?") or now == started


def orphan_nodes() -> list[tuple[int, str]]:
    """(pid, command line) of every process carrying ``HGC_LAUNCHER`` whose launcher is gone."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        for item in environ.split(b"\0"):
            if item.startswith(ENV.encode() + b"="):
                token = item[len(ENV) + 1 :].decode(errors="replace")
                if not token_alive(token):
                    cmd = (
                        (entry / "cmdline")
                        .read_bytes()
                        .replace(b"\0", b" ")
                        .decode(errors="replace")
                    )
                    found.append((int(entry.name), cmd.strip()[:120]))
                break
    return found


def kill_orphans() -> list[str]:
    """SIGKILL (after SIGCONT) every orphaned node; one line per node killed."""
    lines = []
    for pid, cmd in orphan_nodes():
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGCONT)
            os.kill(pid, signal.SIGKILL)
            lines.append(f"killed orphaned node pid {pid}: {cmd}")
    return lines


def watch_parent(parent: int, poll_s: float = POLL_S) -> threading.Thread:
    """Daemon thread: exit the process (status 3) once its parent is no longer ``parent``."""

    def loop() -> None:
        while True:
            if os.getppid() != parent:
                sys.stderr.write(f"{_name()}: launcher (pid {parent}) is gone; exiting\n")
                sys.stderr.flush()
                os._exit(3)
            time.sleep(poll_s)

    t = threading.Thread(target=loop, name="parent-watch", daemon=True)
    t.start()
    return t


def _name() -> str:
    return os.environ.get("HGC_NODE_NAME") or "hgc node"


def main(argv: list[str]) -> None:
    if not argv:
        sys.exit("usage: python -m hgc.testbed.guard MODULE [ARGS...]")
    token = os.environ.get(ENV, "")
    pid_text = token.partition(":")[0]
    if pid_text.isdigit():
        parent = int(pid_text)
        if os.getppid() != parent:  # the launcher died before we got here
            sys.exit(f"{_name()}: launcher (pid {parent}) is gone; not starting")
        watch_parent(parent)
    module, *args = argv
    sys.argv = [module, *args]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main(sys.argv[1:])
