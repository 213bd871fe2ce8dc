"""Models: finite-difference gradient checks, additivity over partitions, mean loss."""

from __future__ import annotations

import numpy as np
import pytest

from common.learning import LearningSpecError, build_model, partition_rows

SPECS = [
    {"kind": "logreg"},
    {"kind": "logreg", "l2": 0.1},
    {"kind": "mlp", "hidden": 5, "activation": "tanh", "l2": 0.05},
    {"kind": "mlp", "hidden": 5, "activation": "relu"},
]


def _problem(seed: int = 0, n: int = 23, d: int = 4, c: int = 3):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, d)), rng.integers(0, c, n), d, c


def _summed_loss(model, params, X, y) -> float:
    return model.loss(params, X, y) * len(y)


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: f"{s['kind']}-{s.get('activation', '')}")
def test_gradient_matches_finite_differences(spec: dict) -> None:
    X, y, d, c = _problem()
    model = build_model(spec, d, c)
    rng = np.random.default_rng(1)
    params = 0.3 * rng.standard_normal(model.n_params)
    grad = model.gradient_sum(params, X, y)
    assert grad.shape == (model.n_params,)
    eps = 1e-6
    numeric = np.empty_like(params)
    for p in range(model.n_params):
        step = np.zeros_like(params)
        step[p] = eps
        plus = _summed_loss(model, params + step, X, y)
        minus = _summed_loss(model, params - step, X, y)
        numeric[p] = (plus - minus) / (2 * eps)
    np.testing.assert_allclose(grad, numeric, rtol=1e-5, atol=1e-6)


def test_gradient_check_detects_a_wrong_gradient() -> None:
    # Negative control: a perturbed gradient must fail the same comparison.
    X, y, d, c = _problem()
    model = build_model({"kind": "logreg", "l2": 0.1}, d, c)
    params = np.full(model.n_params, 0.1)
    grad = model.gradient_sum(params, X, y)
    wrong = grad.copy()
    wrong[0] += 1e-3
    eps = 1e-6
    step = np.zeros_like(params)
    step[0] = eps
    numeric0 = (
        _summed_loss(model, params + step, X, y) - _summed_loss(model, params - step, X, y)
    ) / (2 * eps)
    assert abs(grad[0] - numeric0) < 1e-5
    assert abs(wrong[0] - numeric0) > 1e-4


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: f"{s['kind']}-{s.get('activation', '')}")
@pytest.mark.parametrize("K", [1, 4, 7])
def test_partition_gradients_sum_to_full_gradient(spec: dict, K: int) -> None:
    X, y, d, c = _problem(n=40)
    model = build_model(spec, d, c)
    params = model.init_params(3) + 0.1
    full = model.gradient_sum(params, X, y)
    parts = [model.gradient_sum(params, X[rows], y[rows]) for rows in partition_rows(len(y), K)]
    np.testing.assert_allclose(np.sum(parts, axis=0), full, rtol=1e-12, atol=1e-12)


def test_loss_is_the_mean_over_rows() -> None:
    X, y, d, c = _problem()
    model = build_model({"kind": "mlp", "hidden": 4, "l2": 0.01}, d, c)
    params = model.init_params(0)
    doubled = model.loss(params, np.vstack([X, X]), np.concatenate([y, y]))
    assert model.loss(params, X, y) == pytest.approx(doubled, rel=1e-12)


def test_zero_params_give_log_c_loss_and_uniform_prediction() -> None:
    X, y, d, c = _problem(c=4)
    model = build_model({"kind": "logreg"}, d, c)
    assert model.loss(np.zeros(model.n_params), X, y) == pytest.approx(np.log(4))


def test_n_params_and_deterministic_init() -> None:
    logreg = build_model({"kind": "logreg"}, 64, 10)
    assert logreg.n_params == 650
    mlp = build_model({"kind": "mlp", "hidden": 32}, 64, 10)
    assert mlp.n_params == 64 * 32 + 32 + 32 * 10 + 10
    np.testing.assert_array_equal(mlp.init_params(5), mlp.init_params(5))
    assert not np.array_equal(mlp.init_params(5), mlp.init_params(6))
    assert mlp.init_params(5).dtype == np.float64


def test_accuracy_counts_argmax_hits() -> None:
    model = build_model({"kind": "logreg"}, 2, 2)
    # W = identity, b = 0: the predicted class is the larger coordinate.
    params = np.array([1.0, 0.0, 0.0, 1.0, 0.0, 0.0])
    X = np.array([[2.0, 1.0], [0.0, 3.0], [5.0, 1.0], [1.0, 0.0]])
    assert model.accuracy(params, X, np.array([0, 1, 1, 1])) == 0.5


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"kind": "svm"}, "kind"),
        ({}, "kind"),
        ({"kind": "logreg", "hidden": 3}, "hidden"),
        ({"kind": "mlp", "hidden": 0}, "hidden"),
        ({"kind": "mlp", "hidden": 2.5}, "hidden"),
        ({"kind": "mlp", "hidden": True}, "hidden"),
        ({"kind": "mlp", "activation": "sigmoid"}, "activation"),
        ({"kind": "logreg", "l2": -1}, "l2"),
        ({"kind": "logreg", "l2": "big"}, "l2"),
    ],
)
def test_bad_model_spec_names_the_field(spec: dict, field: str) -> None:
    with pytest.raises(LearningSpecError) as info:
        build_model(spec, 4, 3)
    assert info.value.field == field
    assert str(info.value).startswith(f"{field}: ")


def test_shape_errors_are_clear() -> None:
    model = build_model({"kind": "logreg"}, 3, 2)
    params = np.zeros(model.n_params)
    with pytest.raises(ValueError, match="params: expected shape"):
        model.gradient_sum(np.zeros(5), np.zeros((2, 3)), np.zeros(2, dtype=int))
    with pytest.raises(ValueError, match="X: expected shape"):
        model.gradient_sum(params, np.zeros((2, 4)), np.zeros(2, dtype=int))
    with pytest.raises(ValueError, match="y: expected shape"):
        model.loss(params, np.zeros((2, 3)), np.zeros(3, dtype=int))
