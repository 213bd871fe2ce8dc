"""The worker's set-up loads only its partitions' rows: same rows and coded vector as slicing
the full dataset, with a peak allocation of O(own rows) instead of O(dataset)."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from common.coding import make_code
from common.learning import build_model, load_dataset, partition_rows
from services.worker.compute import coded_gradient, load_partitions

SPEC = {"kind": "synthetic", "n_samples": 12_000, "n_features": 300, "n_classes": 4, "seed": 2}


@pytest.mark.parametrize("worker", [0, 2])
def test_worker_rows_and_vector_match_the_full_dataset(worker: int) -> None:
    code = make_code("hgc", [3, 3, 3], 1, 1)
    parts = tuple(code.placement[1][worker])
    coeffs = np.asarray(code.worker_coefficients[1][worker])
    data = load_partitions(parts, coeffs, code.K, SPEC, {"kind": "mlp", "hidden": 8})
    full = load_dataset(SPEC)
    rows = partition_rows(full.n_train, code.K)
    for k, X, y in zip(parts, data.X_parts, data.y_parts, strict=True):
        assert X.tobytes() == full.X_train[rows[k]].tobytes()
        np.testing.assert_array_equal(y, full.y_train[rows[k]])
    model = build_model({"kind": "mlp", "hidden": 8}, full.n_features, full.n_classes)
    params = model.init_params(4)
    expected = sum(
        c * model.gradient_sum(params, full.X_train[rows[k]], full.y_train[rows[k]])
        for c, k in zip(coeffs, parts, strict=True)
    )
    assert data.model.n_params == model.n_params
    np.testing.assert_array_equal(coded_gradient(data, params), expected)


def test_worker_setup_allocates_o_own_rows() -> None:
    code = make_code("hgc", [3, 3, 3], 1, 1)
    parts = tuple(code.placement[0][0])
    coeffs = np.asarray(code.worker_coefficients[0][0])
    tracemalloc.start()
    try:
        data = load_partitions(parts, coeffs, code.K, SPEC, {"kind": "logreg"})
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    full_bytes = 9_600 * (300 * 8 + 8)
    assert data.nbytes < 0.5 * full_bytes  # 4 of 9 partitions
    # own rows plus a few generation blocks, far below the ~full_bytes of loading it all
    assert peak < data.nbytes + 0.2 * full_bytes, (peak, data.nbytes, full_bytes)
