"""Exact expected iteration time for independent per-node times (spec §5).

The CDF of the iteration time is computed on a time grid: each worker's arrival CDF is
analytic (shifted-exponential, optionally a stationary two-state mixture for ``markov``,
convolved with the discrete link delays); an edge's finish CDF is the probability that at
most ``s_w`` of its workers have *not* arrived — a Poisson-binomial tail, computed by dynamic
programming over workers with the count capped at ``s_w + 1`` — shifted by the edge's own
(random) offset; the master's CDF is the same tail over edges. Then
``E[T] = t_lo + integral_{t_lo}^{t_hi} (1 - F_T(t)) dt`` (trapezoid rule).

Vectorised over edges and grid points; the only Python loops run over the workers of one
edge and over link atoms.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from common.perf.batch import compute_cdf, hierarchical_cdf, pad_atoms, prob_at_most_misses
from common.perf.batch import support as batch_support
from common.perf.model import Atoms, Compiled, add_atoms, slow_probability

DEFAULT_GRID = 2048
TAIL_SCALES = 40.0  # grid reaches shift + 40 exponential means: tail mass e^-40


class ExactUnavailableError(ValueError):
    """The exact method does not apply (correlated times); the message says why."""


@dataclass(frozen=True)
class ExactResult:
    """The iteration time distribution on a grid: ``cdf[k] = P[T <= t[k]]`` (seconds)."""

    t: np.ndarray  # (G,)
    cdf: np.ndarray  # (G,)
    mean_s: float

    def quantile(self, q: float) -> float:
        idx = int(np.searchsorted(self.cdf, q, side="left"))
        if idx == 0:
            return float(self.t[0])
        if idx >= self.t.size:
            return float(self.t[-1])
        f0, f1 = self.cdf[idx - 1], self.cdf[idx]
        w = 0.0 if f1 == f0 else (q - f0) / (f1 - f0)
        return float(self.t[idx - 1] + w * (self.t[idx] - self.t[idx - 1]))


def check_exact_applies(c: Compiled) -> None:
    if c.straggler.kind == "trace":
        raise ExactUnavailableError(
            "straggler.kind=trace: replayed rows are correlated across workers; use method='mc'"
        )
    if c.is_flat:
        for e in c.edges:
            if e.offset.values.size > 1 and e.shift.size > 1:
                raise ExactUnavailableError(
                    f"edge {e.edge}: a random uplink delay is shared by all relayed messages "
                    "of a flat scheme (correlated); use method='mc'"
                )
            if e.relay_s > 0 and e.shift.size > 1:
                raise ExactUnavailableError(
                    f"edge {e.edge}: relayed messages queue on a finite-bandwidth uplink "
                    "(correlated); use method='mc'"
                )


@dataclass(frozen=True)
class _Stack:
    """Workers of all selected edges padded to ``(n, m_max)``; link atoms to ``A``."""

    shift: np.ndarray  # (n, m_max)
    scale: np.ndarray  # (n, m_max)
    values: np.ndarray  # (n, m_max, A) link delay atoms (seconds)
    weights: np.ndarray  # (n, m_max, A) their probabilities (0 for padding)
    valid: np.ndarray  # (n, m_max) bool


def _stack(c: Compiled) -> _Stack:
    n = len(c.edges)
    m_max = max(e.shift.size for e in c.edges)
    links = []
    for e in c.edges:
        row = list(e.link)
        if c.is_flat:
            relay = Atoms(e.relay.values + e.relay_s, e.relay.weights)
            row = [add_atoms(a, relay) for a in row]
        links.append(row)
    a_max = max(a.values.size for row in links for a in row)
    shift = np.zeros((n, m_max))
    scale = np.zeros((n, m_max))
    values = np.zeros((n, m_max, a_max))
    weights = np.zeros((n, m_max, a_max))
    valid = np.zeros((n, m_max), dtype=bool)
    for p, e in enumerate(c.edges):
        m = e.shift.size
        shift[p, :m], scale[p, :m], valid[p, :m] = e.shift, e.scale, True
        for q, a in enumerate(links[p]):
            values[p, q, : a.values.size] = a.values
            values[p, q, a.values.size :] = a.values[-1]
            weights[p, q, : a.values.size] = a.weights
    return _Stack(shift, scale, values, weights, valid)


def _support(c: Compiled, st: _Stack, slowdown: float, pi: float) -> tuple[float, float]:
    """An interval [t_lo, t_hi] that holds all but ~e^-40 of the iteration time's mass."""
    slow_lo = slowdown if pi >= 1.0 else 1.0
    slow_hi = slowdown if pi > 0.0 else 1.0
    off_lo = np.array([e.offset.values.min() for e in c.edges])
    off_hi = np.array([e.offset.values.max() for e in c.edges])
    w_lo = np.where(st.valid, st.values.min(axis=2) + st.shift * slow_lo, np.inf)
    w_hi = np.where(
        st.valid, st.values.max(axis=2) + (st.shift + TAIL_SCALES * st.scale) * slow_hi, 0.0
    )
    lo = float((off_lo + w_lo.min(axis=1)).min())
    hi = float((off_hi + w_hi.max(axis=1)).max())
    return lo, max(hi, lo + 1e-9)


