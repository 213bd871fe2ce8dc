"""Infeasible tolerances are rejected against the topology (spec section 2), naming the field
and the largest feasible value; every feasible combination is accepted."""

from __future__ import annotations

import itertools

import pytest

from common import coding
from common.coding import Tolerances
from common.scenario import ScenarioError, check_code, largest_feasible_s_e, parse_scenario

from .helpers import base, with_field


def _doc(workers_per_edge: list[int], **code: int) -> dict:
    doc = with_field(base(), "topology.workers_per_edge", workers_per_edge)
    doc = with_field(doc, "topology.overrides", {})
    return with_field(doc, "code", code)


def test_spec_example_of_infeasible_s_e() -> None:
    # n = 2, m = (1, 5), s_e = 1: the single worker of edge 0 would need every partition.
    with pytest.raises(ScenarioError) as info:
        parse_scenario(_doc([1, 5], s_e=1))
    message = str(info.value)
    assert message.startswith("code.s_e: (s_e+1)*max(workers_per_edge) = 10 > sum(")
    assert "largest feasible s_e for this topology is 0" in message


@pytest.mark.parametrize(
    ("wpe", "code", "start", "phrase"),
    [
        (
            [3, 3, 3],
            {"s_e": 3},
            "code.s_e: s_e=3 >= n_edges=3",
            "largest feasible s_e for workers_per_edge=[3, 3, 3] is 2",
        ),
        (
            [3, 2, 3],
            {"s_w": 2},
            "code.s_w: s_w=2 >= min workers_per_edge=2 (edge 1)",
            "largest feasible s_w is 1",
        ),
        (
            [4, 1, 1],
            {"s_e": 1},
            "code.s_e: (s_e+1)*max",
            "largest feasible s_e for this topology is 0",
        ),
        ([2, 2], {"s": 4}, "code.s: s=4: flat codes tolerate", "s <= M-1 = 3"),
    ],
)
def test_infeasible_tolerances(wpe: list[int], code: dict, start: str, phrase: str) -> None:
    with pytest.raises(ScenarioError) as info:
        parse_scenario(_doc(wpe, **code))
    assert str(info.value).startswith(start), str(info.value)
    assert phrase in str(info.value)


@pytest.mark.parametrize("wpe", [(3, 3, 3), (1, 5), (4, 3, 4, 3), (2, 2, 6), (1,), (5, 1, 1, 1)])
def test_rule_matches_brute_force_definition(wpe: tuple[int, ...]) -> None:
    n, M = len(wpe), sum(wpe)
    for s_e, s_w in itertools.product(range(n + 1), range(max(wpe) + 1)):
        feasible = s_e <= n - 1 and s_w <= min(wpe) - 1 and (s_e + 1) * max(wpe) <= M
        if feasible:
            check_code(Tolerances(s_e, s_w, 0), wpe, ())
        else:
            with pytest.raises(ScenarioError, match=r"^code\.s_[ew]: "):
                check_code(Tolerances(s_e, s_w, 0), wpe, ())
    assert largest_feasible_s_e(wpe) == max(s for s in range(n) if (s + 1) * max(wpe) <= M)


def test_default_flat_s_divides_M_and_does_not_exceed_hgc_load() -> None:
    # M = 9, HGC (1, 1) load 4/9: the largest s + 1 dividing 9 and <= 4 is 3.
    assert parse_scenario(_doc([3, 3, 3], s_e=1, s_w=1)).code.s == 2
    # M = 4, target 4: s + 1 = 4.
    assert parse_scenario(_doc([2, 2], s_e=1, s_w=1)).code.s == 3
    # M = 14, target 4: divisors 1, 2, 7, 14 -> s + 1 = 2.
    assert parse_scenario(_doc([4, 3, 4, 3], s_e=1, s_w=1)).code.s == 1
    assert parse_scenario(_doc([3, 3, 3])).code.s == 0


def test_flat_frc_needs_s_plus_one_to_divide_M() -> None:
    doc = with_field(_doc([3, 3, 3], s_e=1, s_w=1, s=3), "schemes", ["uncoded", "flat-frc"])
    with pytest.raises(ScenarioError) as info:
        parse_scenario(doc)
    assert str(info.value).startswith("code.s: flat-frc needs (s+1) to divide M")
    assert "flat-frc with s in [0, 2, 8]" in str(info.value)
    assert "(flat-frc is listed in schemes)" in str(info.value)
    # flat-crc takes any s <= M - 1
    assert parse_scenario(with_field(doc, "schemes", ["flat-crc"])).code.s == 3


@pytest.mark.parametrize("wpe", [(3, 3, 3), (1, 5), (4, 3, 4, 3), (2, 2, 6), (5, 1, 1, 1), (2, 3)])
def test_rule_agrees_with_the_coding_core(wpe: tuple[int, ...]) -> None:
    for s_e, s_w in itertools.product(range(len(wpe) + 1), range(max(wpe) + 1)):
        try:
            check_code(Tolerances(s_e, s_w, 0), wpe, ())
            ours = True
        except ScenarioError:
            ours = False
        assert ours == coding.is_feasible(wpe, s_e, s_w), (wpe, s_e, s_w)


def test_requested_K_must_give_integer_loads() -> None:
    with pytest.raises(ScenarioError) as info:
        parse_scenario(_doc([3, 3, 3], s_e=1, s_w=1, K=10))
    assert str(info.value).startswith("code.K: K=10: K(s_e+1)m_i/M and K(s_e+1)(s_w+1)/M")
    assert "multiples of 9" in str(info.value)
    assert parse_scenario(_doc([3, 3, 3], s_e=1, s_w=1, K=18)).code.K == 18


def test_requested_K_is_checked_against_every_listed_fixed_scheme() -> None:
    # M = 4 (2 + 2), s_e = s_w = 1: hgc accepts any K; uncoded (0, 0) needs a multiple of 4.
    doc = with_field(_doc([2, 2], s_e=1, s_w=1, K=3), "schemes", ["hgc"])
    assert parse_scenario(doc).code.K == 3
    with pytest.raises(ScenarioError) as info:
        parse_scenario(with_field(doc, "schemes", ["uncoded", "hgc"]))
    assert str(info.value).startswith("code.K: K=3")
    assert "multiples of 4" in str(info.value) and "(uncoded is listed in schemes)" in str(
        info.value
    )
