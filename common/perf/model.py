"""The runtime model of one iteration (spec §5), compiled from a plan for fast evaluation.

One iteration of a hierarchical plan (all times in seconds from the master's broadcast):

- the model (``gradient_bytes``) reaches selected edge p after ``X_p`` (its uplink);
- worker q of that edge receives it after ``Y_pq`` more (its own link), computes for
  ``C_pq`` (shifted-exponential at its load, or markov / trace), and its one vector reaches
  the edge after ``Z_pq`` (same link): arrival ``A_pq = X_p + Y_pq + C_pq + Z_pq``;
- edge p finishes at the ``(m_p - s_w)``-th smallest arrival, plus combining
  ``combine_s_per_byte * gradient_bytes * (m_p - s_w)``, plus its upload ``U_p``;
- the master finishes at the ``(n - s_e)``-th smallest edge finish time.

Flat plans: edges only relay. Worker messages reach the edge as above, then queue FIFO on the
edge's uplink (each message occupies it for ``gradient_bytes / bandwidth``; latency, jitter and
loss are per message and do not occupy it). The master finishes at the ``(M - s)``-th message.

Links: ``max(0, latency + U(-jitter, jitter)) + bytes / bandwidth + Bernoulli(loss) * retransmit``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from common.perf.plan import Plan, plan_loads
from common.perf.system import Link, StragglerModel, SystemModel

JITTER_POINTS = 8  # quadrature points of one link's uniform jitter in the exact method
MAX_ATOMS = 64  # a sum of random link delays is compressed to at most this many atoms


@dataclass(frozen=True)
class Atoms:
    """A discrete distribution: ``values`` (seconds) with probabilities ``weights``."""

    values: np.ndarray
    weights: np.ndarray

    @property
    def mean(self) -> float:
        return float(np.dot(self.values, self.weights))


def link_atoms(link: Link, n_bytes: float) -> Atoms:
    """The transfer time of ``n_bytes`` over ``link`` as atoms (exact for deterministic links;
    jitter by midpoint quadrature, loss as a two-point mixture)."""
    base = n_bytes / link.bandwidth_bytes_per_s
    if link.jitter_s > 0:
        k = JITTER_POINTS
        u = link.latency_s + link.jitter_s * ((2 * np.arange(k) + 1) / k - 1)
        values = np.maximum(u, 0.0) + base
        weights = np.full(k, 1.0 / k)
    else:
        values = np.array([link.latency_s + base])
        weights = np.array([1.0])
    if link.loss > 0:
        values = np.concatenate([values, values + link.retransmit_s])
        weights = np.concatenate([weights * (1 - link.loss), weights * link.loss])
    return Atoms(values, weights)


def add_atoms(a: Atoms, b: Atoms) -> Atoms:
    """Distribution of the sum of two independent atom sets, compressed to ``MAX_ATOMS``."""
    values = np.add.outer(a.values, b.values).ravel()
    weights = np.multiply.outer(a.weights, b.weights).ravel()
    return compress(Atoms(values, weights))


def compress(a: Atoms, max_atoms: int = MAX_ATOMS) -> Atoms:
    """Merge atoms into at most ``max_atoms`` equal-probability bins, keeping the mean exact."""
    order = np.argsort(a.values, kind="stable")
    values, weights = a.values[order], a.weights[order]
    if values.size <= max_atoms:
        return Atoms(values, weights)
    bins = np.minimum((np.cumsum(weights) - weights / 2) * max_atoms, max_atoms - 1).astype(int)
    w = np.bincount(bins, weights=weights, minlength=max_atoms)
    v = np.bincount(bins, weights=weights * values, minlength=max_atoms)
    keep = w > 0
    return Atoms(v[keep] / w[keep], w[keep])


def slow_probability(straggler: StragglerModel) -> float:
    """Stationary probability that a worker is in the slow state of the markov model."""
    if straggler.kind != "markov":
        return 0.0
    total = straggler.p_slow + straggler.p_recover
    return 0.0 if total == 0 else straggler.p_slow / total


@dataclass(frozen=True)
class CompiledEdge:
    """One selected edge: its offset (download + combine + upload) and its workers."""

    edge: int  # topology index
    offset: Atoms  # X_p + combine + U_p (hierarchical) or X_p alone (flat)
    shift: np.ndarray  # (m_p,) deterministic compute seconds at the worker's load
    scale: np.ndarray  # (m_p,) mean exponential part at the worker's load (0 = none)
    link: tuple[Atoms, ...]  # per worker, Y + Z
    load: np.ndarray  # (m_p,) load fractions
    global_index: np.ndarray  # (m_p,) edge-major worker index in the full topology
    needed: int  # responders the edge waits for (hierarchical)
    relay_s: float  # flat: uplink occupancy per relayed message
    relay: Atoms  # flat: per-message latency/jitter/loss on the uplink
    worker_links: tuple[Link, ...]  # for Monte Carlo: the continuous link models
    uplink: Link
    combine_s: float  # combine time of this edge per iteration (hierarchical)
    # bytes of one worker vector to this edge: gradient_bytes, or WIDE_UPLOAD times that for
    # a wide worker tier (hi float64 + lo float32, docs/numerics.md); 0: gradient_bytes
    upload_bytes: float = 0.0


WIDE_UPLOAD = 1.5  # a wide tier's worker vector: 8 + 4 bytes per parameter instead of 8


def upload_bytes(plan: Plan, p: int, gradient_bytes: float) -> float:
    """Bytes of one worker vector to the plan's p-th edge (its code spec's ``wide`` field)."""
    wide = plan.code_spec.get("wide") if isinstance(plan.code_spec, dict) else None
    if isinstance(wide, list) and p < len(wide) and wide[p] is True:
        return WIDE_UPLOAD * gradient_bytes
    return gradient_bytes


@dataclass(frozen=True)
class Compiled:
    plan: Plan
    edges: tuple[CompiledEdge, ...]
    needed: int  # edges (hierarchical) or messages (flat) the master waits for
    straggler: StragglerModel
    gradient_bytes: int

    @property
    def is_flat(self) -> bool:
        return self.plan.is_flat


def link_key(link: Link) -> tuple[float, ...]:
    """A cheap hashable identity of a link's parameters (for caching its delay atoms)."""
    return (link.latency_s, link.jitter_s, link.bandwidth_bytes_per_s, link.loss, link.retransmit_s)


