"""Impossible requests are refused with the violated condition and what is possible instead;
placements below the bound provably lose a partition for some pattern (negative controls)."""

from __future__ import annotations

import itertools
from fractions import Fraction

import numpy as np
import pytest

from common.coding import (
    InfeasibleCodeError,
    NumericallyUnstableCodeError,
    code_from_placement,
    is_feasible,
    largest_feasible_s_e,
    make_code,
    smallest_equal_load,
)
from common.coding.placement import cyclic_placement
from tests.unit.coding.exhaustive import check_all_patterns


def test_s_e_at_least_n_is_refused_with_the_largest_feasible_s_e() -> None:
    with pytest.raises(InfeasibleCodeError, match=r"s_e=3 >= n_edges=3.*largest feasible s_e .* 2"):
        make_code("hgc", [3, 3, 3], 3, 0)


def test_s_w_at_least_min_m_is_refused_naming_the_edge() -> None:
    with pytest.raises(InfeasibleCodeError, match=r"s_w=2 >= min workers_per_edge=2 \(edge 1\).*1"):
        make_code("hgc", [3, 2, 4], 0, 2)


def test_unbalanced_topology_is_refused_with_the_smallest_achievable_load() -> None:
    # spec §2: n = 2, m = (1, 5), s_e = 1: the bound says 1/3, but edge 0's worker holds all
    with pytest.raises(InfeasibleCodeError) as info:
        make_code("hgc", [1, 5], 1, 0)
    msg = str(info.value)
    assert "(s_e+1)*max(workers_per_edge) = 10 > sum(workers_per_edge) = 6" in msg
    assert "largest feasible s_e for this topology is 0" in msg
    assert "smallest achievable equal load is 1" in msg
    assert smallest_equal_load([1, 5], 1, 0) == 1
    assert largest_feasible_s_e([1, 5]) == 0
    assert not is_feasible([1, 5], 1, 0) and is_feasible([1, 5], 0, 0)


def test_smallest_equal_load_matches_brute_force_coverage() -> None:
    # ℓ is achievable iff sum_i min(1, ℓ m_i/(s_w+1)) >= s_e+1; check minimality on a grid
    for m, s_e, s_w in [((1, 5), 1, 0), ((2, 2, 8), 1, 1), ((1, 1, 6), 2, 0), ((3, 3, 9), 1, 2)]:
        ell = smallest_equal_load(m, s_e, s_w)

        def covered(x: Fraction, m: tuple[int, ...] = m, s_w: int = s_w) -> Fraction:
            return sum((min(Fraction(1), x * mi / (s_w + 1)) for mi in m), Fraction(0))

        assert covered(ell) >= s_e + 1
        assert covered(ell - Fraction(1, 10**6)) < s_e + 1


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"scheme": "nope", "workers_per_edge": [2]}, r"scheme: unknown 'nope'"),
        ({"scheme": "hgc", "workers_per_edge": []}, r"workers_per_edge: need at least one edge"),
        ({"scheme": "hgc", "workers_per_edge": [2, 0]}, r"workers_per_edge\[1\]: must be >= 1"),
        ({"scheme": "hgc", "workers_per_edge": [2], "s_e": -1}, r"s_e: must be >= 0"),
        (
            {"scheme": "hgc", "workers_per_edge": [3, 3, 3], "s_e": 1, "s_w": 1, "K": 10},
            r"K=10: .* multiples of 9",
        ),
        ({"scheme": "uncoded", "workers_per_edge": [2, 2], "s_e": 1}, r"uncoded: s_e must be 0"),
        ({"scheme": "flat-crc", "workers_per_edge": [2, 2]}, r"give s"),
        ({"scheme": "flat-crc", "workers_per_edge": [2, 2], "s": 4}, r"0 <= s <= M-1 = 3"),
        ({"scheme": "hgc", "workers_per_edge": [2, 2], "s": 1}, r"s is for flat"),
    ],
)
def test_bad_requests_name_the_field(kwargs: dict, pattern: str) -> None:
    with pytest.raises(InfeasibleCodeError, match=pattern):
        make_code(**kwargs)


