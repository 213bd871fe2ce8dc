"""The decoder API: responder order, extra responders, shortfalls, bad input, caching, combine."""

from __future__ import annotations

import numpy as np
import pytest

from common.coding import DecodeError, HierarchicalCode, combine, make_code


def hgc(m=(3, 3, 3), s_e=1, s_w=1) -> HierarchicalCode:  # type: ignore[no-untyped-def]
    code = make_code("hgc", m, s_e, s_w)
    assert isinstance(code, HierarchicalCode)
    return code


def test_only_the_first_needed_responders_get_weight_in_the_given_order() -> None:
    code = hgc()
    w = code.edge_decode_weights(0, [2, 0, 1])
    assert w.shape == (3,) and w[2] == 0.0 and np.all(w[:2] != 0.0)
    w_rev = code.edge_decode_weights(0, [0, 2])
    np.testing.assert_allclose(w_rev, w[:2][::-1])
    m = code.master_decode_weights([1, 2, 0])
    assert m[2] == 0.0 and code.edges_needed == 2 and code.workers_needed(1) == 2


def test_too_few_responders_names_the_shortfall() -> None:
    code = hgc((4, 4, 4), 1, 1)
    with pytest.raises(
        DecodeError, match=r"edge 2: needs 3 of its 4 workers .* only 1 .* short by 2"
    ):
        code.edge_decode_weights(2, [3])
    with pytest.raises(DecodeError, match=r"master: needs 2 of its 3 edges .* short by 1"):
        code.master_decode_weights([0])
    flat = make_code("flat-crc", [2, 2], s=1)
    with pytest.raises(DecodeError, match=r"needs 3 of its 4 workers .* short by 1"):
        flat.decode_weights([(0, 0), (1, 1)])


def test_bad_responders_are_refused() -> None:
    code = hgc()
    with pytest.raises(DecodeError, match=r"out of range"):
        code.edge_decode_weights(0, [0, 3])
    with pytest.raises(DecodeError, match=r"repeated"):
        code.master_decode_weights([1, 1])
    flat = make_code("flat-frc", [2, 2], s=1)
    with pytest.raises(DecodeError, match=r"worker \(2, 0\) is not in topology"):
        flat.decode_weights([(0, 0), (1, 1), (2, 0)])


def test_weights_are_cached_per_responder_set_and_bounded() -> None:
    code = make_code("hgc", [9] * 3, 1, 4)
    assert isinstance(code, HierarchicalCode)
    a = code.edge_decode_weights(0, [0, 1, 2, 3, 4])
    b = code.edge_decode_weights(0, [0, 1, 2, 3, 4])
    np.testing.assert_array_equal(a, b)
    tier = code.worker_tiers[0]
    import itertools

    for F in itertools.islice(itertools.combinations(range(9), 5), 126):
        code.edge_decode_weights(0, F)
    assert len(tier._cache) <= 256


def test_combine_matches_the_naive_sum_and_reuses_the_buffer() -> None:
    rng = np.random.default_rng(0)
    vecs = [rng.standard_normal(100_003) for _ in range(4)]
    w = np.array([1.0, -2.5, 0.0, 3.0])
    out = np.empty(100_003)
    got = combine(vecs, w, out=out)
    assert got is out
    np.testing.assert_allclose(got, vecs[0] - 2.5 * vecs[1] + 3.0 * vecs[3], rtol=1e-13)
    with pytest.raises(ValueError, match="3 vectors but 4 weights"):
        combine(vecs[:3], w)
    with pytest.raises(ValueError, match="every weight is zero"):
        combine(vecs, np.zeros(4))
    with pytest.raises(ValueError, match="out has shape"):
        combine(vecs, w, out=np.empty(5))


def test_ignore_rescales_by_m_over_answers_and_n_over_edges() -> None:
    code = make_code("ignore", [4, 4, 4], 1, 1)
    assert isinstance(code, HierarchicalCode) and not code.exact
    assert code.workers_needed(0) == 3 and code.edges_needed == 2
    np.testing.assert_allclose(code.edge_decode_weights(0, [3, 1, 0, 2]), [4 / 3] * 3 + [0])
    np.testing.assert_allclose(code.master_decode_weights([2, 0]), [3 / 2, 3 / 2])
    # unbiased when every partition gradient is the same: the rescaled sum is then exact
    from tests.unit.coding.helpers import decode_hierarchical, worker_messages

    G = np.tile(np.arange(1.0, 5.0), (code.K, 1))
    got = decode_hierarchical(code, worker_messages(code, G), [2, 0], {2: [0, 1, 2], 0: [1, 2, 3]})
    np.testing.assert_allclose(got, G.sum(axis=0))
