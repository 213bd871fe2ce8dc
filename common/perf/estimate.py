"""Estimating a cluster's profiles from what it measures: the inverse of the runtime model.

Two estimators, pure numpy, each returning its estimate with a standard error:

- :func:`fit_shifted_exponential`: a worker's compute profile (``WorkerProfile.shift_s`` and
  ``rate``, both per unit load) from per-iteration times, with **right-censoring**: a node
  that had not answered when the iteration was cut off (it straggled and was not waited for,
  or never answered) is an observation "longer than the cut-off", not a missing one.
  Dropping those biases the fit towards a fast node (the slow draws are exactly the ones
  dropped); the negative control in ``tests/unit/perf/test_estimate.py`` measures that bias.
- :func:`fit_link`: a link's latency and bandwidth from message sizes and transfer times,
  least squares on ``time = latency + bytes / bandwidth``; the residual spread gives the
  jitter of a uniform-jitter link (``Link.jitter_s``).

Model (``common.perf.system.WorkerProfile``): at load fraction ``l`` a worker takes
``T = shift_s * l + Exp(mean l / rate)``, so ``T / l = shift_s + Exp(rate)``: observations
at different loads are put on the per-unit-load scale by dividing by their load.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = [
    "ComputeFit",
    "LinkFit",
    "fit_link",
    "fit_shifted_exponential",
    "shifted_exponential_loglik",
]


@dataclass(frozen=True)
class ComputeFit:
    """A shifted-exponential fit, per unit load (``WorkerProfile`` units).

    ``shift_se`` and ``rate_se`` are standard errors: the rate's from the observed
    information (``rate / sqrt(events)``), the shift's from the spread of the smallest
    observation (``1 / (at_risk * rate)``: the shift estimate is a minimum, not a regular
    maximum-likelihood estimate). ``censored`` counts the right-censored observations used.
    """

    shift_s: float
    rate: float
    shift_se: float
    rate_se: float
    n: int
    censored: int

    @property
    def mean_s(self) -> float:
        """Mean time per unit load, ``shift_s + 1 / rate``."""
        return self.shift_s + (0.0 if math.isinf(self.rate) else 1.0 / self.rate)


@dataclass(frozen=True)
class LinkFit:
    """``time = latency_s + bytes / bandwidth_bytes_per_s``, fitted by least squares.

    ``identified`` is False when every message had the same size: then latency and
    bandwidth cannot be told apart, the whole mean time is reported as latency and the
    bandwidth as infinite (``bandwidth_se`` NaN). ``jitter_s`` is the half-width of the
    uniform jitter whose spread matches the residuals (``sqrt(3) * residual std``)."""

    latency_s: float
    bandwidth_bytes_per_s: float
    latency_se: float
    bandwidth_se: float
    jitter_s: float
    n: int
    identified: bool


def _as_arrays(
    times: np.ndarray | list[float],
    censored: np.ndarray | list[bool] | None,
    loads: float | np.ndarray | list[float],
) -> tuple[np.ndarray, np.ndarray]:
    t = np.asarray(times, dtype=float).reshape(-1)
    c = np.zeros(t.shape, bool) if censored is None else np.asarray(censored, bool).reshape(-1)
    ell = np.broadcast_to(np.asarray(loads, dtype=float), t.shape)
    if c.shape != t.shape:
        raise ValueError(f"censored: expected {t.shape[0]} flags, got {c.shape[0]}")
    if not np.all(np.isfinite(t)) or np.any(t < 0):
        raise ValueError("times: every time must be a finite number >= 0 seconds")
    if not np.all(np.isfinite(ell)) or np.any(ell <= 0):
        raise ValueError("loads: every load fraction must be a finite number > 0")
    return t / ell, c


def shifted_exponential_loglik(
    shift_s: float,
    rate: float,
    times: np.ndarray | list[float],
    censored: np.ndarray | list[bool] | None = None,
    loads: float | np.ndarray | list[float] = 1.0,
) -> float:
    """Log-likelihood of ``(shift_s, rate)`` (per unit load) given the observations.

    An observed time ``y`` (per unit load) contributes the density
    ``rate * exp(-rate (y - shift_s))`` (``-inf`` below the shift); a censored one the
    survival ``exp(-rate * max(0, y - shift_s))``."""
    y, c = _as_arrays(times, censored, loads)
    if not (rate > 0 and math.isfinite(rate)):
        raise ValueError(f"rate must be a finite number > 0, got {rate}")
    if np.any(y[~c] < shift_s):
        return -math.inf
    excess = np.maximum(y - shift_s, 0.0)
    return float(np.count_nonzero(~c) * math.log(rate) - rate * excess.sum())


def fit_shifted_exponential(
    times: np.ndarray | list[float],
    censored: np.ndarray | list[bool] | None = None,
    loads: float | np.ndarray | list[float] = 1.0,
) -> ComputeFit:
    """Fit ``WorkerProfile.shift_s`` and ``rate`` by censored maximum likelihood.

    Parameters
    ----------
    times : array (N,)
        Seconds; for a censored entry, the cut-off it had not answered by.
    censored : bool array (N,), optional
        True where the node had not answered by ``times[k]`` (right-censored).
    loads : float or array (N,)
        Load fraction of each observation (default 1: times already per unit load).

    Returns
    -------
    ComputeFit
        The likelihood grows with the shift up to the smallest observed time, so the
        maximum-likelihood shift is that minimum and the rate is ``events / exposure``
        (exposure: the summed time past the shift, censored entries up to their cut-off).
        Both are bias-corrected as for the uncensored shifted exponential: the rate uses
        ``events - 1`` (one degree of freedom spent on the minimum) and the shift is lowered
        by the expected gap ``1 / (at_risk * rate)`` between the minimum and the true shift.

    Raises
    ------
    ValueError
        Fewer than two observed (uncensored) times, or malformed input.
    """
    y, c = _as_arrays(times, censored, loads)
    observed = y[~c]
    events = observed.size
    if events < 2:
        raise ValueError(
            f"need at least 2 observed (uncensored) times to fit a shifted exponential, "
            f"got {events} of {y.size}"
        )
    minimum = float(observed.min())
    at_risk = int(np.count_nonzero(y >= minimum))  # every observed time, censored ones above
    exposure = float(np.maximum(y - minimum, 0.0).sum())
    if exposure <= 0.0:  # every time equal: deterministic compute
        return ComputeFit(minimum, math.inf, 0.0, math.nan, y.size, int(c.sum()))
    rate = (events - 1) / exposure
    gap = 1.0 / (at_risk * rate)
    shift = max(0.0, minimum - gap)
    return ComputeFit(
        shift_s=shift,
        rate=rate,
        shift_se=gap,
        rate_se=rate / math.sqrt(events - 1),
        n=int(y.size),
        censored=int(c.sum()),
    )


def fit_link(sizes_bytes: np.ndarray | list[float], times_s: np.ndarray | list[float]) -> LinkFit:
    """Least squares on ``time = latency + bytes / bandwidth`` with latency >= 0 and
    bandwidth > 0 (a negative slope means no measurable size cost: infinite bandwidth).

    Parameters
    ----------
    sizes_bytes : array (N,)
        Message sizes, bytes.
    times_s : array (N,)
        One-way transfer times, seconds.

    Standard errors are the ordinary least-squares ones (residual variance over N - 2, or
    N - 1 when only the latency is fitted); the bandwidth's is propagated from the slope's
    (delta method, ``se_slope / slope**2``).
    """
    x = np.asarray(sizes_bytes, dtype=float).reshape(-1)
    t = np.asarray(times_s, dtype=float).reshape(-1)
    if x.shape != t.shape:
        raise ValueError(f"sizes_bytes and times_s differ in length: {x.size} vs {t.size}")
    if x.size < 2:
        raise ValueError(f"need at least 2 messages to fit a link, got {x.size}")
    if not (np.all(np.isfinite(x)) and np.all(x >= 0)):
        raise ValueError("sizes_bytes: every size must be a finite number >= 0")
    if not (np.all(np.isfinite(t)) and np.all(t >= 0)):
        raise ValueError("times_s: every time must be a finite number >= 0")
    n = x.size
    sxx = float(((x - x.mean()) ** 2).sum())
    if sxx <= 0.0 or sxx <= 1e-12 * float((x**2).sum()):
        return _latency_only(t, identified=False)
    slope = float(((x - x.mean()) * (t - t.mean())).sum() / sxx)
    latency = float(t.mean() - slope * x.mean())
    if slope <= 0.0:
        return _latency_only(t, identified=True)
    if latency < 0.0:  # through the origin: pure bandwidth
        slope = float((x * t).sum() / (x**2).sum())
        resid = t - slope * x
        sigma2 = float((resid**2).sum()) / (n - 1)
        se_slope = math.sqrt(sigma2 / float((x**2).sum()))
        return LinkFit(0.0, 1.0 / slope, 0.0, se_slope / slope**2, _jitter(resid, n - 1), n, True)
    resid = t - latency - slope * x
    dof = max(n - 2, 1)
    sigma2 = float((resid**2).sum()) / dof
    se_slope = math.sqrt(sigma2 / sxx)
    se_latency = math.sqrt(sigma2 * (1.0 / n + x.mean() ** 2 / sxx))
    return LinkFit(
        latency_s=latency,
        bandwidth_bytes_per_s=1.0 / slope,
        latency_se=se_latency,
        bandwidth_se=se_slope / slope**2,
        jitter_s=_jitter(resid, dof),
        n=n,
        identified=True,
    )


def _jitter(resid: np.ndarray, dof: int) -> float:
    return math.sqrt(3.0 * float((resid**2).sum()) / max(dof, 1))


def _latency_only(t: np.ndarray, identified: bool) -> LinkFit:
    n = t.size
    resid = t - t.mean()
    sigma2 = float((resid**2).sum()) / (n - 1)
    return LinkFit(
        latency_s=float(t.mean()),
        bandwidth_bytes_per_s=math.inf,
        latency_se=math.sqrt(sigma2 / n),
        bandwidth_se=math.nan if not identified else 0.0,
        jitter_s=_jitter(resid, n - 1),
        n=n,
        identified=identified,
    )
