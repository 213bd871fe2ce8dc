"""Small fakes of the code object for the state-machine unit tests (no sockets, no maths).

They satisfy the protocols of ``common.coding.protocol`` (checked by mypy at the bottom),
so the state machines are exercised through the same typed seam as with real codes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from common.coding.protocol import FlatCodeLike, HierarchicalCodeLike


@dataclass
class FakeHierCode:
    """2 edges x 2 workers, K = 2; worker j of every edge holds partition j with coefficient 1.

    With s_w = 1 an edge decodes from one worker with weight 1 (wrong maths, right shape);
    with s_e = 1 the master decodes from one edge with weight 1.
    """

    n_edges: int = 2
    workers_per_edge: tuple[int, ...] = (2, 2)
    s_e: int = 1
    s_w: int = 1
    K: int = 2
    scheme: str = "fake"
    is_flat: bool = False

    @property
    def placement(self) -> list[list[tuple[int, ...]]]:
        return [[(j,) for j in range(m)] for m in self.workers_per_edge]

    @property
    def worker_coefficients(self) -> list[list[np.ndarray]]:
        return [[np.ones(1) for _ in range(m)] for m in self.workers_per_edge]

    def workers_needed(self, i: int) -> int:
        return self.workers_per_edge[i] - self.s_w

    @property
    def edges_needed(self) -> int:
        return self.n_edges - self.s_e

    def edge_decode_weights(self, i: int, responders: Sequence[int]) -> np.ndarray:
        w = np.zeros(len(responders))
        w[: self.workers_needed(i)] = 1.0
        return w

    def master_decode_weights(self, responders: Sequence[int]) -> np.ndarray:
        w = np.zeros(len(responders))
        w[: self.edges_needed] = 1.0
        return w


@dataclass
class FakeFlatCode(FakeHierCode):
    """Flat: any 3 of the 4 workers; weights 1."""

    s: int = 1
    is_flat: bool = True

    @property
    def workers_needed_total(self) -> int:
        return sum(self.workers_per_edge) - self.s

    def decode_weights(self, responders: Sequence[tuple[int, int]]) -> np.ndarray:
        return np.ones(len(responders))


if TYPE_CHECKING:  # mypy: the fakes stand in for real codes where the services take them
    _hierarchical: HierarchicalCodeLike = FakeHierCode()
    _flat: FlatCodeLike = FakeFlatCode()
