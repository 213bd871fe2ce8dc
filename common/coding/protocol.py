"""What the services need from a code, as structural types (``typing.Protocol``).

The master's and the edge's state machines are typed against these protocols, not against
``HierarchicalCode`` / ``FlatCode``, so mypy checks them against the real codes and against
the small fakes of the unit tests alike. Members are read-only properties: a frozen
dataclass field, a plain attribute or a property all satisfy them.

- ``CodeLike``: what every code offers (topology, placement, coefficients).
- ``HierarchicalCodeLike``: edges decode their workers' vectors, the master decodes the
  edges' (``workers_needed``, ``edge_decode_weights``, ``edges_needed``,
  ``master_decode_weights``).
- ``FlatCodeLike``: edges relay, the master decodes any ``M - s`` worker vectors
  (``workers_needed_total``, ``decode_weights``).
- ``ServiceCode``: either; ``is_flat_code`` / ``is_hierarchical_code`` tell which, from
  ``is_flat``, in a way mypy understands.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol, TypeGuard

import numpy as np


class CodeLike(Protocol):
    """Members of every code. ``placement[i][j]``: the partitions worker j of edge i holds;
    ``worker_coefficients[i][j]``: its coefficients, in the same order."""

    @property
    def scheme(self) -> str: ...
    @property
    def n_edges(self) -> int: ...
    @property
    def workers_per_edge(self) -> tuple[int, ...]: ...
    @property
    def K(self) -> int: ...
    @property
    def is_flat(self) -> bool: ...
    @property
    def placement(self) -> Sequence[Sequence[Sequence[int]]]: ...
    @property
    def worker_coefficients(self) -> Sequence[Sequence[np.ndarray]]: ...


class HierarchicalCodeLike(CodeLike, Protocol):
    """Two tiers: edge i combines its first ``workers_needed(i)`` worker vectors, the master
    its first ``edges_needed`` edge vectors. Weights: one per responder, in the order given."""

    @property
    def s_e(self) -> int: ...
    @property
    def s_w(self) -> int: ...
    @property
    def edges_needed(self) -> int: ...
    def workers_needed(self, i: int) -> int: ...
    def edge_decode_weights(self, i: int, responders: Sequence[int]) -> np.ndarray: ...
    def master_decode_weights(self, responders: Sequence[int]) -> np.ndarray: ...


class FlatCodeLike(CodeLike, Protocol):
    """One tier over all M workers: the master combines the first ``workers_needed_total``
    worker vectors, responders named ``(edge, worker)``."""

    @property
    def s(self) -> int: ...
    @property
    def workers_needed_total(self) -> int: ...
    def decode_weights(self, responders: Sequence[tuple[int, int]]) -> np.ndarray: ...


ServiceCode = HierarchicalCodeLike | FlatCodeLike


def is_flat_code(code: ServiceCode) -> TypeGuard[FlatCodeLike]:
    """True for a flat code (edges relay): narrows ``code`` to ``FlatCodeLike``."""
    return bool(code.is_flat)


def is_hierarchical_code(code: ServiceCode) -> TypeGuard[HierarchicalCodeLike]:
    """True for a two-tier code: narrows ``code`` to ``HierarchicalCodeLike``."""
    return not code.is_flat


if TYPE_CHECKING:  # mypy proves the real codes satisfy the protocols; nothing runs
    from common.coding.flat import FlatCode
    from common.coding.hierarchical import HierarchicalCode

    def _real_codes_conform(h: HierarchicalCode, f: FlatCode) -> tuple[ServiceCode, ...]:
        hierarchical: HierarchicalCodeLike = h
        flat: FlatCodeLike = f
        return hierarchical, flat
