"""The master's one log line per iteration attempt (every mode: local, compose, swarm).

    INFO master: iteration 37 ok 0.083 s (wall 3.1 s) edges used: edge-0,edge-2
        stragglers: edge-1,worker-0-2   (one line)

From the record row as written (already in scenario names, ``services.master.naming``), so
the log and the record cannot disagree.
"""

from __future__ import annotations

from typing import Any


def _names(row: dict[str, Any], key: str) -> list[str]:
    value = row.get(key)
    return [str(n) for n in value] if isinstance(value, list) else []


def _seconds(value: Any) -> str:
    return f"{value:.3f} s" if isinstance(value, int | float) else "- s"


def iteration_line(row: dict[str, Any]) -> str:
    """One INFO line: iteration (and attempt), outcome, time, edges used, stragglers named."""
    it = row.get("iteration", "?")
    attempt = f" attempt {row['attempt']}" if row.get("attempt") else ""
    outcome = "ok" if row.get("ok") else "FAILED"
    used = _names(row, "edges_used")
    stragglers = _names(row, "edge_stragglers") + _names(row, "worker_stragglers")
    wall = row.get("wall_s")
    parts = [
        f"INFO master: iteration {it}{attempt} {outcome} {_seconds(row.get('duration_s'))}",
        f"(wall {wall:.1f} s)" if isinstance(wall, int | float) else "",
        f"edges used: {','.join(used) if used else 'none'}",
        f"stragglers: {','.join(stragglers) if stragglers else 'none'}",
    ]
    if isinstance(row.get("loss"), int | float):
        parts.append(f"loss {row['loss']:.4g}")
    return " ".join(p for p in parts if p)
