"""Live progress of ``hgc run``: one status line per iteration (iteration, its time, loss,
stragglers ignored). On a terminal the line is redrawn in place and a finished scheme leaves
one summary line; otherwise every iteration is a plain line, for logs and CI."""

from __future__ import annotations

import sys
from typing import Any, TextIO

from hgc.testbed.records import edge_name, worker_name


def format_progress(record: dict[str, Any], total: int | None) -> str:
    """One human-readable line for one master record."""
    it = record.get("iteration", "?")
    of = f"/{total}" if total else ""
    status = "ok" if record.get("ok") else f"FAILED ({record.get('error') or 'no error given'})"
    loss = record.get("loss")
    strag_e = record.get("edge_stragglers") or []
    strag_w = record.get("worker_stragglers") or []
    ignored = [edge_name(e) for e in strag_e] + [worker_name(w) for w in strag_w]
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


class Progress:
    def __init__(self, stream: TextIO | None = None, tty: bool | None = None) -> None:
        self.stream = stream if stream is not None else sys.stdout
        self.tty = self.stream.isatty() if tty is None else tty
        self._width = 0

    def iteration(self, record: dict[str, Any], total: int | None = None) -> None:
        line = format_progress(record, total)
        if self.tty:
            pad = max(0, self._width - len(line))
            self.stream.write("\r" + line + " " * pad)
            self._width = len(line)
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def message(self, text: str) -> None:
        """A line that stays (scheme started/finished, mechanism reports)."""
        if self.tty and self._width:
            self.stream.write("\r" + " " * self._width + "\r")
            self._width = 0
        self.stream.write(text + "\n")
        self.stream.flush()
