"""The master's optimisers (services.master.optimiser) against hand-written recurrences."""

from __future__ import annotations

import numpy as np
import pytest

from services.master.optimiser import Optimiser, validate_optimiser


def test_sgd_is_the_historical_step_bit_for_bit() -> None:
    p, g = np.array([1.0, 2.0]), np.array([3.0, -7.0])
    np.testing.assert_array_equal(Optimiser(None, 0.3).step(p, g, 7), p - (0.3 / 7) * g)


def test_momentum_and_adam_follow_their_recurrences() -> None:
    rng = np.random.default_rng(0)
    grads = [rng.standard_normal(4) for _ in range(5)]
    p0 = rng.standard_normal(4)
    mom, adam = Optimiser({"kind": "momentum", "beta": 0.5}, 0.1), Optimiser({"kind": "adam"}, 0.01)
    pm, pa = p0.copy(), p0.copy()
    for g in grads:  # summed gradients over 2 rows: the optimisers step on the mean
        pm = mom.step(pm, 2 * g, 2)
        pa = adam.step(pa, 2 * g, 2)
    # replay without the optimiser
    qm, qa, v, m, s = p0.copy(), p0.copy(), np.zeros(4), np.zeros(4), np.zeros(4)
    for t, g in enumerate(grads, start=1):
        v = 0.5 * v + g
        qm = qm - 0.1 * v
        m = 0.9 * m + 0.1 * g
        s = 0.999 * s + 0.001 * g * g
        qa = qa - 0.01 * (m / (1 - 0.9**t)) / (np.sqrt(s / (1 - 0.999**t)) + 1e-8)
    np.testing.assert_allclose(pm, qm, rtol=1e-12)
    np.testing.assert_allclose(pa, qa, rtol=1e-12)
    assert not np.allclose(pm, p0 - 0.1 * sum(grads))  # momentum is not plain SGD


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"kind": "rmsprop"}, "optimiser.kind"),
        ({"kind": "momentum", "beta": 1.0}, "optimiser.beta"),
        ({"kind": "adam", "eps": 0}, "optimiser.eps"),
        ({"kind": "sgd", "beta": 0.9}, "optimiser.beta"),
        ([1], "optimiser"),
    ],
)
def test_bad_optimiser_names_the_field(spec: object, field: str) -> None:
    with pytest.raises(ValueError, match=f"^{field}"):
        validate_optimiser(spec)
