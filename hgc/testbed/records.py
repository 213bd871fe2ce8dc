"""The master's per-iteration records and what the run folder derives from them.

One record per iteration attempt, as the master writes it (one JSON object per line)::

    {"scheme", "iteration", "attempt", "ok", "duration_s", "edge_wait_s",
     "edge_arrivals_s": {"<edge>": s}, "edges_used": [..], "edge_stragglers": [..],
     "worker_arrivals_s": {"<edge>-<worker>": s}, "worker_stragglers": ["<edge>-<worker>", ..],
     "decode_s", "loss", "accuracy", "wall_s", "error"}

A master given the scenario's names (``hgc run``, ``hgc compose``) names every node by them
and marks each record ``"names": "scenario"``; its first line is then a run header
``{"kind": "header", "selected": [...], "left_out": [...], ...}`` (``read_header``), which
``read_records`` skips. Times are seconds. ``worker_arrivals_s`` are measured at each edge
from the moment it got the model; the worker tier's time of an iteration is the latest
arrival among the workers that were used (not listed as stragglers), over the edges used.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

REQUIRED = ("scheme", "iteration", "ok", "duration_s")


class RecordError(ValueError):
    """A master record is malformed; the message names the line and field."""


def read_records(path: Path) -> list[dict[str, Any]]:
    """Parse the master's JSONL record file: the one reader of it (launcher, clusters, tests).

    The master writes each record as one line ending in a newline, so the text after the
    last newline is a record still being written (a reader racing the master) or one that
    never will be (a master killed mid-write): it is ignored unless it already parses as a
    whole JSON value. Any other line that is not a valid record raises :class:`RecordError`
    naming the file and the line (1-based). A missing file has no records yet: ``[]``.
    """
    try:
        data = path.read_bytes()  # bytes: a torn last line may even end inside a character
    except FileNotFoundError:
        return []
    return parse_records(data, str(path))


def parse_records(data: bytes | str, source: str) -> list[dict[str, Any]]:
    """:func:`read_records` on the content itself (e.g. an in-memory record); errors name
    ``source:<line>``."""
    raw = data.encode() if isinstance(data, str) else data
    *lines, unterminated = raw.split(b"\n")
    records = [
        parse_record(line, f"{source}:{number}")
        for number, line in enumerate(lines, 1)
        if line.strip() and not _is_header(line)
    ]
    if unterminated.strip() and not _is_header(unterminated):
        where = f"{source}:{len(lines) + 1}"
        try:
            value = json.loads(unterminated)
        except ValueError:  # JSONDecodeError and UnicodeDecodeError: half-written, skip it
            return records
        check_record(value, where)  # a whole value: it must be a valid record
        records.append(value)
    return records


HEADER_PREFIX = b'{"kind": "header"'


def _is_header(line: bytes) -> bool:
    """The master's run header (``services.master.naming.NodeNames.header``), not a record."""
    return line.lstrip().startswith(HEADER_PREFIX)


