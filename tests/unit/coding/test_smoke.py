"""First checks of the public API: every scheme builds and decodes a full-response round."""

from __future__ import annotations

import numpy as np
import pytest

from common.coding import CODE_SCHEMES, FlatCode, HierarchicalCode, code_from_spec, make_code
from tests.unit.coding.helpers import (
    decode_hierarchical,
    partition_gradients,
    rel_error,
    worker_messages,
)


@pytest.mark.parametrize("scheme", CODE_SCHEMES)
def test_every_scheme_builds_and_decodes_with_everyone_answering(scheme: str) -> None:
    kw = {"s": 2} if scheme.startswith("flat") else {}
    s_e, s_w = {"uncoded": (0, 0), "worker-gc": (0, 1), "edge-gc": (1, 0)}.get(scheme, (1, 1))
    if scheme.startswith("flat"):
        s_e = s_w = 0
    code = make_code(scheme, [4, 4, 4, 4] if scheme == "fr" else [3, 3, 3], s_e, s_w, **kw)
    G = partition_gradients(code.K)
    z = worker_messages(code, G)
    if isinstance(code, FlatCode):
        resp = [(i, j) for i in range(code.n_edges) for j in range(code.workers_per_edge[i])]
        w = code.decode_weights(resp)
        got = sum(wt * z[i][j] for wt, (i, j) in zip(w, resp, strict=True))
    else:
        assert isinstance(code, HierarchicalCode)
        edges = list(range(code.n_edges))
        got = decode_hierarchical(
            code, z, edges, {i: list(range(code.workers_per_edge[i])) for i in edges}
        )
    if code.exact:
        assert rel_error(np.asarray(got), G.sum(axis=0)) < 1e-12
    else:  # ignore-stragglers drops what the last answers carried, even when everyone answers
        assert scheme == "ignore"
        assert rel_error(np.asarray(got), G.sum(axis=0)) > 1e-3
    rebuilt = code_from_spec(code.spec())
    assert rebuilt.to_json() == code.to_json()
