"""``hgc run``'s live progress on a real terminal (a pty) and through a real pipe: one line
per scheme redrawn with ``\\r`` on the terminal, one plain line per iteration otherwise (and
with ``--verbose``); never a ``\\r`` outside a terminal."""

from __future__ import annotations

import os
import pty
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TextIO

from hgc.testbed.progress import Progress, format_live, format_progress


def rec(
    scheme: str, it: int, *, ok: bool = True, stragglers: tuple[str, ...] = ()
) -> dict[str, Any]:
    return {
        "scheme": scheme,
        "iteration": it,
        "ok": ok,
        "duration_s": 0.1 * (it + 1),
        "loss": 0.5,
        "edge_stragglers": [],
        "worker_stragglers": list(stragglers),
        "error": None if ok else "deadline",
    }


def feed(progress: Progress) -> None:
    progress.message("[hgc-jncss] plan")
    for it in range(3):
        progress.iteration(rec("hgc-jncss", it, stragglers=("worker-1-2",)), 3)
    progress.message("[hgc-jncss] 3 iterations")
    for it in range(2):
        progress.iteration(rec("uncoded", it), 2)
    progress.message("table")


def read_all(fd: int) -> bytes:
    out = b""
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # a pty's master reads EIO once the slave is closed
            break
        if not chunk:
            break
        out += chunk
    return out


@contextmanager
def terminal() -> Iterator[tuple[TextIO, int]]:
    master, slave = pty.openpty()
    stream = os.fdopen(slave, "w")
    try:
        yield stream, master
    finally:
        if not stream.closed:
            stream.close()
        os.close(master)


def test_on_a_terminal_each_scheme_is_one_line_redrawn_in_place() -> None:
    with terminal() as (stream, master):
        assert stream.isatty()
        progress = Progress(stream)
        feed(progress)
        stream.close()
        text = read_all(master).decode().replace("\r\n", "\n")  # the tty's ONLCR
    assert "\r" in text
    lines = text.split("\n")
    # what a terminal shows: per line, what follows the last carriage return
    shown = [line.rsplit("\r", 1)[-1].rstrip() for line in lines if line]
    jncss = [line for line in shown if line.startswith("hgc-jncss ")]
    assert jncss == ["hgc-jncss    it 3/3  0.200 s/it  stragglers: worker-1-2"], shown
    assert [line for line in shown if line.startswith("uncoded ")] == [
        "uncoded      it 2/2  0.150 s/it  stragglers: none"
    ]
    assert not any(line.startswith("[hgc-jncss] iter") for line in shown)
    assert shown[0] == "[hgc-jncss] plan" and shown[-1] == "table"
    # every redraw of a scheme's line is on that line (only \r between them, no newline)
    assert text.count("\rhgc-jncss ") == 3


def test_through_a_pipe_every_iteration_is_a_plain_line() -> None:
    read_end, write_end = os.pipe()
    stream = os.fdopen(write_end, "w")
    assert not stream.isatty()
    feed(Progress(stream))
    stream.close()
    text = read_all(read_end).decode()
    os.close(read_end)
    assert "\r" not in text
    lines = text.splitlines()
    iters = [line for line in lines if " iter " in line]
    jncss = [format_progress(rec("hgc-jncss", i, stragglers=("worker-1-2",)), 3) for i in range(3)]
    assert iters == jncss + [format_progress(rec("uncoded", i), 2) for i in range(2)]
    assert "ignored: worker-1-2" in iters[0]


def test_verbose_on_a_terminal_prints_every_iteration() -> None:
    with terminal() as (stream, master):
        feed(Progress(stream, verbose=True))
        stream.close()
        text = read_all(master).decode()
    assert "\r" not in text.replace("\r\n", "\n")
    assert text.count("[hgc-jncss] iter") == 3 and text.count("[uncoded] iter") == 2


def test_live_line_counts_names_beyond_the_first_few_and_says_failed() -> None:
    many = tuple(f"worker-0-{j}" for j in range(6))
    line = format_live("hgc", 1, 10, 0.5, rec("hgc", 1, ok=False, stragglers=many))
    assert "worker-0-0,worker-0-1,worker-0-2,worker-0-3 +2" in line
    assert "iteration 1 FAILED" in line
