"""The HGC construction in exact rational arithmetic (``fractions.Fraction``).

Used to reproduce the worked example of spec §3 (α = 1..N, β = 0) and to check the float64
path against exact values. Slow (pure Python): for small codes and tests only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

from common.coding.bounds import check_K
from common.coding.placement import Placement, coverage, cyclic_placement


def exact_encoding_matrix(
    points: Sequence[Fraction], beta: Fraction, holders: Sequence[Sequence[int]]
) -> list[list[Fraction]]:
    """B[i][k] = prod_{j not in T_k} (α_i - α_j)/(β - α_j), exactly; shape N x n_items."""
    N = len(points)
    B = [[Fraction(0)] * len(holders) for _ in range(N)]
    for k, T in enumerate(holders):
        others = [j for j in range(N) if j not in set(T)]
        for i in T:
            c = Fraction(1)
            for j in others:
                c *= (points[i] - points[j]) / (beta - points[j])
            B[i][k] = c
    return B


def exact_decode_weights(points: Sequence[Fraction], beta: Fraction) -> list[Fraction]:
    """Lagrange basis at β on the given points: a_j = prod_{l != j} (β - α_l)/(α_j - α_l)."""
    out = []
    for j, xj in enumerate(points):
        a = Fraction(1)
        for l, xl in enumerate(points):
            if l != j:
                a *= (beta - xl) / (xj - xl)
        out.append(a)
    return out


@dataclass(frozen=True)
class ExactHGC:
    """An HGC code with rational coefficients (α = 1..N, β = 0 at both tiers)."""

    placement: Placement
    K: int
    edge_matrix: list[list[Fraction]]  # n x K
    worker_items: list[list[int]]  # per edge: its partitions, the columns of its worker matrix
    worker_matrices: list[list[list[Fraction]]]  # per edge: m_i x |S_i|

    def edge_weights(self, edges: Sequence[int]) -> list[Fraction]:
        return exact_decode_weights([Fraction(i + 1) for i in edges], Fraction(0))

    def worker_weights(self, workers: Sequence[int]) -> list[Fraction]:
        return exact_decode_weights([Fraction(j + 1) for j in workers], Fraction(0))

    def worker_coefficient(self, i: int, j: int, k: int) -> Fraction:
        col = self.worker_items[i].index(k)
        return self.worker_matrices[i][j][col] * self.edge_matrix[i][k]


def exact_hgc(
    workers_per_edge: Sequence[int], s_e: int, s_w: int, K: int | None = None
) -> ExactHGC:
    """Spec §3 on the cyclic placement with integer points 1..N and β = 0, exactly."""
    K = check_K(workers_per_edge, s_e, s_w, K)
    placement = cyclic_placement(workers_per_edge, s_e, s_w, K)
    edge_holders, worker_holders = coverage(placement, K, s_e, s_w)
    n = len(placement)
    edge_matrix = exact_encoding_matrix(
        [Fraction(i + 1) for i in range(n)], Fraction(0), edge_holders
    )
    items = [sorted(worker_holders[i]) for i in range(n)]
    mats = [
        exact_encoding_matrix(
            [Fraction(j + 1) for j in range(len(placement[i]))],
            Fraction(0),
            [worker_holders[i][k] for k in items[i]],
        )
        for i in range(n)
    ]
    return ExactHGC(placement, K, edge_matrix, items, mats)