def worker_cdfs(st: _Stack, u: np.ndarray, pi: float, slowdown: float) -> np.ndarray:
    """Arrival CDFs of every selected worker, shape ``(n, m_max, G)``.

    ``u`` has shape ``(n, G)``: per edge, times measured from when that edge got the model.
    Padding workers get CDF 1 (they never count as missing).
    """
    n, m_max, a_max = st.values.shape
    out = np.zeros((n, m_max, u.shape[1]))
    shift = st.shift[:, :, None]
    with np.errstate(divide="ignore"):
        inv_scale = np.where(st.scale > 0, 1.0 / st.scale, 1e300)[:, :, None]
    for a in range(a_max):
        x = u[:, None, :] - st.values[:, :, a, None]
        f = compute_cdf(x, shift, inv_scale)
        if pi > 0:
            f = (1 - pi) * f + pi * compute_cdf(x / slowdown, shift, inv_scale)
        out += st.weights[:, :, a, None] * f
    out[~st.valid] = 1.0
    return out


def _hierarchical(c: Compiled, st: _Stack, grid_points: int, pi: float, slowdown: float):
    off_v, off_w = pad_atoms(
        [e.offset for e in c.edges], max(e.offset.values.size for e in c.edges)
    )
    args = (st.shift[None], st.scale[None], st.values, st.valid[None], off_v[None])
    edge_on = np.ones((1, len(c.edges)), dtype=bool)
    lo, hi = batch_support(*args, edge_on, pi, slowdown)
    t = np.linspace(lo[0], hi[0], grid_points)
    misses = np.array([len(c.edges) - c.needed])
    cdf = hierarchical_cdf(
        t[None], st.shift[None], st.scale[None], st.values, st.weights, st.valid[None], off_v[None],
        off_w[None], edge_on, c.plan.s_w, misses, pi, slowdown,
    )  # fmt: skip
    return t, cdf[0]


def exact_distribution(c: Compiled, grid_points: int = DEFAULT_GRID) -> ExactResult:
    """The iteration-time distribution of a compiled plan on a grid of ``grid_points``."""
    check_exact_applies(c)
    pi = slow_probability(c.straggler)
    slowdown = c.straggler.slowdown if pi > 0 else 1.0
    st = _stack(c)
    if c.is_flat:
        t_lo, t_hi = _support(c, st, slowdown, pi)
        t = np.linspace(t_lo, t_hi, grid_points)
        u0 = np.array([e.offset.values.min() for e in c.edges])
        arrived = worker_cdfs(st, t[None, :] - u0[:, None], pi, slowdown)
        flat = arrived[st.valid][None]  # (1, M, G): every message counts on its own
        cdf = np.maximum.accumulate(prob_at_most_misses(flat, c.plan.s)[0])
    else:
        t, cdf = _hierarchical(c, st, grid_points, pi, slowdown)
    mean = float(t[0]) + float(np.trapezoid(1.0 - cdf, t))
    return ExactResult(t, cdf, mean)
