"""The cleanup stack: every action runs once, in reverse, even when one of them fails."""

from __future__ import annotations

import os
import subprocess
import sys

from hgc.testbed.cleanup import CleanupStack, pid_alive


def test_runs_in_reverse_once_and_survives_failures() -> None:
    done: list[str] = []
    stack = CleanupStack()
    stack.push("a", lambda: done.append("a"))

    def boom() -> None:
        raise OSError("busy")

    stack.push("b", boom)
    stack.push("c", lambda: done.append("c"))
    problems = stack.run()
    assert done == ["c", "a"]
    assert problems == ["b: busy"]
    stack.run()
    assert done == ["c", "a"]


def test_returned_problem_lists_are_collected() -> None:
    stack = CleanupStack()
    stack.push("cgroups", lambda: ["cannot remove x"])
    assert stack.run() == ["cgroups: cannot remove x"]


def test_pid_alive() -> None:
    assert pid_alive(os.getpid())
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    assert not pid_alive(proc.pid)
