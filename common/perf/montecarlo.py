"""Vectorised Monte Carlo of the runtime model (see ``common.perf.model``).

All iterations are drawn at once: arrays have shape ``(iterations, workers of one edge)``;
Python loops run only over edges (and, for the flat relay queue, over the messages of one
edge). The ``markov`` straggler chains start in their stationary distribution, so the mean
over iterations estimates the same stationary E[T] the exact method computes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from common.perf.model import Compiled, slow_probability
from common.perf.system import Link, StragglerModel


@dataclass(frozen=True)
class MCResult:
    """Per-iteration times (seconds) of one plan, and per-tier detail."""

    times: np.ndarray  # (N,) iteration times
    edge_finish: np.ndarray | None  # (N, n) edge finish times (hierarchical plans)

    @property
    def mean_s(self) -> float:
        return float(self.times.mean())

    @property
    def stderr_s(self) -> float:
        n = self.times.size
        return float(self.times.std(ddof=1) / np.sqrt(n)) if n > 1 else float("inf")

    def quantile(self, q: float) -> float:
        return float(np.quantile(self.times, q))


def sample_link(link: Link, n_bytes: float, shape: tuple[int, ...], rng: np.random.Generator):
    """Transfer times of ``n_bytes`` over ``link``; a float when the link is deterministic."""
    base = n_bytes / link.bandwidth_bytes_per_s
    if link.is_deterministic:
        return link.latency_s + base
    out = np.full(shape, link.latency_s)
    if link.jitter_s > 0:
        out += rng.uniform(-link.jitter_s, link.jitter_s, size=shape)
        np.maximum(out, 0.0, out=out)
    out += base
    if link.loss > 0:
        out += (rng.random(shape) < link.loss) * link.retransmit_s
    return out


def markov_states(
    iterations: int, workers: int, straggler: StragglerModel, rng: np.random.Generator
) -> np.ndarray:
    """Slow-state indicators, shape ``(iterations, workers)``, each chain stationary at t=0.

    Built from alternating geometric sojourns (vectorised per worker) rather than stepping
    the chain iteration by iteration.
    """
    pi = slow_probability(straggler)
    states = np.zeros((iterations, workers), dtype=bool)
    p_leave = {True: straggler.p_recover, False: straggler.p_slow}
    for w in range(workers):
        slow = bool(rng.random() < pi)
        t = 0
        while t < iterations:
            # k sojourns in the current state interleaved with k in the other one
            mean_cycle = sum(1 / p if p > 0 else iterations for p in p_leave.values())
            k = int(2 * (iterations - t) / mean_cycle) + 4
            runs = np.empty(2 * k, dtype=np.int64)
            for offset, state in ((0, slow), (1, not slow)):
                p = p_leave[state]
                runs[offset::2] = rng.geometric(p, size=k) if p > 0 else iterations
            ends = np.minimum(t + np.cumsum(runs), iterations)
            starts = np.concatenate([[t], ends[:-1]])
            for j in range(0 if slow else 1, ends.size, 2):
                states[starts[j] : ends[j], w] = True
            t = int(ends[-1])  # all 2k sojourns used: the state is back to ``slow``
    return states


def _compute_times(
    c: Compiled, p: int, n: int, rng: np.random.Generator, slow: np.ndarray | None, t0: int
) -> np.ndarray:
    e = c.edges[p]
    if c.straggler.kind == "trace":
        trace = c.straggler.trace
        if trace is None:
            raise ValueError("straggler.trace: required when straggler.kind=trace")
        rows = (t0 + np.arange(n)) % trace.shape[0]
        return trace[rows][:, e.global_index] * (e.load / c.straggler.trace_load)
    comp = np.broadcast_to(e.shift, (n, e.shift.size)).copy()
    if np.any(e.scale > 0):
        comp += rng.exponential(1.0, size=comp.shape) * e.scale
    if slow is not None:
        comp = np.where(slow, comp * c.straggler.slowdown, comp)
    return comp


def simulate_compiled(
    c: Compiled, iterations: int, rng: np.random.Generator, start_iteration: int = 0
) -> MCResult:
    """Draw ``iterations`` independent (or markov/trace-driven) iterations of the plan."""
    if iterations < 1:
        raise ValueError(f"iterations={iterations}: must be >= 1")
    n = iterations
    b = float(c.gradient_bytes)
    slow_all = None
    if c.straggler.kind == "markov":
        slow_all = markov_states(n, c.plan.n_workers, c.straggler, rng)
    finish = []
    col = 0
    for p, e in enumerate(c.edges):
        m = e.shift.size
        slow = None if slow_all is None else slow_all[:, col : col + m]
        col += m
        x = sample_link(e.uplink, b, (n,), rng)
        arr = _compute_times(c, p, n, rng, slow, start_iteration)
        for q, link in enumerate(e.worker_links):
            up = e.upload_bytes or b  # a wide worker tier sends hi + lo (model.upload_bytes)
            arr[:, q] += sample_link(link, b, (n,), rng) + sample_link(link, up, (n,), rng)
        arr += np.reshape(x, (-1, 1)) if np.ndim(x) else x
        if c.is_flat:
            arr.sort(axis=1)
            dep = np.empty_like(arr)
            prev = np.zeros(n)
            for k in range(m):  # FIFO queue on the shared uplink
                prev = np.maximum(arr[:, k], prev) + e.relay_s
                dep[:, k] = prev
            relay = Link(e.uplink.latency_s, e.uplink.jitter_s, np.inf, e.uplink.loss,
                         e.uplink.retransmit_s)  # fmt: skip
            finish.append(dep + sample_link(relay, 0.0, (n, m), rng))
        else:
            kth = e.needed - 1
            os_ = np.partition(arr, kth, axis=1)[:, kth]
            finish.append(os_ + e.combine_s + sample_link(e.uplink, b, (n,), rng))
    if c.is_flat:
        msgs = np.concatenate(finish, axis=1)
        kth = c.needed - 1
        return MCResult(np.partition(msgs, kth, axis=1)[:, kth], None)
    edges = np.stack(finish, axis=1)
    kth = c.needed - 1
    return MCResult(np.partition(edges, kth, axis=1)[:, kth], edges)
