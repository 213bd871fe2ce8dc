"""Scenario names a node learns at set-up (``EdgeSetup.names``, ``WorkerSetup.name``; the
table is the master's, ``services.master.naming``): parsed strictly, since they become
metric labels. A name that does not parse is ignored (the node keeps its position)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

_INDEX = r"(0|[1-9][0-9]{0,5})"
EDGE = re.compile(rf"edge-{_INDEX}")
WORKER = re.compile(rf"worker-{_INDEX}-{_INDEX}")
TOKEN = re.compile(r"\b(?:edge-\d+|worker-\d+-\d+)\b")


def edge_index(name: Any) -> int | None:
    """``"edge-3"`` -> 3; None for anything else."""
    match = EDGE.fullmatch(name) if isinstance(name, str) else None
    return int(match.group(1)) if match else None


def worker_indices(name: Any) -> tuple[int, int] | None:
    """``"worker-1-2"`` -> (1, 2); None for anything else."""
    match = WORKER.fullmatch(name) if isinstance(name, str) else None
    return (int(match.group(1)), int(match.group(2))) if match else None


def valid_table(names: Any) -> dict[str, str]:
    """The entries of a set-up's ``names`` that are position -> name of the same role."""
    if not isinstance(names, Mapping):
        return {}
    out: dict[str, str] = {}
    for k, v in names.items():
        if (edge_index(k) is not None and edge_index(v) is not None) or (
            worker_indices(k) is not None and worker_indices(v) is not None
        ):
            out[str(k)] = str(v)
    return out


def rename_text(line: str, table: Mapping[str, str]) -> str:
    """Every position of ``table`` in ``line`` replaced by its name."""
    if not table:
        return line
    return TOKEN.sub(lambda m: table.get(m.group(0), m.group(0)), line)
