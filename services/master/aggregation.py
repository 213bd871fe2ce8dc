"""How the master aggregates an iteration's answers: one strategy per scheme family.

``MasterState`` holds one strategy, chosen once from the code by ``aggregation_for``, and
has no family branches of its own:

- ``HierarchicalAggregation``: each edge sends its decoded vector (``EdgeGradient``); the
  master needs ``edges_needed`` = n - s_e of them and combines them with
  ``master_decode_weights``.
- ``FlatAggregation``: edges relay their workers' vectors (``WorkerGradient``); the master
  needs ``workers_needed_total`` = M - s of them and combines them with ``decode_weights``.

A strategy records answers in the iteration's ``Attempt``, says when enough have arrived,
decodes, and describes what is missing; it never sends anything.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from common.coding.protocol import (
    FlatCodeLike,
    HierarchicalCodeLike,
    ServiceCode,
    is_flat_code,
    is_hierarchical_code,
)
from common.runtime.messages import EdgeGradient, IterationFailed, WorkerGradient
from services.common.actions import Action, Observe

Answer = EdgeGradient | WorkerGradient


@dataclass
class Attempt:
    """One attempt at one iteration: what has arrived so far (seconds after the model was
    sent), in arrival order."""

    iteration: int
    attempt: int
    t0: float
    edge_arrivals: dict[int, float] = field(default_factory=dict)
    edge_vectors: list[tuple[int, EdgeGradient]] = field(default_factory=list)
    worker_arrivals: dict[tuple[int, int], float] = field(default_factory=dict)
    worker_vectors: list[tuple[tuple[int, int], np.ndarray]] = field(default_factory=list)
    failures: dict[int, IterationFailed] = field(default_factory=dict)
    refused: list[str] = field(default_factory=list)  # senders whose vector was dropped
    needed_at: float | None = None  # when the needed-th answer arrived (verify mode)
    liars: list[str] = field(default_factory=list)  # located by verify mode, excluded


class Aggregation(Protocol):
    @property
    def needed(self) -> int:
        """Answers the master decodes from."""
        ...

    def take(self, a: Attempt, edge: int, msg: Answer, elapsed: float) -> list[Action] | None:
        """Record an answer relayed by ``edge``, ``elapsed`` s after the model was sent;
        the observations it makes, or None when this family does not take it (a vector of
        the other family, one that names another edge, or a repeat)."""
        ...

    def count(self, a: Attempt) -> int:
        """Answers recorded so far."""
        ...

    def arrivals(self, a: Attempt) -> list[float]:
        """Arrival times (s) of the recorded answers, in any order."""
        ...

    def decode(self, a: Attempt) -> tuple[list[np.ndarray], np.ndarray, dict[str, Any]]:
        """The first ``needed`` vectors, their weights, and the record's detail fields
        (edge_arrivals_s, edges_used, edge_stragglers, worker_arrivals_s, worker_stragglers)."""
        ...

    def shortfall(self, a: Attempt, alive: set[str]) -> str:
        """What an attempt that failed waited for (``alive``: edges the transport hears)."""
        ...

    @property
    def total(self) -> int:
        """Answers an iteration can get at most."""
        ...

    def answers(self, a: Attempt) -> tuple[list[Any], list[np.ndarray]]:
        """(keys, vectors) of the recorded answers, in arrival order (verify mode)."""
        ...

    def weights(self, keys: Sequence[Any]) -> np.ndarray:
        """Decode weights of exactly ``needed`` answers."""
        ...

    def exclude(self, a: Attempt, key: Any) -> str:
        """Drop a recorded answer (a located liar); its node name."""
        ...


class HierarchicalAggregation:
    def __init__(self, code: HierarchicalCodeLike) -> None:
        self.code = code

    @property
    def needed(self) -> int:
        return self.code.edges_needed

    def take(self, a: Attempt, edge: int, msg: Answer, elapsed: float) -> list[Action] | None:
        if not isinstance(msg, EdgeGradient) or msg.edge != edge or edge in a.edge_arrivals:
            return None
        a.edge_arrivals[edge] = elapsed
        a.edge_vectors.append((edge, msg))
        return [Observe("edge_arrival", elapsed, {"edge": str(edge)})]

    def count(self, a: Attempt) -> int:
        return len(a.edge_vectors)

    def arrivals(self, a: Attempt) -> list[float]:
        return list(a.edge_arrivals.values())

    def decode(self, a: Attempt) -> tuple[list[np.ndarray], np.ndarray, dict[str, Any]]:
        used = a.edge_vectors[: self.needed]
        weights = self.code.master_decode_weights([i for i, _ in used])
        arrivals: dict[str, float] = {}
        computes: dict[str, float] = {}
        stragglers: list[str] = []
        for i, m in used:
            # at most m_i entries: the edge's report is not trusted for its length
            m_i = self.code.workers_per_edge[i]
            for j, s in enumerate(m.worker_arrivals_s[:m_i]):
                if s >= 0:
                    arrivals[f"worker-{i}-{j}"] = s
                else:
                    stragglers.append(f"worker-{i}-{j}")
            for j, c in enumerate(m.worker_compute_s[:m_i]):
                if c >= 0:  # the worker's own report: compute seconds, emulated delay included
                    computes[f"worker-{i}-{j}"] = c
        used_names = [f"edge-{i}" for i, _ in used]
        detail = {
            "edge_arrivals_s": {f"edge-{i}": s for i, s in a.edge_arrivals.items()},
            "edges_used": used_names,
            "edge_stragglers": [
                f"edge-{i}" for i in range(self.code.n_edges) if f"edge-{i}" not in used_names
            ],
            "worker_arrivals_s": arrivals,
            "worker_compute_s": computes,
            "worker_stragglers": stragglers,
        }
        return [m.vector for _, m in used], weights, detail

    def shortfall(self, a: Attempt, alive: set[str]) -> str:
        n = self.code.n_edges
        parts = [
            f"edge-{i}" + ("" if f"edge-{i}" in alive else " (no heartbeat)")
            for i in range(n)
            if i not in a.edge_arrivals
        ]
        workers = [
            f"worker-{i}-{j}"
            for i, report in sorted(a.failures.items())
            for j in report.missing_workers
        ]
        return (
            f"needed {self.needed} of {n} edges, got {len(a.edge_vectors)}; "
            f"missing edges: {', '.join(parts) or 'none'}; "
            f"missing workers: {', '.join(workers) or 'unknown (no edge reported)'}"
        )

    @property
    def total(self) -> int:
        return self.code.n_edges

    def answers(self, a: Attempt) -> tuple[list[Any], list[np.ndarray]]:
        return [i for i, _ in a.edge_vectors], [m.vector for _, m in a.edge_vectors]

    def weights(self, keys: Sequence[Any]) -> np.ndarray:
        return np.asarray(self.code.master_decode_weights(keys))

    def exclude(self, a: Attempt, key: Any) -> str:
        a.edge_vectors = [(i, m) for i, m in a.edge_vectors if i != key]
        return f"edge-{key}"


class FlatAggregation:
    def __init__(self, code: FlatCodeLike) -> None:
        self.code = code
        m = code.workers_per_edge
        self.everyone = [(i, j) for i in range(code.n_edges) for j in range(m[i])]

    @property
    def needed(self) -> int:
        return self.code.workers_needed_total

    def take(self, a: Attempt, edge: int, msg: Answer, elapsed: float) -> list[Action] | None:
        if not isinstance(msg, WorkerGradient) or msg.edge != edge:
            return None
        key = (msg.edge, msg.worker)
        if key in a.worker_arrivals:
            return None
        a.worker_arrivals[key] = elapsed
        a.worker_vectors.append((key, msg.vector))
        return []

    def count(self, a: Attempt) -> int:
        return len(a.worker_vectors)

    def arrivals(self, a: Attempt) -> list[float]:
        return list(a.worker_arrivals.values())

    def decode(self, a: Attempt) -> tuple[list[np.ndarray], np.ndarray, dict[str, Any]]:
        used = a.worker_vectors[: self.needed]
        weights = self.code.decode_weights([k for k, _ in used])
        used_workers = {k for k, _ in used}
        detail = {
            "edge_arrivals_s": {},
            "edges_used": sorted({f"edge-{i}" for i, _ in used_workers}),
            "edge_stragglers": [],
            "worker_arrivals_s": {f"worker-{i}-{j}": s for (i, j), s in a.worker_arrivals.items()},
            "worker_stragglers": [
                f"worker-{i}-{j}" for i, j in self.everyone if (i, j) not in used_workers
            ],
        }
        return [v for _, v in used], weights, detail

    def shortfall(self, a: Attempt, alive: set[str]) -> str:
        missing = [f"worker-{i}-{j}" for i, j in self.everyone if (i, j) not in a.worker_arrivals]
        return (
            f"needed {self.needed} worker vectors, got {len(a.worker_vectors)}; "
            f"missing workers: {', '.join(missing) or 'none'}"
        )

    @property
    def total(self) -> int:
        return len(self.everyone)

    def answers(self, a: Attempt) -> tuple[list[Any], list[np.ndarray]]:
        return [k for k, _ in a.worker_vectors], [v for _, v in a.worker_vectors]

    def weights(self, keys: Sequence[Any]) -> np.ndarray:
        return np.asarray(self.code.decode_weights(keys))

    def exclude(self, a: Attempt, key: Any) -> str:
        a.worker_vectors = [(k, v) for k, v in a.worker_vectors if k != key]
        return f"worker-{key[0]}-{key[1]}"


def aggregation_for(code: ServiceCode) -> Aggregation:
    """The strategy of the code's family (``code.is_flat``)."""
    if is_flat_code(code):
        return FlatAggregation(code)
    if is_hierarchical_code(code):
        return HierarchicalAggregation(code)
    raise AssertionError("unreachable: a code is flat or hierarchical")
