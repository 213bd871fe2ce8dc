"""The CNN: gradient vs central finite differences (rel 1e-6) on random inputs, additivity over
rows and chunks, spec errors."""

from __future__ import annotations

import numpy as np
import pytest

from common.learning import LearningSpecError, build_model, cnn

SPECS = [
    {"kind": "cnn", "filters": 3, "kernel": 3, "pool": 2},
    {"kind": "cnn", "filters": 2, "kernel": 2, "pool": 3, "hidden": 4, "l2": 0.1, "channels": 2},
]


def _numeric(model, params, X, y, eps=1e-6):
    out = np.empty_like(params)
    for i in range(len(params)):
        step = np.zeros_like(params)
        step[i] = eps
        plus = model.loss(params + step, X, y) * len(y)
        minus = model.loss(params - step, X, y) * len(y)
        out[i] = (plus - minus) / (2 * eps)
    return out


@pytest.mark.parametrize("spec", SPECS, ids=["plain", "hidden-2ch-l2"])
def test_cnn_gradient_matches_finite_differences(spec: dict) -> None:
    rng = np.random.default_rng(7)
    channels = spec.get("channels", 1)
    X = rng.standard_normal((6, channels * 8 * 8))
    y = rng.integers(0, 3, 6)
    model = build_model(spec, channels * 64, 3)
    params = 0.3 * rng.standard_normal(model.n_params)
    grad = model.gradient_sum(params, X, y)
    numeric = _numeric(model, params, X, y)
    scale = np.max(np.abs(numeric))
    # relative to the gradient's scale: elements near zero compare absolutely at 1e-6 * scale
    np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-6 * scale)
    wrong = grad.copy()
    wrong[model.n_params // 2] += 1e-4 * scale
    assert not np.allclose(wrong, numeric, rtol=1e-6, atol=1e-6 * scale)


def test_cnn_gradient_is_additive_over_rows_and_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(3)
    X, y = rng.random((40, 100)), rng.integers(0, 10, 40)
    model = build_model({"kind": "cnn", "filters": 4, "kernel": 3, "l2": 0.01}, 100, 10)
    params = model.init_params(1)
    whole = model.gradient_sum(params, X, y)
    parts = model.gradient_sum(params, X[:17], y[:17]) + model.gradient_sum(params, X[17:], y[17:])
    np.testing.assert_allclose(parts, whole, rtol=1e-12, atol=1e-12)
    logits = model.logits(params, X)
    monkeypatch.setattr(cnn, "CHUNK_ROWS", 7)  # many chunks: same numbers
    np.testing.assert_allclose(model.gradient_sum(params, X, y), whole, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(model.logits(params, X), logits, rtol=1e-12, atol=1e-12)


def test_cnn_on_mnist_shape_and_init_is_deterministic() -> None:
    model = build_model({"kind": "cnn"}, 784, 10)
    # conv 5x5x8 (200+8), pooled 12*12*8=1152 -> 10
    assert model.n_params == 25 * 8 + 8 + 1152 * 10 + 10
    np.testing.assert_array_equal(model.init_params(4), model.init_params(4))
    assert not np.array_equal(model.init_params(4), model.init_params(5))
    X = np.random.default_rng(0).random((3, 784))
    assert model.logits(model.init_params(0), X).shape == (3, 10)


@pytest.mark.parametrize(
    ("spec", "n_features", "field"),
    [
        ({"kind": "cnn", "filters": 0}, 64, "filters"),
        ({"kind": "cnn", "kernel": 9}, 64, "kernel"),
        ({"kind": "cnn", "kernel": 5, "pool": 5}, 64, "pool"),
        ({"kind": "cnn", "channels": 3}, 64, "channels"),
        ({"kind": "cnn"}, 63, "channels"),
        ({"kind": "cnn", "stride": 2}, 64, "stride"),
    ],
)
def test_cnn_bad_specs_name_the_field(spec: dict, n_features: int, field: str) -> None:
    with pytest.raises(LearningSpecError) as info:
        build_model(spec, n_features, 10)
    assert info.value.field == field
