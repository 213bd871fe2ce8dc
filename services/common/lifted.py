"""A code on a selection of nodes, seen from the whole topology (``hgc-adaptive``).

An adaptive run starts every node of the scenario; the plan in force picks which edges and
workers take part, and a plan switch may pick others. The services keep addressing nodes by
their topology indices (``edge-<i>``, ``worker-<i>-<j>``), so the code over the selection
(positions ``p``, ``q``) is presented through :class:`LiftedCode`, a hierarchical code over
the whole topology in which an unselected node holds no partition and is never asked:

- ``placement[i][j]`` / ``worker_coefficients[i][j]``: the selection code's ``[p][q]`` for a
  selected worker, empty otherwise;
- ``edge_decode_weights(i, responders)`` and ``master_decode_weights(responders)`` take
  topology indices and map them to positions (a responder outside the selection is a bug of
  the caller: ``ValueError``);
- ``workers_needed(i)`` is the selection code's for a selected edge, 0 otherwise.

Pure data on top of a ``HierarchicalCodeLike``: no I/O, used by the master and the edges.
The plan travels as ``plan_spec`` (:func:`plan_spec`, :func:`lift`), beside the code spec.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from common.coding.protocol import HierarchicalCodeLike


class LiftedCode:
    """``inner`` (a code over the selected nodes) as a code over the whole topology.

    Parameters
    ----------
    inner : HierarchicalCodeLike
        The code over the selection; ``inner.workers_per_edge[p] == len(workers[p])``.
    workers_per_edge : sequence of int
        The topology: workers under each of its edges.
    edges : sequence of int
        Topology index of the edge at each position of the selection.
    workers : sequence of sequences of int
        Per position, the topology indices of the selected workers of that edge.
    scheme : str
        What the code calls itself (records, metrics).
    """

    is_flat = False

    def __init__(
        self,
        inner: HierarchicalCodeLike,
        workers_per_edge: Sequence[int],
        edges: Sequence[int],
        workers: Sequence[Sequence[int]],
        scheme: str = "hgc-adaptive",
    ) -> None:
        m = tuple(int(x) for x in workers_per_edge)
        edges_t = tuple(int(e) for e in edges)
        workers_t = tuple(tuple(int(j) for j in ws) for ws in workers)
        if len(edges_t) != inner.n_edges or len(workers_t) != inner.n_edges:
            raise ValueError(
                f"plan: {len(edges_t)} edges selected for a code over {inner.n_edges} edges"
            )
        if len(set(edges_t)) != len(edges_t) or any(not 0 <= e < len(m) for e in edges_t):
            raise ValueError(f"plan.edges: distinct indices in [0, {len(m)}) expected, {edges_t}")
        for p, (e, ws) in enumerate(zip(edges_t, workers_t, strict=True)):
            if len(ws) != inner.workers_per_edge[p]:
                raise ValueError(
                    f"plan.workers[{p}]: {len(ws)} workers for a code edge of "
                    f"{inner.workers_per_edge[p]}"
                )
            if len(set(ws)) != len(ws) or any(not 0 <= j < m[e] for j in ws):
                raise ValueError(
                    f"plan.workers[{p}]: distinct indices in [0, {m[e]}) expected, got {ws}"
                )
        self.inner = inner
        self.scheme = scheme
        self.workers_per_edge = m
        self.n_edges = len(m)
        self.edges = edges_t
        self.workers = workers_t
        self.position = {e: p for p, e in enumerate(edges_t)}  # topology edge -> p
        self.worker_position = {
            (e, j): (p, q)
            for p, (e, ws) in enumerate(zip(edges_t, workers_t, strict=True))
            for q, j in enumerate(ws)
        }
        self.placement = tuple(
            tuple(self._of(inner.placement, i, j, ()) for j in range(m[i])) for i in range(len(m))
        )
        empty = np.zeros(0, dtype=np.float64)
        self.worker_coefficients = tuple(
            tuple(
                np.asarray(self._of(inner.worker_coefficients, i, j, empty), dtype=np.float64)
                for j in range(m[i])
            )
            for i in range(len(m))
        )

    def _of(self, table: Sequence[Sequence[Any]], i: int, j: int, default: Any) -> Any:
        pq = self.worker_position.get((i, j))
        if pq is None:
            return default
        p, q = pq
        return tuple(table[p][q]) if isinstance(default, tuple) else table[p][q]

    # ------------------------------------------------------------ the code's members
    @property
    def K(self) -> int:
        return int(self.inner.K)

    @property
    def s_e(self) -> int:
        return int(self.inner.s_e)

    @property
    def s_w(self) -> int:
        return int(self.inner.s_w)

    @property
    def edges_needed(self) -> int:
        return int(self.inner.edges_needed)

    def selected_workers(self, i: int) -> tuple[int, ...]:
        """Topology indices of the selected workers of edge ``i`` (empty: edge not selected)."""
        p = self.position.get(i)
        return () if p is None else self.workers[p]

    def load(self, i: int, j: int) -> float:
        """Worker (i, j)'s share of the data under the plan (0 for a worker left out)."""
        return len(self.placement[i][j]) / self.K

    def workers_needed(self, i: int) -> int:
        p = self.position.get(i)
        return 0 if p is None else int(self.inner.workers_needed(p))

    def edge_decode_weights(self, i: int, responders: Sequence[int]) -> np.ndarray:
        p = self.position.get(i)
        if p is None:
            raise ValueError(f"edge {i} is not selected by the plan")
        q_of = {j: q for q, j in enumerate(self.workers[p])}
        missing = [j for j in responders if j not in q_of]
        if missing:
            raise ValueError(f"edge {i}: workers {missing} are not selected by the plan")
        return np.asarray(self.inner.edge_decode_weights(p, [q_of[j] for j in responders]))

    def master_decode_weights(self, responders: Sequence[int]) -> np.ndarray:
        missing = [i for i in responders if i not in self.position]
        if missing:
            raise ValueError(f"edges {missing} are not selected by the plan")
        return np.asarray(self.inner.master_decode_weights([self.position[i] for i in responders]))


def plan_spec(
    epoch: int,
    workers_per_edge: Sequence[int],
    edges: Sequence[int],
    workers: Sequence[Sequence[int]],
) -> dict[str, Any]:
    """The JSON-able plan sent beside the code spec (``EdgeSetup.plan_spec``)."""
    return {
        "epoch": int(epoch),
        "workers_per_edge": [int(x) for x in workers_per_edge],
        "edges": [int(e) for e in edges],
        "workers": [[int(j) for j in ws] for ws in workers],
    }


def lift(inner: HierarchicalCodeLike, spec: dict[str, Any]) -> LiftedCode:
    """The code of ``plan_spec`` ``spec``; ``ValueError`` naming the field if malformed."""
    for key in ("workers_per_edge", "edges", "workers"):
        value = spec.get(key)
        if not isinstance(value, list | tuple):
            raise ValueError(f"plan_spec.{key}: a list is required, got {value!r}")
    try:
        return LiftedCode(inner, spec["workers_per_edge"], spec["edges"], spec["workers"])
    except TypeError as exc:
        raise ValueError(f"plan_spec: {exc}") from None
