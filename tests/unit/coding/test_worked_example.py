"""Spec §3's worked example reproduced exactly (rational arithmetic) and in float64."""

from __future__ import annotations

import itertools
from fractions import Fraction as Fr

import numpy as np

from common.coding import make_code
from common.coding.exact import exact_hgc
from tests.unit.coding.helpers import decode_hierarchical, rel_error, worker_messages

PLACEMENT = (
    ((0, 1, 2, 3), (4, 5, 0, 1), (2, 3, 4, 5)),
    ((6, 7, 8, 0), (1, 2, 6, 7), (8, 0, 1, 2)),
    ((3, 4, 5, 6), (7, 8, 3, 4), (5, 6, 7, 8)),
)
H, T = Fr(1, 2), Fr(1, 3)
EDGE_MATRIX = [
    [2 * T, 2 * T, 2 * T, H, H, H, 0, 0, 0],
    [T, T, T, 0, 0, 0, -1, -1, -1],
    [0, 0, 0, -H, -H, -H, -2, -2, -2],
]


def test_placement_K_D_and_edge_matrix_match_the_spec_exactly() -> None:
    code = exact_hgc([3, 3, 3], 1, 1)
    assert code.K == 9
    assert code.placement == PLACEMENT
    assert all(len(p) == 4 for edge in code.placement for p in edge)  # D = 4
    assert code.edge_matrix == EDGE_MATRIX


def test_the_example_pattern_decodes_with_the_spec_weights() -> None:
    code = exact_hgc([3, 3, 3], 1, 1)
    assert code.worker_weights([0, 1]) == [2, -1]  # edge 0: worker 2 straggles
    assert code.worker_weights([1, 2]) == [3, -2]  # edge 1: worker 0 straggles
    assert code.edge_weights([0, 1]) == [2, -1]  # edge 2 straggles


def exact_decode(code, edges, workers) -> list[Fr]:  # type: ignore[no-untyped-def]
    """Coefficient of each g_k in what the master computes (exact)."""
    total = [Fr(0)] * code.K
    for a_i, i in zip(code.edge_weights(edges), edges, strict=True):
        for a_j, j in zip(code.worker_weights(workers[i]), workers[i], strict=True):
            for k in code.placement[i][j]:
                total[k] += a_i * a_j * code.worker_coefficient(i, j, k)
    return total


def test_all_112_patterns_decode_exactly_in_rational_arithmetic() -> None:
    code = exact_hgc([3, 3, 3], 1, 1)
    patterns = 0
    for gone_edges in [(), (0,), (1,), (2,)]:
        edges = [i for i in range(3) if i not in gone_edges]
        for gone in itertools.product([None, 0, 1, 2], repeat=len(edges)):
            workers = {
                i: [j for j in range(3) if j != g][:2] for i, g in zip(edges, gone, strict=True)
            }
            assert exact_decode(code, edges[:2], workers) == [1] * 9
            patterns += 1
    assert patterns == 112


def test_negative_control_a_wrong_coefficient_is_caught() -> None:
    code = exact_hgc([3, 3, 3], 1, 1)
    code.edge_matrix[0][0] = Fr(1, 2)  # was 2/3
    assert exact_decode(code, [0, 1], {0: [0, 1], 1: [1, 2]}) != [1] * 9


def test_float64_path_with_integer_points_equals_the_exact_code() -> None:
    code = make_code("hgc", [3, 3, 3], 1, 1, points="integers")
    exact = exact_hgc([3, 3, 3], 1, 1)
    assert [list(map(list, e)) for e in code.placement] == [list(map(list, e)) for e in PLACEMENT]
    np.testing.assert_allclose(code.edge_targets, np.array(EDGE_MATRIX, dtype=float), atol=1e-15)
    for i, j in itertools.product(range(3), range(3)):
        want = [float(exact.worker_coefficient(i, j, k)) for k in code.placement[i][j]]
        np.testing.assert_allclose(code.worker_coefficients[i][j], want, rtol=1e-14)
    np.testing.assert_allclose(code.edge_decode_weights(0, [0, 1]), [2, -1], rtol=1e-14)
    np.testing.assert_allclose(code.edge_decode_weights(1, [1, 2]), [3, -2], rtol=1e-14)
    np.testing.assert_allclose(code.master_decode_weights([0, 1]), [2, -1], rtol=1e-14)
    G = np.random.default_rng(3).standard_normal((9, 16))
    got = decode_hierarchical(code, worker_messages(code, G), [0, 1], {0: [0, 1], 1: [1, 2]})
    assert rel_error(got, G.sum(axis=0)) <= 1e-15 * 10