def test_fr_when_not_applicable_says_why_and_which_scheme_applies() -> None:
    with pytest.raises(InfeasibleCodeError, match=r"s_w\+1=2 does not divide .*3; use scheme hgc"):
        make_code("fr", [3, 3, 3], 0, 1)
    with pytest.raises(InfeasibleCodeError, match=r"heterogeneous.*use scheme hgc"):
        make_code("fr", [2, 4, 4], 1, 1)
    with pytest.raises(InfeasibleCodeError, match=r"flat-frc needs \(s\+1\) to divide M.*flat-crc"):
        make_code("flat-frc", [3, 4], s=1)


def test_numerically_hopeless_codes_are_refused_not_returned() -> None:
    with pytest.raises(NumericallyUnstableCodeError, match=r"exceeds the tolerance 1e-15"):
        make_code("hgc", [7] * 7, 3, 3, tolerance=1e-15)
    assert make_code("hgc", [7] * 7, 3, 3, tolerance=None).decode_error_estimate() > 1e-15


def test_an_under_covered_placement_is_refused_naming_the_partition() -> None:
    placement = [list(map(list, edge)) for edge in cyclic_placement([3, 3, 3], 1, 1, 9)]
    placement[0][0].remove(3)  # partition 3 now has one holder in edge 0 (needs s_w+1 = 2)
    placement[2][1].remove(3)  # ... and one in edge 2
    with pytest.raises(InfeasibleCodeError, match=r"partition 3 is under-covered.*edges \[0, 2\]"):
        code_from_placement(placement, 9, 1, 1)


def responders_hold(placement, K, gone_edges, gone_workers) -> set[int]:  # type: ignore[no-untyped-def]
    return {
        k
        for i, edge in enumerate(placement)
        if i not in gone_edges
        for j, parts in enumerate(edge)
        if j not in gone_workers.get(i, ())
        for k in parts
    }


def lost_partition_pattern(placement, K, s_e, s_w):  # type: ignore[no-untyped-def]
    """A tolerated pattern after which some partition is on no responder, or None."""
    n = len(placement)
    for ge in itertools.combinations(range(n), s_e):
        alive = [i for i in range(n) if i not in ge]
        for gw in itertools.product(
            *(list(itertools.combinations(range(len(placement[i])), s_w)) for i in alive)
        ):
            if len(responders_hold(placement, K, ge, dict(zip(alive, gw, strict=True)))) < K:
                return ge, gw
    return None


@pytest.mark.parametrize("seed", range(12))
def test_any_placement_below_the_bound_has_a_pattern_that_loses_a_partition(seed: int) -> None:
    rng = np.random.default_rng(seed)
    m = tuple(int(x) for x in rng.integers(2, 4, size=3))
    s_e, s_w, K = 1, 1, 6
    # total copies strictly below K (s_e+1)(s_w+1): no decoder can recover every partition
    budget = K * (s_e + 1) * (s_w + 1) - 1 - int(rng.integers(0, 4))
    slots = [(i, j) for i in range(3) for j in range(m[i])]
    placement = [[[] for _ in range(mi)] for mi in m]
    copies = [(k, t) for k in range(K) for t in range(len(slots))]
    for idx in rng.permutation(len(copies))[:budget]:
        k, t = copies[idx]
        i, j = slots[t]
        placement[i][j].append(k)
    assert lost_partition_pattern(placement, K, s_e, s_w) is not None
    with pytest.raises(InfeasibleCodeError, match="under-covered"):
        code_from_placement(placement, K, s_e, s_w)


def test_positive_control_the_hgc_placement_never_loses_a_partition() -> None:
    placement = cyclic_placement([2, 3, 4], 1, 1, 9)
    assert lost_partition_pattern(placement, 9, 1, 1) is None


def test_unequal_loads_from_an_arbitrary_placement_decode_exactly() -> None:
    # faster workers take more partitions: edge 0 worker 0 holds 5 of the 6
    placement = [
        [[0, 1, 2, 3, 4], [3, 4, 5, 0, 1, 2], [5, 0, 1, 2]],
        [[0, 1, 2, 3, 4, 5], [0, 1, 2, 3, 4, 5]],
        [[3, 4, 5], [3, 4, 5], [0, 1, 2]],
    ]
    code = code_from_placement(placement, 6, 1, 1)
    assert code.scheme == "hgc-hetero"
    assert code.load_fraction(0, 0) == 5 / 6 and code.load_fraction(2, 0) == 0.5
    worst, count = check_all_patterns(code, tol=1e-11)
    assert worst <= 1e-11 and count > 50