def read_header(path: Path) -> dict[str, Any] | None:
    """The run header of a record file: which scenario nodes the run used (``selected``)
    and left out (``left_out``), ``positions`` (plan position -> scenario name); None for
    a record without one (older runs, hand-written master configs)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    for line in data.split(b"\n"):
        if _is_header(line):
            try:
                value = json.loads(line)
            except ValueError:
                return None
            return value if isinstance(value, dict) else None
    return None


def parse_record(raw: bytes | str, where: str) -> dict[str, Any]:
    """One complete record line -> the record; ``RecordError`` naming ``where`` otherwise."""
    try:
        record = json.loads(raw)
    except ValueError as exc:
        raise RecordError(f"{where}: not JSON: {exc}") from exc
    check_record(record, where)
    assert isinstance(record, dict)  # checked above; narrows the type
    return record


def check_record(record: Any, where: str) -> None:
    if not isinstance(record, dict):
        raise RecordError(f"{where}: a record must be a JSON object")
    for name in REQUIRED:
        if name not in record:
            raise RecordError(f"{where}: missing field {name!r}")
    if not isinstance(record["duration_s"], int | float) or record["duration_s"] < 0:
        raise RecordError(f"{where}: duration_s must be a number >= 0")


def edge_name(value: Any) -> str:
    """``0``, ``"0"`` or ``"edge-0"`` -> ``"edge-0"``."""
    text = str(value)
    return text if text.startswith("edge-") else f"edge-{text}"


def worker_name(value: Any) -> str:
    """``"0-1"`` or ``"worker-0-1"`` -> ``"worker-0-1"``."""
    text = str(value)
    return text if text.startswith("worker-") else f"worker-{text}"


def edge_of_worker(worker: str) -> str:
    """``"worker-2-1"`` -> ``"edge-2"``."""
    return "edge-" + worker_name(worker).split("-")[1]


def worker_tier_s(record: dict[str, Any]) -> float | None:
    """Latest arrival among used workers of used edges (None when nothing was recorded)."""
    arrivals: dict[str, float] = record.get("worker_arrivals_s") or {}
    stragglers = {worker_name(w) for w in record.get("worker_stragglers") or []}
    used_edges = {edge_name(e) for e in record.get("edges_used") or []}
    times = [
        t
        for key, t in arrivals.items()
        if worker_name(key) not in stragglers
        and t is not None
        and (not used_edges or edge_of_worker(key) in used_edges)
    ]
    return max(times) if times else None


@dataclass(frozen=True)
class SchemeStats:
    """Iteration-time statistics of one scheme over its successful iterations (seconds)."""

    scheme: str
    iterations: int  # successful
    attempts: int
    failed: int
    mean_s: float
    p50_s: float
    p95_s: float
    p99_s: float
    final_loss: float | None
    final_accuracy: float | None
    edge_stragglers: int  # edge-iterations ignored
    worker_stragglers: int  # worker-iterations ignored
    total_wall_s: float
    plan_switches: int = 0  # hgc-adaptive: plan switches the master made

    def to_json(self) -> dict[str, Any]:
        return {k: _json_float(v) for k, v in self.__dict__.items()}


def _json_float(v: Any) -> Any:
    return None if isinstance(v, float) and not math.isfinite(v) else v


def scheme_stats(scheme: str, records: Sequence[dict[str, Any]]) -> SchemeStats:
    ok = [r for r in records if r.get("ok")]
    times = np.array([r["duration_s"] for r in ok], dtype=float)
    pct = np.percentile(times, [50, 95, 99]) if len(times) else [math.nan] * 3
    last = next((r for r in reversed(ok) if r.get("loss") is not None), None)
    last_acc = next((r for r in reversed(ok) if r.get("accuracy") is not None), None)
    walls = [r["wall_s"] for r in records if r.get("wall_s") is not None]
    return SchemeStats(
        scheme=scheme,
        iterations=len(ok),
        attempts=len(records),
        failed=len(records) - len(ok),
        mean_s=float(times.mean()) if len(times) else math.nan,
        p50_s=float(pct[0]),
        p95_s=float(pct[1]),
        p99_s=float(pct[2]),
        final_loss=None if last is None else float(last["loss"]),
        final_accuracy=None if last_acc is None else float(last_acc["accuracy"]),
        edge_stragglers=sum(len(r.get("edge_stragglers") or []) for r in ok),
        worker_stragglers=sum(len(r.get("worker_stragglers") or []) for r in ok),
        total_wall_s=float(max(walls)) if walls else float(times.sum()),
        plan_switches=sum(1 for r in records if r.get("plan_switch")),
    )


def wall_clock(records: Sequence[dict[str, Any]]) -> np.ndarray:
    """Wall-clock seconds at the end of each record: ``wall_s`` when the master gives it,
    else the running sum of iteration durations. Shape (len(records),)."""
    if records and all(r.get("wall_s") is not None for r in records):
        return np.array([r["wall_s"] for r in records], dtype=float)
    return np.cumsum([r["duration_s"] for r in records], dtype=float)
