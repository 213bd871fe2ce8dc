"""True names: the nodes as the scenario names them, whatever positions the plan gives them.

A plan may select a subset of the topology (``hgc-jncss``, ``hgc-hetero``): the wire ids of
the nodes (``edge-<p>``, ``worker-<p>-<q>``) are their positions in the selection, the code
is indexed by them, and routing keeps them. Everything a person reads -- the record, the
log, the ``/metrics`` labels -- uses the scenario's names instead. The one mapping is the
master's configuration (``services.master.config``)::

    "names": {"edge-0": "edge-1", "worker-0-0": "worker-1-2", ...},   # position -> name
    "left_out": ["edge-0", "worker-1-0", ...]                          # scenario nodes not used

The master ships each edge its part of ``names`` in the set-up, and each edge its worker's
name. Without ``names`` (a hand-written config), positions are the names.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

EDGE = re.compile(r"edge-(0|[1-9][0-9]*)")
WORKER = re.compile(r"worker-(0|[1-9][0-9]*)-(0|[1-9][0-9]*)")
# a node name inside free text (log lines, error messages)
TOKEN = re.compile(r"\b(?:edge-\d+|worker-\d+-\d+)\b")
# record fields holding node names: lists of names, or dicts keyed by name
NAME_LISTS = ("edges_used", "edge_stragglers", "worker_stragglers", "refused", "liars")
NAME_DICTS = ("edge_arrivals_s", "worker_arrivals_s", "worker_compute_s")


def _positions(workers_per_edge: Sequence[int]) -> list[str]:
    edges = [f"edge-{p}" for p in range(len(workers_per_edge))]
    workers = [f"worker-{p}-{q}" for p, m in enumerate(workers_per_edge) for q in range(m)]
    return edges + workers


def check_names(
    names: Any, left_out: Any, workers_per_edge: Sequence[int]
) -> tuple[dict[str, str], tuple[str, ...]]:
    """Validate the config's ``names`` and ``left_out``; ``ValueError`` naming the field.

    ``names`` maps every plan position (``edge-<p>``, ``worker-<p>-<q>``) to a distinct
    scenario name of the same role, each worker under its edge's name; ``{}`` = identity.
    """
    if not isinstance(names, dict):
        raise ValueError(f"config.names: must be an object (position -> name), got {names!r}")
    if not isinstance(left_out, list | tuple) or not all(isinstance(n, str) for n in left_out):
        raise ValueError(f"config.left_out: must be a list of node names, got {left_out!r}")
    if not names:
        if left_out:
            raise ValueError("config.left_out: needs config.names (the nodes used)")
        return {}, ()
    positions = _positions(workers_per_edge)
    missing = [p for p in positions if p not in names]
    extra = sorted(set(names) - set(positions) - {"master"})
    if missing or extra:
        raise ValueError(
            f"config.names: must name exactly the plan's nodes {positions}; "
            f"missing {missing}, unknown {extra}"
        )
    table: dict[str, str] = {}
    for pos in positions:
        name = names[pos]
        where = f"config.names[{pos!r}]"
        if not isinstance(name, str):
            raise ValueError(f"{where}: must be a node name, got {name!r}")
        if pos.startswith("edge-"):
            if not EDGE.fullmatch(name):
                raise ValueError(f"{where}: must be edge-<i>, got {name!r}")
        else:
            match = WORKER.fullmatch(name)
            edge = table[f"edge-{pos.split('-')[1]}"]
            if match is None or f"edge-{match.group(1)}" != edge:
                raise ValueError(f"{where}: must be a worker of {edge}, got {name!r}")
        table[pos] = name
    used = list(table.values())
    if len(set(used)) != len(used):
        raise ValueError("config.names: two positions have the same name")
    both = sorted(set(used) & set(left_out))
    if both:
        raise ValueError(f"config.left_out: {both} are used by the plan")
    for n in left_out:
        if not (EDGE.fullmatch(n) or WORKER.fullmatch(n)):
            raise ValueError(f"config.left_out: {n!r} is not an edge-<i> or worker-<i>-<j>")
    return table, tuple(left_out)


@dataclass(frozen=True)
class NodeNames:
    """Position (wire id) -> scenario name, and the scenario nodes the plan leaves out."""

    table: Mapping[str, str] = field(default_factory=dict)
    left_out: tuple[str, ...] = ()

    @property
    def scenario(self) -> bool:
        """True when the config gave the names (records then say ``"names": "scenario"``)."""
        return bool(self.table)

    def name(self, position: str) -> str:
        return self.table.get(position, position)

    def edge_label(self, p: int) -> str:
        """The ``edge`` metric label of the edge at position ``p``: its scenario index."""
        return self.name(f"edge-{p}").split("-")[1]

    def text(self, line: str) -> str:
        """Every position in free text replaced by its name."""
        if not self.table:
            return line
        return TOKEN.sub(lambda m: self.name(m.group(0)), line)

    def edge_table(self, p: int) -> dict[str, str]:
        """What edge ``p``'s set-up carries: its own name and its workers'."""
        prefix = f"worker-{p}-"
        return {k: v for k, v in self.table.items() if k == f"edge-{p}" or k.startswith(prefix)}

    def selected(self) -> list[str]:
        return [self.name(p) for p in self.table] if self.table else []

    def row(self, row: dict[str, Any]) -> dict[str, Any]:
        """A record row with every node named by its scenario name."""
        if not self.table:
            return row
        out = dict(row)
        for key in NAME_LISTS:
            if isinstance(row.get(key), list):
                out[key] = [self.name(str(n)) for n in row[key]]
        for key in NAME_DICTS:
            if isinstance(row.get(key), dict):
                out[key] = {self.name(str(k)): v for k, v in row[key].items()}
        if isinstance(row.get("error"), str):
            out["error"] = self.text(row["error"])
        out["names"] = "scenario"
        return out

    def header(self, scheme: str) -> dict[str, Any]:
        """The record's first line: which scenario nodes the run uses and which it leaves
        out (``hgc.testbed.records.read_header``; ``read_records`` skips it)."""
        return {
            "kind": "header",
            "names": "scenario",
            "scheme": scheme,
            "positions": dict(self.table),
            "selected": self.selected(),
            "left_out": list(self.left_out),
        }
