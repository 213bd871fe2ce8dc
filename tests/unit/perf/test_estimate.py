"""The estimator (common.perf.estimate) recovers known profiles; ignoring censoring does not.

Statistics of the acceptance figure: with 200 observations and 30 % censoring there are about
140 events, so the rate's standard error is rate / sqrt(140) ~ 8.5 % -- the information
bound, no estimator does better. "Within 10 %" is therefore asserted for the shift on every
fit (its error is ~1/(200 shift rate), well under 1 %) and for the rate as the mean over the
seeds of each parameter set (bias), with every single fit within 4 of its own reported
standard errors (the uncertainty is honest). The negative control drops the censored
observations (treats them as missing) and must be measurably biased.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from common.perf.estimate import (
    fit_link,
    fit_shifted_exponential,
    shifted_exponential_loglik,
)

PARAMS = [(0.1, 10.0), (0.3, 10.0 / 3.0), (0.6, 10.0 / 6.0), (0.05, 50.0)]
SEEDS = range(8)
N = 200
CENSORED = 0.3


def draw(shift: float, rate: float, seed: int, kind: str, loads: np.ndarray | float = 1.0):
    """(times, censored, loads): N shifted-exponential times at ``loads``; a fixed cut-off
    at the 70 % quantile or an independent exponential cut-off, both censoring 30 %."""
    rng = np.random.default_rng(seed)
    ell = np.broadcast_to(np.asarray(loads, float), (N,))
    x = ell * (shift + rng.exponential(1.0 / rate, N))
    if kind == "fixed":
        cut = ell * (shift + math.log(1.0 / CENSORED) / rate)
    else:  # P(X > C) = rc / (rate + rc) = 0.3
        rc = rate * CENSORED / (1.0 - CENSORED)
        cut = ell * (shift + rng.exponential(1.0 / rc, N))
    cens = x > cut
    return np.where(cens, cut, x), cens, ell


@pytest.mark.parametrize("kind", ["fixed", "random"])
@pytest.mark.parametrize(("shift", "rate"), PARAMS)
def test_censored_fit_recovers_parameters_and_ignoring_censoring_is_biased(kind, shift, rate):
    rates, naive = [], []
    for seed in SEEDS:
        t, cens, _ = draw(shift, rate, seed, kind)
        assert 0.2 < cens.mean() < 0.4  # the scenario asked for: ~30 % right-censored
        fit = fit_shifted_exponential(t, cens)
        assert fit.n == N and fit.censored == int(cens.sum())
        assert abs(fit.shift_s / shift - 1) < 0.10, (seed, fit)
        assert abs(fit.rate - rate) < 4 * fit.rate_se, (seed, fit)
        assert 0 < fit.rate_se < 0.12 * fit.rate and 0 < fit.shift_se < 0.05 * shift
        rates.append(fit.rate)
        naive.append(fit_shifted_exponential(t[~cens]).rate)  # censored ones "missing"
    bias = np.mean(rates) / rate - 1
    naive_bias = np.mean(naive) / rate - 1
    assert abs(bias) < 0.10, bias
    # negative control: dropping the slow draws makes the node look faster (higher rate)
    assert naive_bias > 0.30, naive_bias
    assert naive_bias - abs(bias) > 0.25  # ~8 standard errors of a mean over 8 seeds


def test_treating_cutoff_as_an_answer_is_biased_too():
    """The other wrong reading (the cut-off as the answer time) also overestimates the rate."""
    biased = []
    for seed in SEEDS:
        t, cens, _ = draw(0.3, 10.0 / 3.0, seed, "fixed")
        biased.append(fit_shifted_exponential(t).rate)  # no censoring flags
    assert np.mean(biased) / (10.0 / 3.0) - 1 > 0.25


def test_loads_put_observations_on_the_unit_scale():
    ell = np.where(np.arange(N) % 2 == 0, 1.0 / 12, 1.0 / 4)
    rates = []
    for seed in SEEDS:
        t, cens, ell_ = draw(0.6, 10.0 / 6.0, seed, "random", ell)
        fit = fit_shifted_exponential(t, cens, ell_)
        assert abs(fit.shift_s / 0.6 - 1) < 0.10
        rates.append(fit.rate)
    assert abs(np.mean(rates) / (10.0 / 6.0) - 1) < 0.10
    # the same data read as if it were all at one load is far off
    t, cens, _ = draw(0.6, 10.0 / 6.0, 0, "random", ell)
    wrong = fit_shifted_exponential(t, cens, 1.0 / 12)
    assert wrong.shift_s > 1.5 * 0.6 or wrong.rate < 0.7 * 10.0 / 6.0


def test_fit_is_the_likelihood_maximum_up_to_its_bias_corrections():
    t, cens, _ = draw(0.3, 3.0, 3, "random")
    fit = fit_shifted_exponential(t, cens)
    events = int((~cens).sum())
    mle_shift = float(t[~cens].min())
    mle_rate = events / float(np.maximum(t - mle_shift, 0).sum())
    best = shifted_exponential_loglik(mle_shift, mle_rate, t, cens)
    for ds, dr in [(-0.01, 0), (0, 0.05), (0, -0.05), (-0.001, 0.02)]:
        assert shifted_exponential_loglik(mle_shift + ds, mle_rate * (1 + dr), t, cens) < best
    assert shifted_exponential_loglik(mle_shift + 1e-3, mle_rate, t, cens) == -math.inf
    assert fit.rate == pytest.approx(mle_rate * (events - 1) / events)
    assert mle_shift - 3 * fit.shift_se < fit.shift_s < mle_shift


def test_deterministic_times_give_an_infinite_rate():
    fit = fit_shifted_exponential([0.2, 0.2, 0.2, 0.2])
    assert fit.shift_s == 0.2 and math.isinf(fit.rate) and fit.mean_s == 0.2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (([0.1], None), "at least 2 observed"),
        (([0.1, 0.2, 0.3], [True, True, False]), "at least 2 observed"),
        (([0.1, -0.2], None), "times"),
        (([0.1, float("nan")], None), "times"),
        (([0.1, 0.2], [True]), "censored"),
    ],
)
def test_bad_input_names_the_field(args, message):
    with pytest.raises(ValueError, match=message):
        fit_shifted_exponential(*args)
    with pytest.raises(ValueError, match="loads"):
        fit_shifted_exponential([0.1, 0.2, 0.3], None, 0.0)


@pytest.mark.parametrize(
    ("latency", "bandwidth", "jitter"),
    [(0.002, 2.5e6, 0.001), (0.05, 2.5e5, 0.01), (0.0005, 1.25e7, 0.0)],
)
def test_link_fit_recovers_latency_and_bandwidth(latency, bandwidth, jitter):
    rng = np.random.default_rng(7)
    sizes = rng.choice([5_200.0, 40_000.0, 160_000.0, 400_000.0], 200)
    times = latency + sizes / bandwidth + rng.uniform(-jitter, jitter, sizes.size)
    fit = fit_link(sizes, np.maximum(times, 0))
    assert fit.identified and fit.n == 200
    assert abs(fit.latency_s - latency) < max(0.10 * latency, 4 * fit.latency_se)
    assert abs(fit.bandwidth_bytes_per_s / bandwidth - 1) < 0.10
    assert fit.jitter_s == pytest.approx(jitter, rel=0.25, abs=1e-9)


def test_link_of_one_size_is_latency_only_and_says_so():
    fit = fit_link([5_200.0] * 10, [0.004 + 0.0001 * k for k in range(10)])
    assert not fit.identified and math.isinf(fit.bandwidth_bytes_per_s)
    assert fit.latency_s == pytest.approx(0.00445) and math.isnan(fit.bandwidth_se)


def test_link_without_size_cost_has_infinite_bandwidth():
    fit = fit_link([100.0, 1e5, 100.0, 1e5], [0.011, 0.010, 0.011, 0.010])
    assert fit.identified and math.isinf(fit.bandwidth_bytes_per_s)
    assert fit.latency_s == pytest.approx(0.0105)


def test_link_bad_input():
    with pytest.raises(ValueError, match="differ in length"):
        fit_link([1.0, 2.0], [0.1])
    with pytest.raises(ValueError, match="times_s"):
        fit_link([1.0, 2.0], [0.1, -1.0])
    with pytest.raises(ValueError, match="at least 2"):
        fit_link([1.0], [0.1])