def _round_trip(
    link: Link, n_bytes: float, cache: dict[tuple[float, ...], Atoms], up_bytes: float | None = None
) -> Atoms:
    """Model download plus gradient upload (``up_bytes``, default ``n_bytes``) over one
    worker link (cached per link and upload size)."""
    up = n_bytes if up_bytes is None else up_bytes
    key = link_key(link) if up == n_bytes else (*link_key(link), up)
    hit = cache.get(key)
    if hit is None:
        one = link_atoms(link, n_bytes)
        hit = cache[key] = add_atoms(one, one if up == n_bytes else link_atoms(link, up))
    return hit


def compile_plan(system: SystemModel, plan: Plan) -> Compiled:
    """Resolve a plan against the system's profiles into arrays (no randomness yet)."""
    b = float(system.gradient_bytes)
    loads = plan_loads(plan)
    first_global = np.concatenate([[0], np.cumsum(system.workers_per_edge)])
    compiled = []
    cache: dict[tuple[float, ...], Atoms] = {}
    for p, (e, ws) in enumerate(zip(plan.edges, plan.workers, strict=True)):
        if not 0 <= e < system.n_edges:
            raise ValueError(f"plan.edges[{p}]={e}: no such edge (n_edges={system.n_edges})")
        profiles = []
        for q, j in enumerate(ws):
            if not 0 <= j < len(system.workers[e]):
                raise ValueError(f"plan.workers[{p}][{q}]={j}: edge {e} has no such worker")
            profiles.append(system.workers[e][j])
        uplink = system.edges[e].uplink
        load = loads[p]
        shift = np.array([w.shift_s for w in profiles]) * load
        rate = np.array([w.rate for w in profiles], dtype=float)
        scale = np.where(np.isinf(rate), 0.0, load / np.where(rate > 0, rate, 1.0))
        if np.any(rate <= 0):
            raise ValueError(f"edge {e}: worker rates must be > 0 (use inf for no straggling)")
        up_b = upload_bytes(plan, p, b)
        links = tuple(_round_trip(w.link, b, cache, up_b) for w in profiles)
        down = link_atoms(uplink, b)
        if plan.is_flat:
            offset = down
            relay_s = b / uplink.bandwidth_bytes_per_s
            relay = link_atoms(Link(uplink.latency_s, uplink.jitter_s, np.inf, uplink.loss,
                                    uplink.retransmit_s), 0.0)  # fmt: skip
            needed = len(ws)
        else:
            needed = plan.workers_needed(p)
            combine = system.edges[e].combine_s_per_byte * b * needed
            up = link_atoms(uplink, b)
            offset = add_atoms(down, Atoms(up.values + combine, up.weights))
            relay_s, relay = 0.0, Atoms(np.zeros(1), np.ones(1))
        combine_s = 0.0 if plan.is_flat else system.edges[e].combine_s_per_byte * b * needed
        compiled.append(
            CompiledEdge(
                edge=e,
                offset=offset,
                shift=shift,
                scale=scale,
                link=links,
                load=load,
                global_index=first_global[e] + np.asarray(ws, dtype=int),
                needed=needed,
                relay_s=relay_s,
                relay=relay,
                worker_links=tuple(w.link for w in profiles),
                uplink=uplink,
                combine_s=combine_s,
                upload_bytes=up_b,
            )
        )
    needed = plan.n_workers - plan.s if plan.is_flat else plan.edges_needed
    return Compiled(plan, tuple(compiled), needed, system.straggler, system.gradient_bytes)
