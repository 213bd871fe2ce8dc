"""The ``stragglers`` section -> ``common.perf.system.StragglerModel``.

- ``{kind: shifted-exponential}`` (default): independent draws from each worker's profile.
- ``{kind: markov, p_slow, p_recover, slowdown}``: persistent stragglers, a two-state chain
  per worker.
- ``{kind: trace, path, load}``: replay a CSV of measured times (``iteration,node,seconds``,
  path relative to the scenario file) recorded at load fraction ``load`` (default 1/M, the
  uncoded load).
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import numpy as np

from common.perf.system import StragglerModel
from common.scenario.fields import (
    ScenarioError,
    as_mapping,
    check_keys,
    get_choice,
    get_float,
    get_str,
    join,
)
from common.scenario.profiles import parse_node_name
from common.scenario.reader import InputError, read_text

STRAGGLER_KINDS = ("shifted-exponential", "markov", "trace")
_KEYS = {
    "shifted-exponential": {"kind"},
    "markov": {"kind", "p_slow", "p_recover", "slowdown"},
    "trace": {"kind", "path", "load"},
}


def parse_stragglers(
    value: Any, workers_per_edge: tuple[int, ...], base_dir: Path, path: str = "stragglers"
) -> StragglerModel:
    section = as_mapping(value, path)
    kind = get_choice(section, "kind", path, STRAGGLER_KINDS, "shifted-exponential")
    check_keys(section, _KEYS[kind], path)
    if kind == "shifted-exponential":
        return StragglerModel(kind=kind)
    if kind == "markov":
        return StragglerModel(
            kind=kind,
            p_slow=get_float(section, "p_slow", path, lo=0.0, hi=1.0),
            p_recover=get_float(section, "p_recover", path, lo=0.0, hi=1.0, lo_open=True),
            slowdown=get_float(section, "slowdown", path, lo=1.0),
        )
    M = sum(workers_per_edge)
    load = get_float(section, "load", path, 1.0 / M, lo=0.0, hi=1.0, lo_open=True)
    trace_path = Path(get_str(section, "path", path))
    if not trace_path.is_absolute():
        trace_path = base_dir / trace_path
    trace = read_trace(trace_path, workers_per_edge, join(path, "path"))
    return StragglerModel(kind=kind, trace=trace, trace_load=load)


def read_trace(file: Path, workers_per_edge: tuple[int, ...], path: str) -> np.ndarray:
    """``trace[t, w]``: seconds of worker w (edge-major) in iteration t; every cell required."""
    offsets = np.concatenate([[0], np.cumsum(workers_per_edge)])
    try:  # size-capped, regular files only, UTF-8 checked
        text = read_text(file, "trace")
    except InputError as exc:
        raise ScenarioError(path, str(exc)) from None
    try:
        rows = list(csv.reader(io.StringIO(text, newline="")))
    except csv.Error as exc:
        raise ScenarioError(path, f"{file.name}: not a CSV file: {exc}") from None
    if not rows or [c.strip() for c in rows[0]] != ["iteration", "node", "seconds"]:
        raise ScenarioError(path, f"{file}: first line must be the header iteration,node,seconds")
    cells: dict[tuple[int, int], float] = {}
    for line_no, row in enumerate(rows[1:], start=2):
        where = f"{path} ({file.name}:{line_no})"
        if not row:
            continue
        if len(row) != 3:
            raise ScenarioError(where, f"expected 3 columns, got {len(row)}")
        try:
            t, seconds = int(row[0]), float(row[2])
        except ValueError:
            raise ScenarioError(where, f"bad iteration or seconds in {row}") from None
        if t < 0 or not np.isfinite(seconds) or seconds < 0:
            raise ScenarioError(where, f"iteration must be >= 0 and seconds >= 0, got {row}")
        node = parse_node_name(row[1].strip(), workers_per_edge, where)
        if len(node) != 2:
            raise ScenarioError(where, f"trace rows are worker times, got node {row[1]!r}")
        key = (t, int(offsets[node[0]]) + node[1])
        if key in cells:
            raise ScenarioError(where, f"duplicate row for iteration {t}, node {row[1]}")
        cells[key] = seconds
    if not cells:
        raise ScenarioError(path, f"{file}: no rows")
    T, M = max(t for t, _ in cells) + 1, int(offsets[-1])
    if max(len(cells), 1_000_000) < T * M:  # before allocating: an iteration of 10**12
        raise ScenarioError(
            path,
            f"{file}: {T * M - len(cells)} missing cells (every worker needs a time in every "
            f"iteration 0..{T - 1})",
        )
    trace = np.full((T, M), np.nan)
    for (t, w), seconds in cells.items():
        trace[t, w] = seconds
    missing = np.argwhere(np.isnan(trace))
    if len(missing):
        t, w = (int(x) for x in missing[0])
        i = int(np.searchsorted(offsets, w, side="right")) - 1
        raise ScenarioError(
            path,
            f"{file}: {len(missing)} missing cells (every worker needs a time in every iteration "
            f"0..{T - 1}), first: iteration {t}, node worker-{i}-{w - int(offsets[i])}",
        )
    return trace
