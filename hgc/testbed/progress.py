"""Live progress of ``hgc run``.

On a terminal (and without ``--verbose``): one line per scheme, redrawn in place with ``\\r``
as its records land::

    hgc-jncss    it 37/100  0.083 s/it  stragglers: worker-1-2

Otherwise (output to a file or a pipe, or ``--verbose``): one plain line per iteration
(iteration, its time, loss, stragglers ignored, outcome), for logs and CI. ``\\r`` is never
written to anything but a terminal. Node names are the records' (the scenario's).
"""

from __future__ import annotations

import sys
from typing import Any, TextIO

from hgc.testbed.records import edge_name, worker_name

MAX_NAMES = 4  # stragglers named on the live line; more are counted


def _stragglers(record: dict[str, Any]) -> list[str]:
    strag_e = record.get("edge_stragglers") or []
    strag_w = record.get("worker_stragglers") or []
    return [edge_name(e) for e in strag_e] + [worker_name(w) for w in strag_w]


def format_progress(record: dict[str, Any], total: int | None) -> str:
    """One human-readable line for one master record."""
    it = record.get("iteration", "?")
    of = f"/{total}" if total else ""
    status = "ok" if record.get("ok") else f"FAILED ({record.get('error') or 'no error given'})"
    loss = record.get("loss")
    ignored = _stragglers(record)
    parts = [
        f"[{record.get('scheme', '?')}] iter {it}{of}",
        f"{record.get('duration_s', float('nan')):.3f} s",
        f"loss {loss:.4f}" if isinstance(loss, int | float) else "loss -",
        f"ignored: {', '.join(ignored) if ignored else 'none'}",
        status,
    ]
    if record.get("attempt"):
        parts.insert(1, f"attempt {record['attempt']}")
    return "  ".join(parts)


def format_live(
    scheme: str, done: int, total: int | None, mean_s: float | None, last: dict[str, Any]
) -> str:
    """The live line of a scheme: iterations done, mean time per iteration, the last
    iteration's stragglers (at most ``MAX_NAMES`` named)."""
    of = f"/{total}" if total else ""
    names = _stragglers(last)
    more = len(names) - MAX_NAMES
    shown = ",".join(names[:MAX_NAMES]) + (f" +{more}" if more > 0 else "")
    parts = [
        f"{scheme:<12} it {done}{of}",
        f"{mean_s:.3f} s/it" if mean_s is not None else "- s/it",
        f"stragglers: {shown or 'none'}",
    ]
    if not last.get("ok"):
        parts.append(f"iteration {last.get('iteration', '?')} FAILED")
    return "  ".join(parts)


class Progress:
    """``tty``: redraw one line per scheme (default: whether ``stream`` is a terminal);
    ``verbose``: one line per iteration even on a terminal."""

    def __init__(
        self, stream: TextIO | None = None, tty: bool | None = None, verbose: bool = False
    ) -> None:
        self.stream = stream if stream is not None else sys.stdout
        self.tty = self.stream.isatty() if tty is None else tty
        self.live = self.tty and not verbose
        self._width = 0
        self._scheme: str | None = None
        self._done = 0
        self._sum_s = 0.0

    def iteration(self, record: dict[str, Any], total: int | None = None) -> None:
        if not self.live:
            self.stream.write(format_progress(record, total) + "\n")
            self.stream.flush()
            return
        scheme = str(record.get("scheme", "?"))
        if scheme != self._scheme:  # a new scheme: its own line
            self._end_line()
            self._scheme, self._done, self._sum_s = scheme, 0, 0.0
        if record.get("ok"):
            self._done += 1
            self._sum_s += float(record.get("duration_s") or 0.0)
        mean = self._sum_s / self._done if self._done else None
        line = format_live(scheme, self._done, total, mean, record)
        pad = max(0, self._width - len(line))
        self.stream.write("\r" + line + " " * pad)
        self._width = len(line)
        self.stream.flush()

    def _end_line(self) -> None:
        """Keep the live line as it stands and move below it."""
        if self._width:
            self.stream.write("\n")
            self._width = 0

    def message(self, text: str) -> None:
        """A line that stays (scheme started/finished, mechanism reports)."""
        self._end_line()
        self._scheme = None
        self.stream.write(text + "\n")
        self.stream.flush()
