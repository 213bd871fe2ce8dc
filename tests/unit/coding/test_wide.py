"""Wide (extended-precision) Gaussian tiers (docs/numerics.md, "Wide tiers").

The negative control is a heavy-tail pattern of the grid's worst code (n = 8, m_i = 61,
s_e = 4, s_w = 19): the float64 pipeline measures above 1e-9 on it, the wide one below.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from common.coding import CodeSpecError, HierarchicalCode, code_from_spec, make_code
from common.coding import gauss as gauss_mod
from common.coding.combine import combine_wide, split_wide
from common.coding.grid import tier_family
from common.coding.hierarchical import wide_choice
from common.coding.numerics import (
    EPS,
    measured_decode_error,
    pattern_decoder,
    tier_error,
    tier_estimate,
)
from common.coding.tier import gauss_tier, widen

WORST = {
    "scheme": "hgc",
    "workers_per_edge": [61] * 8,
    "s_e": 4,
    "s_w": 19,
    "K": 488,
    "orders": {"edge": 0, "workers": [0] * 8},
    # the float64 grid's worst code as make_code built it before wide tiers (edge seed 0, the
    # best of 6 then; now the best of 64 by amplification, below)
    "gauss": {"edge": 0, "workers": [5] * 8},
}
# a tail responder set of the (61, 19) seed-5 worker tier, found by scoring 20,000 random sets
TAIL_STRAGGLERS = (1, 5, 6, 15, 18, 21, 23, 27, 29, 35, 36, 41, 43, 47, 49, 50, 52, 53, 55)


@pytest.fixture(scope="module")
def worst_codes() -> tuple[HierarchicalCode, HierarchicalCode]:
    narrow = code_from_spec(WORST)
    wide = code_from_spec({**WORST, "wide": [True] * 8})
    assert isinstance(narrow, HierarchicalCode) and isinstance(wide, HierarchicalCode)
    return narrow, wide


@pytest.mark.skipif(not gauss_mod.WIDE_AVAILABLE, reason="longdouble is float64 here")
def test_negative_control_float64_fails_on_a_tail_pattern_and_wide_meets_1e9(
    worst_codes: tuple[HierarchicalCode, HierarchicalCode],
) -> None:
    narrow, wide = worst_codes
    F_w = tuple(j for j in range(61) if j not in TAIL_STRAGGLERS)
    dn, _ = pattern_decoder(narrow)
    dw, _ = pattern_decoder(wide)
    errs = [(dn(F, {i: F_w for i in F}), dw(F, {i: F_w for i in F}), F)
            for F in itertools.combinations(range(8), 4)]  # fmt: skip
    worst_narrow = max(e[0] for e in errs)
    worst_wide = max(e[1] for e in errs)
    assert worst_narrow > 1e-9  # the float64 floor (measured 9.6e-8 at edges (0, 3, 5, 7))
    assert worst_wide <= 1e-10  # (measured 7.5e-12)
    # the estimate models the pipeline: float64 above the target, wide well below
    assert narrow.decode_error_estimate() > 1e-8
    assert wide.decode_error_estimate() <= 1e-10


def test_the_spec_records_wide_tiers_and_rebuilds_them_exactly(
    worst_codes: tuple[HierarchicalCode, HierarchicalCode],
) -> None:
    narrow, wide = worst_codes
    assert "wide" not in narrow.spec() and wide.spec()["wide"] == [True] * 8
    assert "worker_coefficients_lo" not in narrow.to_json()
    lo_json = wide.to_json()["worker_coefficients_lo"]
    assert len(lo_json) == 8 and len(lo_json[0]) == 61 and any(any(x) for x in lo_json[0])
    again = code_from_spec(wide.spec())
    assert isinstance(again, HierarchicalCode)
    for i in range(8):
        for a, b in zip(wide.worker_coefficients[i], again.worker_coefficients[i], strict=True):
            assert np.array_equal(a, b)
        lo, lo2 = wide.worker_coefficients_lo[i], again.worker_coefficients_lo[i]
        assert lo is not None and lo2 is not None
        assert all(np.array_equal(a, b) for a, b in zip(lo, lo2, strict=True))
    # hi + lo is the longdouble product exactly, and lo matters (non-zero)
    for j in range(61):
        c = wide.worker_coefficients_wide(0, j)
        hi, lo_j = wide.worker_coefficients[0][j], wide.worker_coefficients_lo[0][j]  # type: ignore[index]
        assert c.dtype == np.longdouble
        assert np.array_equal(c, hi.astype(np.longdouble) + lo_j)
        assert np.array_equal(c.astype(np.float64), hi)
    assert any(np.any(x != 0) for x in wide.worker_coefficients_lo[0])  # type: ignore[union-attr]
    for bad in ([True] * 7, [1] * 8, "yes"):
        with pytest.raises(CodeSpecError, match="field 'wide'"):
            code_from_spec({**WORST, "wide": bad})
    no_seed = {**WORST, "gauss": {"edge": 0, "workers": [None] + [5] * 7}}
    with pytest.raises(CodeSpecError, match="field 'wide'"):
        code_from_spec({**no_seed, "wide": [True] * 8})
    # an old spec (no "wide") rebuilds the float64 code it described
    assert not any(t.wide for t in code_from_spec(WORST).worker_tiers)  # type: ignore[union-attr]


@pytest.mark.skipif(not gauss_mod.WIDE_AVAILABLE, reason="longdouble is float64 here")
def test_small_wide_tier_exhaustive_every_responder_set() -> None:
    holders = tier_family(9, 4)
    tier = gauss_tier(9, 4, holders, seed=2)
    wide = widen(tier)
    assert wide.B_wide is not None and wide.B_wide.dtype == np.longdouble
    non = [[j for j in range(9) if j not in T] for T in wide.holders]
    assert all(np.all(wide.B_wide[n_, k] == 0) for k, n_ in enumerate(non))
    worst_w = worst_f = 0.0
    for gone in itertools.combinations(range(9), 4):
        F = [j for j in range(9) if j not in gone]
        a = wide.wide_weights(F)
        assert a.dtype == np.longdouble
        worst_w = max(worst_w, float(np.max(np.abs(a @ wide.B_wide[F] - 1))))
        worst_f = max(worst_f, float(np.max(np.abs(tier.weights(F) @ tier.B[F] - 1))))
    d, amp = tier_error(wide, exhaustive_limit=10**6)
    assert d == pytest.approx(worst_w, rel=1e-6, abs=1e-19)
    # longdouble-accurate up to the amplification (measured 1.6e-16 at A = 9.3e3; float64
    # 3.1e-13): three decades better than the float64 tier
    assert worst_w <= 2 * amp * gauss_mod.LD_EPS and worst_w <= 1e-3 * worst_f
    assert tier_estimate(wide) < tier_estimate(tier)
    # the float64 view of a wide tier is its longdouble matrix rounded
    assert np.array_equal(wide.B, wide.B_wide.astype(np.float64))


def test_split_and_combine_wide() -> None:
    rng = np.random.default_rng(4)
    z = rng.standard_normal(1000).astype(np.longdouble) / np.longdouble(3)  # 64-bit mantissas
    hi, lo = split_wide(z)
    assert hi.dtype == np.float64 and lo.dtype == np.float32
    rest = np.abs(z - hi.astype(np.longdouble) - lo.astype(np.longdouble))
    assert np.all(rest <= np.abs(z) * 2.0**-77)
    if gauss_mod.WIDE_AVAILABLE:
        assert np.any(lo != 0)  # the longdouble bits beyond float64 travel in lo
    w = np.array([0.5, 0, -2], dtype=np.longdouble)
    y = combine_wide([hi, hi, hi], [lo, lo, lo], w)
    assert y.dtype == np.float64
    assert np.array_equal(y, (-1.5 * (hi.astype(np.longdouble) + lo)).astype(np.float64))
    with pytest.raises(ValueError, match="lo parts"):
        combine_wide([hi], [], w[:1])
    with pytest.raises(ValueError, match="every weight is zero"):
        combine_wide([hi], [lo], np.zeros(1, dtype=np.longdouble))
    with pytest.raises(ValueError, match="shape"):
        combine_wide([hi, hi[:3]], [lo, lo[:3]], np.ones(2, dtype=np.longdouble))


def test_make_code_chooses_wide_only_where_needed() -> None:
    small = make_code("hgc", [12, 12], 1, 5)  # every tier at rounding level: unchanged
    assert isinstance(small, HierarchicalCode) and "wide" not in small.spec()
    code = make_code("hgc", [20, 20, 20], 1, 8)  # Gaussian tiers, estimate above 1e-10
    assert isinstance(code, HierarchicalCode)
    if not gauss_mod.WIDE_AVAILABLE:
        assert "wide" not in code.spec()
        return
    assert code.spec()["wide"] == [True] * 3
    assert code.decode_error_estimate() <= 1e-10
    err, tried = measured_decode_error(code, samples=300)
    assert tried > 300 and err <= 1e-10


def test_narrow_platform_warns_once_and_chooses_no_wide_tier(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(gauss_mod, "WIDE_AVAILABLE", False)
    monkeypatch.setattr(gauss_mod, "_warned", [])
    gauss_mod.warn_if_narrow()
    gauss_mod.warn_if_narrow()
    err = capsys.readouterr().err
    assert err.count("WARNING") == 1 and "float64" in err
    tier = gauss_tier(20, 8, tier_family(20, 8), seed=0)
    assert wide_choice([tier]) is None
    assert EPS > 0


def test_the_simulator_charges_the_lo_part_of_a_wide_tier_on_the_worker_uplink() -> None:
    import dataclasses
    import math

    from common.perf import make_plan
    from common.perf.api import expected_time
    from tests.unit.perf.helpers import system

    sysm = system((7, 7), rate=math.inf, shift=0.01, gradient_bytes=40_000)  # deterministic
    plan = make_plan("hgc", [0, 1], [list(range(7))] * 2, s_e=1, s_w=3)
    spec = dict(plan.code_spec, gauss={"edge": None, "workers": [0, 1]})
    narrow = dataclasses.replace(plan, code_spec=spec)
    wide = dataclasses.replace(plan, code_spec=dict(spec, wide=[True, True]))
    # worker link 1e7 B/s: a 40,000-byte vector takes 4 ms, with its 20,000-byte lo part 6 ms
    for method in ("exact", "mc"):
        extra = expected_time(sysm, wide, method, iterations=200) - expected_time(
            sysm, narrow, method, iterations=200
        )
        assert extra == pytest.approx(0.5 * 40_000 / 1e7, rel=0.05), method


def test_the_master_tier_seed_minimises_its_amplification_over_every_set() -> None:
    holders = tier_family(8, 4)
    chosen = gauss_tier(8, 4, holders)
    _, amp = tier_error(chosen, exhaustive_limit=10**4)
    _, amp0 = tier_error(gauss_tier(8, 4, holders, seed=0), exhaustive_limit=10**4)
    # measured: 156 with seed 0 (the best of 0..5 by estimate), 61 with the best of 64
    assert amp <= 0.5 * amp0
    for seed in range(64):  # no other seed is better by more than the 1/16-decade buckets
        _, a = tier_error(gauss_tier(8, 4, holders, seed=seed), exhaustive_limit=10**4)
        assert amp <= a * 10 ** (1 / 16)
