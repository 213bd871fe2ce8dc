"""Property-based tests over random topologies and tolerances (hypothesis)."""

from __future__ import annotations

import json
from fractions import Fraction

import numpy as np
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from common.coding import (
    HierarchicalCode,
    code_from_placement,
    code_from_spec,
    is_feasible,
    make_code,
    optimal_load_fraction,
)
from tests.unit.coding.helpers import (
    decode_hierarchical,
    partition_gradients,
    rel_error,
    worker_messages,
)

SETTINGS = settings(max_examples=40, deadline=None)


@st.composite
def feasible_requests(draw: st.DrawFn) -> tuple[tuple[int, ...], int, int]:
    m = tuple(draw(st.lists(st.integers(1, 6), min_size=1, max_size=5)))
    s_e = draw(st.integers(0, len(m) - 1))
    s_w = draw(st.integers(0, min(m) - 1))
    assume(is_feasible(m, s_e, s_w))
    return m, s_e, s_w


def random_pattern_decode(code: HierarchicalCode, seed: int) -> float:
    rng = np.random.default_rng(seed)
    G = partition_gradients(code.K, seed=seed)
    z = worker_messages(code, G)
    n_alive = code.n_edges - int(rng.integers(0, code.s_e + 1))
    edges = rng.permutation(code.n_edges)[:n_alive].tolist()
    workers = {
        i: rng.permutation(code.workers_per_edge[i])[
            : code.workers_per_edge[i] - int(rng.integers(0, code.s_w + 1))
        ].tolist()
        for i in edges
    }
    return rel_error(decode_hierarchical(code, z, edges, workers), G.sum(axis=0))


@SETTINGS
@given(feasible_requests(), st.integers(0, 2**16))
def test_random_topologies_meet_the_bound_and_decode(req, seed) -> None:  # type: ignore[no-untyped-def]
    m, s_e, s_w = req
    code = make_code("hgc", m, s_e, s_w)
    assert isinstance(code, HierarchicalCode)
    bound = optimal_load_fraction(m, s_e, s_w)
    assert all(Fraction(len(p), code.K) == bound for e in code.placement for p in e)
    for t in range(5):
        assert random_pattern_decode(code, seed + t) <= 1e-9


@SETTINGS
@given(feasible_requests(), st.integers(1, 3))
def test_spec_and_json_round_trip_rebuild_the_identical_code(req, mult) -> None:  # type: ignore[no-untyped-def]
    m, s_e, s_w = req
    code = make_code("hgc", m, s_e, s_w)
    code = make_code("hgc", m, s_e, s_w, K=code.K * mult)
    spec = json.loads(json.dumps(code.spec()))
    again = code_from_spec(spec)
    assert json.dumps(again.to_json()) == json.dumps(code.to_json())


@SETTINGS
@given(feasible_requests(), st.integers(0, 2**16))
def test_any_covering_placement_with_extra_copies_decodes(req, seed) -> None:  # type: ignore[no-untyped-def]
    m, s_e, s_w = req
    base = make_code("hgc", m, s_e, s_w)
    rng = np.random.default_rng(seed)
    placement = [[list(p) for p in edge] for edge in base.placement]
    for _ in range(int(rng.integers(0, 6))):  # unequal loads: random extra partitions
        i = int(rng.integers(len(m)))
        j = int(rng.integers(m[i]))
        k = int(rng.integers(base.K))
        if k not in placement[i][j]:
            placement[i][j].append(k)
    code = code_from_placement(placement, base.K, s_e, s_w, tolerance=None)
    assert code_from_spec(code.spec()).to_json() == code.to_json()
    for t in range(3):
        assert random_pattern_decode(code, seed + t) <= 1e-9


@settings(max_examples=20, deadline=None)
@given(st.lists(st.integers(1, 5), min_size=1, max_size=4), st.integers(0, 30))
def test_flat_crc_decodes_from_random_M_minus_s(m, s_raw) -> None:  # type: ignore[no-untyped-def]
    M = sum(m)
    s = s_raw % M
    code = make_code("flat-crc", m, s=s)
    G = partition_gradients(code.K)
    z = worker_messages(code, G)
    everyone = [(i, j) for i in range(len(m)) for j in range(m[i])]
    rng = np.random.default_rng(s_raw)
    resp = [everyone[t] for t in rng.permutation(M)[: M - s]]
    w = code.decode_weights(resp)
    got = sum(wt * z[i][j] for wt, (i, j) in zip(w, resp, strict=True))
    assert rel_error(np.asarray(got), G.sum(axis=0)) <= 1e-9
