"""Every tolerated straggler pattern decodes to sum_k g_k, on many configurations."""

from __future__ import annotations

import dataclasses
from fractions import Fraction

import numpy as np
import pytest

from common.coding import HierarchicalCode, make_code, optimal_load_fraction
from tests.unit.coding.exhaustive import check_all_patterns
from tests.unit.coding.helpers import partition_gradients, rel_error, worker_messages

# (scheme, workers_per_edge, s_e, s_w, K) -- heterogeneous m_i, n = 1, 0/1 and Lagrange tiers
CONFIGS = [
    ("hgc", (3, 3, 3), 1, 1, None),
    ("hgc", (3, 3, 3), 1, 1, 18),
    ("hgc", (2, 3, 4), 1, 1, None),
    ("hgc", (3, 3, 3), 2, 2, None),
    ("hgc", (4, 4, 4, 4), 1, 1, None),
    ("hgc", (1, 2, 3), 1, 0, None),
    ("hgc", (5,), 0, 2, None),
    ("hgc", (2, 2), 1, 1, None),
    ("hgc", (6, 3, 3), 1, 1, None),
    ("hgc", (3, 4, 5, 6), 2, 2, None),
    ("hgc", (3, 5, 7), 1, 2, None),
    ("hgc", (6, 6), 1, 3, None),
    ("hgc", (2, 4, 6, 8), 1, 1, None),
    ("hgc", (4, 4, 4, 4, 4, 4), 2, 1, None),
    ("hgc", (5, 5, 5, 5, 5), 2, 2, None),
    ("hgc", (1, 1, 1, 1), 3, 0, None),
    ("hgc", (7, 5, 4, 3, 2), 2, 1, None),
    ("uncoded", (2, 3, 4), 0, 0, None),
    ("worker-gc", (3, 4, 5), 0, 2, None),
    ("edge-gc", (2, 3, 2, 3), 2, 0, None),
    ("fr", (4, 4, 4, 4), 1, 1, 8),
]


@pytest.mark.parametrize(("scheme", "m", "s_e", "s_w", "K"), CONFIGS, ids=str)
def test_every_tolerated_pattern_decodes(
    scheme: str, m: tuple[int, ...], s_e: int, s_w: int, K: int | None
) -> None:
    code = make_code(scheme, m, s_e, s_w, K=K)
    assert isinstance(code, HierarchicalCode)
    worst, count = check_all_patterns(code, tol=1e-11)
    assert count > 0
    assert worst <= 1e-11, f"{code.variant}: worst relative error {worst:.3g} over {count}"


@pytest.mark.parametrize(("scheme", "m", "s_e", "s_w", "K"), CONFIGS, ids=str)
def test_every_worker_load_equals_the_bound(
    scheme: str, m: tuple[int, ...], s_e: int, s_w: int, K: int | None
) -> None:
    code = make_code(scheme, m, s_e, s_w, K=K)
    bound = optimal_load_fraction(m, s_e, s_w)
    loads = {Fraction(len(p), code.K) for edge in code.placement for p in edge}
    assert loads == {bound}


def test_negative_control_the_brute_force_catches_a_corrupted_code() -> None:
    code = make_code("hgc", (3, 3, 3), 1, 1)
    assert isinstance(code, HierarchicalCode)
    with pytest.raises(ValueError, match="read-only"):
        code.worker_coefficients[1][2][0] *= 1.001  # codes are immutable ...
    coefs = [list(edge) for edge in code.worker_coefficients]
    coefs[1][2] = coefs[1][2] * np.array([1.001, 1, 1, 1])  # ... so corrupt a copy
    bad = dataclasses.replace(code, worker_coefficients=tuple(map(tuple, coefs)))
    with pytest.raises(AssertionError):
        check_all_patterns(bad, tol=1e-11)


def test_flat_codes_decode_from_any_M_minus_s_workers() -> None:
    import itertools

    for scheme, m, s in [
        ("flat-frc", (3, 3), 2),
        ("flat-crc", (2, 3, 4), 3),
        ("flat-crc", (4,), 0),
    ]:
        code = make_code(scheme, m, s=s)
        G = partition_gradients(code.K)
        z = worker_messages(code, G)
        everyone = [(i, j) for i in range(len(m)) for j in range(m[i])]
        count = 0
        for gone in itertools.combinations(range(len(everyone)), s):
            resp = [w for t, w in enumerate(everyone) if t not in gone][::-1]
            w = code.decode_weights(resp)
            got = sum(wt * z[i][j] for wt, (i, j) in zip(w, resp, strict=True))
            assert rel_error(np.asarray(got), G.sum(axis=0)) < 1e-11, (scheme, gone)
            count += 1
        assert count >= 1
        assert code.D * sum(m) == code.K * (s + 1)  # load (s+1)/M
