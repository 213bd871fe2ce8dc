"""The full grid check (common/coding/grid.py): its shortcuts are exactly what make_code builds.

The grid never builds the 74,880 codes; it builds tier families and composes them. These tests
check each shortcut against the real builder on codes small enough for a unit test, and that
the composed bound does bound the end-to-end measured error (exhaustive patterns).
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from common.coding import HierarchicalCode, make_code
from common.coding.grid import FamilyCache, full_grid, grid_code, tier_family
from common.coding.numerics import measured_decode_error, pattern_array

CONFIGS = [(3, 7, 1, 3), (4, 9, 2, 4), (2, 11, 1, 5), (5, 6, 3, 2), (1, 13, 0, 4), (6, 5, 4, 3)]


@pytest.mark.parametrize(("n", "m", "s_e", "s_w"), CONFIGS)
def test_tier_families_are_the_codes_distinct_holder_sets(
    n: int, m: int, s_e: int, s_w: int
) -> None:
    code = make_code("hgc", [m] * n, s_e, s_w, tolerance=None)
    assert isinstance(code, HierarchicalCode)
    if code.variant == "fr":
        return
    assert tuple(sorted(set(code.edge_tier.holders))) == tier_family(n, s_e)
    for tier in code.worker_tiers:
        assert tuple(sorted(set(tier.holders))) == tier_family(m, s_w)


def test_the_grid_makes_the_builders_choices_and_estimates() -> None:
    """Kinds, seeds and the estimate as make_code, including codes that switch to Gaussian."""
    cache = FamilyCache()
    cases = [*CONFIGS, (3, 20, 1, 8)]
    switched = wide = 0
    for n, m, s_e, s_w in cases:
        g = grid_code(cache, n, m, s_e, s_w)
        code = make_code("hgc", [m] * n, s_e, s_w, tolerance=None)
        assert isinstance(code, HierarchicalCode)
        assert g.variant == code.variant
        if code.variant == "fr":
            continue
        assert g.edge_kind == code.edge_tier.kind and g.edge_seed == code.edge_tier.seed
        assert {g.worker_kind} == {t.kind for t in code.worker_tiers}
        assert {g.worker_seed} == {t.seed for t in code.worker_tiers}
        assert {g.worker_wide} == {t.wide for t in code.worker_tiers}
        wide += g.worker_wide
        assert g.estimate == pytest.approx(code.decode_error_estimate(), rel=1e-6)
        switched += g.worker_kind == "gauss"
    assert switched >= 1  # the Gaussian path is exercised
    assert wide >= 1  # and the wide one


def test_the_composed_bound_bounds_the_measured_error_and_meets_the_target() -> None:
    grid = full_grid(3, 8)
    assert len(grid) == sum(n * m for n in range(1, 4) for m in range(1, 9))
    real = [g for g in grid if g.variant == "lagrange"]
    assert real and max(g.verified for g in real) <= 1e-9
    worst = sorted(real, key=lambda g: g.verified, reverse=True)[:3]
    for g in worst:  # end to end with real vectors (every joint pattern up to 20,000)
        code = make_code("hgc", [g.m] * g.n, g.s_e, g.s_w, tolerance=None)
        meas, tried = measured_decode_error(code, exhaustive_limit=20_000, samples=1_000)
        assert tried > 1 and meas <= g.verified + 1e-15


def test_pattern_arrays_are_every_set_or_windows_plus_samples() -> None:
    every = pattern_array(7, 3)
    want = [
        tuple(j for j in range(7) if j not in out) for out in itertools.combinations(range(7), 3)
    ]
    assert [tuple(r) for r in every.tolist()] == want
    sampled = pattern_array(30, 11, exhaustive_limit=0, samples=50, seed=3)
    rows = {tuple(r) for r in sampled.tolist()}
    for start in range(30):  # every cyclic window of 11 consecutive stragglers is there
        gone = {(start + t) % 30 for t in range(11)}
        assert tuple(j for j in range(30) if j not in gone) in rows
    assert len(rows) == len(sampled) and np.all(np.diff(sampled, axis=1) > 0)
    assert not sampled.flags.writeable
