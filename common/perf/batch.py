"""The exact iteration-time CDF of hierarchical plans, batched over candidate selections.

Arrays carry a leading candidate axis C, then edges n, then workers m (padded). Padding
workers never miss (CDF 1); edges that are not selected always miss (CDF 0) and the master's
allowed misses grow accordingly, so candidates of different sizes share one computation.
:class:`SelectionEvaluator` uses this to score many node selections of one system in a single
vectorised pass (the JNCSS search); ``common.perf.exact`` uses it with C = 1.
"""

from __future__ import annotations

import numpy as np

from common.perf.model import Atoms, add_atoms, compress, link_atoms, link_key, slow_probability
from common.perf.system import SystemModel

TAIL_SCALES = 40.0  # grid reaches shift + 40 exponential means: tail mass e^-40
SMALL_UNIQUE = 48  # up to this many workers, arrival CDFs are computed without sharing
EDGE_ATOMS = 16  # a random edge offset is compressed to this many atoms in the search


def compute_cdf(u: np.ndarray, shift: np.ndarray, inv_scale: np.ndarray) -> np.ndarray:
    """Shifted-exponential CDF ``1 - exp(-(u - shift) / scale)`` for ``u >= shift``.

    ``inv_scale`` = 1/scale, or a huge number for a deterministic time (scale 0), which makes
    the CDF a step at ``shift``. Arguments broadcast; seconds and 1/seconds.
    """
    x = np.subtract(u, shift)
    with np.errstate(over="ignore"):
        return _finish_cdf(x, inv_scale)


def _finish_cdf(x: np.ndarray, inv_scale: np.ndarray) -> np.ndarray:
    np.maximum(x, 0.0, out=x)
    x *= -inv_scale
    np.expm1(x, out=x)
    return np.negative(x, out=x)


def prob_at_most_misses(arrived: np.ndarray, s: int | np.ndarray) -> np.ndarray:
    """P[at most ``s`` of the independent events have not happened].

    ``arrived`` has shape ``(B, m, G)``: probability that event j of batch b happened by
    grid point g; ``s`` an int or one per batch row ``(B,)``. Returns ``(B, G)``.
    Poisson-binomial DP over events with the miss count capped at ``max(s) + 1``, in place.
    """
    b, m, g = arrived.shape
    s_arr = np.broadcast_to(np.asarray(s, dtype=int), (b,))
    cap = int(min(s_arr.max(), m))
    q = np.zeros((cap + 1, b, g), dtype=arrived.dtype)
    q[0] = 1.0
    missed = 1.0 - arrived
    tmp = np.empty((b, g), dtype=arrived.dtype)
    for j in range(m):
        p, u = arrived[:, j], missed[:, j]
        for c in range(min(j + 1, cap), 0, -1):  # states above j+1 are still zero
            np.multiply(q[c - 1], u, out=tmp)
            q[c] *= p
            q[c] += tmp
        q[0] *= p
    cum = np.cumsum(q, axis=0)
    out = cum[np.minimum(s_arr, cap), np.arange(b)]
    out[s_arr >= m] = 1.0
    return np.clip(out, 0.0, 1.0)


def delay_cdf(f: np.ndarray, d: np.ndarray, h: np.ndarray) -> np.ndarray:
    """CDF of ``X + d`` on uniform grids of step ``h`` (R,) from X's CDF ``f`` (R, G);
    ``d >= 0`` per row (R,), seconds. Linear interpolation between grid points."""
    g = f.shape[1]
    k = d / h
    k0 = np.floor(k).astype(int)
    frac = (k - k0)[:, None]
    idx = np.arange(g)[None, :] - k0[:, None]

    def at(i: np.ndarray) -> np.ndarray:
        return np.where(i >= 0, np.take_along_axis(f, np.clip(i, 0, g - 1), axis=1), 0.0)

    return (1.0 - frac) * at(idx) + frac * at(idx - 1)


def hierarchical_cdf(
    t: np.ndarray,
    shift: np.ndarray,
    scale: np.ndarray,
    link_v: np.ndarray,
    link_w: np.ndarray,
    valid: np.ndarray,
    off_v: np.ndarray,
    off_w: np.ndarray,
    edge_on: np.ndarray,
    s_w: int,
    edge_misses: np.ndarray,
    pi: float,
    slowdown: float,
    dtype: type = np.float64,
) -> np.ndarray:
    """P[T <= t] for C candidates, shape ``(C, G)``.

    - ``t`` (C, G): one uniform time grid per candidate (s);
    - ``shift``, ``scale``, ``valid`` (C, n, m): per worker the deterministic compute time and
      the mean exponential part at its load (s), and whether it takes part;
    - ``link_v``, ``link_w`` (n, m, A): round-trip link delay atoms (s) and probabilities;
    - ``off_v``, ``off_w`` (C, n, Ae): the edge's own delay atoms (download + combine +
      upload, ascending) and probabilities;
    - ``edge_on`` (C, n); ``edge_misses`` (C,): edges the master may miss (s_e + unselected).

    Only the rows of selected edges are computed.
    """
    c, n, m = shift.shape
    on = edge_on.ravel()
    edge_of_row = np.tile(np.arange(n), c)[on]
    sh = shift.reshape(c * n, m)[on][..., None].astype(dtype)
    sc = scale.reshape(c * n, m)[on]
    inv_scale: np.ndarray = np.where(sc > 0, 1.0 / np.where(sc > 0, sc, 1.0), 1e30)
    inv_scale = inv_scale[..., None].astype(dtype)
    ov = off_v.reshape(c * n, -1)[on]
    ow = off_w.reshape(c * n, -1)[on]
    u0 = ov[:, 0]
    cand_of_row = np.repeat(np.arange(c), n)[on]
    g = t.shape[1]
    arrived = _unique_arrivals(
        t, cand_of_row, u0, sh[..., 0], inv_scale[..., 0], link_v, link_w, edge_of_row,
        valid.reshape(c * n, m)[on], pi, slowdown, dtype,
    )  # fmt: skip
    os_cdf = prob_at_most_misses(arrived, s_w)
    if ov.shape[-1] > 1:
        h = (t[:, 1] - t[:, 0])[cand_of_row]
        rows = np.zeros_like(os_cdf)
        for a in range(ov.shape[1]):
            rows += ow[:, a, None] * delay_cdf(os_cdf, ov[:, a] - u0, h)
        os_cdf = rows
    edge_cdf = np.zeros((c * n, g))
    edge_cdf[on] = os_cdf
    cdf = prob_at_most_misses(edge_cdf.reshape(c, n, g), edge_misses)
    return np.maximum.accumulate(cdf, axis=1)


def _link_ids(link_v: np.ndarray, link_w: np.ndarray) -> np.ndarray:
    """(n, m) integer identity of every worker's link atoms (equal atoms, equal id)."""
    hit = _LINK_IDS.get(id(link_v))
    if hit is not None and hit[0] is link_v and hit[1] is link_w:
        return hit[2]
    n, m, a = link_v.shape
    flat = np.concatenate([link_v.reshape(n * m, a), link_w.reshape(n * m, a)], axis=1)
    ids = unique_rows(flat)[1].reshape(n, m)
    if len(_LINK_IDS) > 8:
        _LINK_IDS.clear()
    _LINK_IDS[id(link_v)] = (link_v, link_w, ids)  # the evaluator's arrays, asked again and again
    return ids


_LINK_IDS: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}


def unique_rows(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct rows of a 2-D array: (index of each distinct row's first occurrence, index
    of every row's distinct row). One lexicographic sort (faster than ``np.unique(axis=0)``)."""
    v = x.shape[0]
    if v == 0:
        return np.zeros(0, dtype=int), np.zeros(0, dtype=int)
    order = np.lexsort(x.T[::-1])
    xs = x[order]
    new = np.ones(v, dtype=bool)
    new[1:] = (xs[1:] != xs[:-1]).any(axis=1)
    inverse = np.empty(v, dtype=int)
    inverse[order] = np.cumsum(new) - 1
    return order[new], inverse


def _unique_arrivals(
    t: np.ndarray,
    cand_of_row: np.ndarray,
    u0: np.ndarray,
    sh: np.ndarray,
    inv_scale: np.ndarray,
    link_v: np.ndarray,
    link_w: np.ndarray,
    edge_of_row: np.ndarray,
    valid: np.ndarray,
    pi: float,
    slowdown: float,
    dtype: type,
) -> np.ndarray:
    """Arrival CDFs ``(R, m, G)`` of the workers of R edge rows (padding: 1).

    Workers of one candidate that share their edge's start ``u0``, their compute parameters
    and their link atoms have the same CDF: each distinct one is computed once (a cluster of
    a few device profiles has a few distinct workers, not thousands), then gathered.
    """
    r, m = sh.shape
    g = t.shape[1]
    if int(valid.sum()) <= SMALL_UNIQUE:  # too few workers for sharing to pay
        ids = np.arange(r * m).reshape(r, m)
    else:
        ids = _link_ids(link_v, link_w)[edge_of_row]  # (R, m)
    keys = np.stack(
        [
            np.broadcast_to(cand_of_row[:, None], (r, m)).astype(float),
            np.broadcast_to(u0[:, None], (r, m)),
            sh.astype(float),
            inv_scale.astype(float),
            ids.astype(float),
        ],
        axis=-1,
    )[valid]  # (V, 5)
    out: np.ndarray = np.ones((r, m, g), dtype=dtype)
    if keys.shape[0] == 0:
        return out
    if keys.shape[0] <= SMALL_UNIQUE:
        first = inverse = np.arange(keys.shape[0])
    else:
        first, inverse = unique_rows(keys)
    uniq = keys[first]
    rows, cols = np.nonzero(valid)
    ur, uc = rows[first], cols[first]
    cand = uniq[:, 0].astype(int)
    base = (t[cand] - uniq[:, 1:2]).astype(dtype)  # (U, G)
    shu = uniq[:, 2:3].astype(dtype)
    invu = uniq[:, 3:4].astype(dtype)
    lv = link_v[edge_of_row[ur], uc].astype(dtype)  # (U, A)
    lw = link_w[edge_of_row[ur], uc].astype(dtype)
    arrived = np.zeros((uniq.shape[0], g), dtype=dtype)
    for a in range(link_v.shape[-1]):
        x = base - lv[:, a, None]
        f = compute_cdf(x, shu, invu)
        if pi > 0:
            f = (1 - pi) * f + pi * compute_cdf(x / dtype(slowdown), shu, invu)
        arrived += lw[:, a, None] * f
    out[valid] = arrived[inverse.ravel()]
    return out


def support(
    shift: np.ndarray,
    scale: np.ndarray,
    link_v: np.ndarray,
    valid: np.ndarray,
    off_v: np.ndarray,
    edge_on: np.ndarray,
    pi: float,
    slowdown: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Per candidate, an interval holding all but ~e^-40 of its iteration-time mass (s):
    two arrays of shape (C,). Shapes as in :func:`hierarchical_cdf`."""
    slow_lo = slowdown if pi >= 1.0 else 1.0
    slow_hi = slowdown if pi > 0.0 else 1.0
    w_lo = np.where(valid, link_v.min(axis=-1)[None] + shift * slow_lo, np.inf)
    w_hi = np.where(
        valid, link_v.max(axis=-1)[None] + (shift + TAIL_SCALES * scale) * slow_hi, -np.inf
    )
    lo = np.where(edge_on, off_v.min(axis=-1) + w_lo.min(axis=-1), np.inf).min(axis=1)
    hi = np.where(edge_on, off_v.max(axis=-1) + w_hi.max(axis=-1), -np.inf).max(axis=1)
    return lo, np.maximum(hi, lo + 1e-9)


def pad_atoms(atoms: list[Atoms], size: int) -> tuple[np.ndarray, np.ndarray]:
    """Stack atom sets into ``(len, size)`` arrays, padding with zero-probability atoms."""
    v = np.zeros((len(atoms), size))
    w = np.zeros((len(atoms), size))
    for i, a in enumerate(atoms):
        v[i, : a.values.size] = a.values
        v[i, a.values.size :] = a.values[-1]
        w[i, : a.values.size] = a.weights
    return v, w


class SelectionEvaluator:
    """Exact E[T] of many node selections of one system at once.

    A selection is ``counts[e]`` = how many of edge e's fastest workers (in the order
    ``rank[e]``) take part, 0 = the edge is out. Loads are equal, ``(s_e+1)(s_w+1)/M``, or
    per worker from ``loads_fn(counts, s_e, s_w) -> (n, m) array`` (hetero).
    """

    def __init__(
        self, system: SystemModel, rank: list[list[int]], grid: int, dtype: type = np.float32
    ):
        if system.straggler.kind == "trace":
            raise ValueError("SelectionEvaluator: trace-driven times are not independent")
        n, m = system.n_edges, max(system.workers_per_edge)
        b = float(system.gradient_bytes)
        self.grid, self.n, self.m, self.dtype = grid, n, m, dtype
        self.sizes = np.array(system.workers_per_edge)
        self.shift_s = np.zeros((n, m))
        self.inv_rate = np.zeros((n, m))
        links: list[Atoms] = []
        cache: dict[tuple[float, ...], Atoms] = {}
        for e, order in enumerate(rank):
            for q, j in enumerate(order):
                w = system.workers[e][j]
                self.shift_s[e, q] = w.shift_s
                self.inv_rate[e, q] = 0.0 if np.isinf(w.rate) else 1.0 / w.rate
                if link_key(w.link) not in cache:
                    one = link_atoms(w.link, b)
                    cache[link_key(w.link)] = add_atoms(one, one)
                links.append(cache[link_key(w.link)])
            links.extend([links[-1]] * (m - len(order)))
        a_max = max(a.values.size for a in links)
        lv, lw = pad_atoms(links, a_max)
        self.link_v, self.link_w = lv.reshape(n, m, a_max), lw.reshape(n, m, a_max)
        offsets = []
        for edge in system.edges:
            one = link_atoms(edge.uplink, b)
            offsets.append(compress(add_atoms(one, one), EDGE_ATOMS))
        a_e = max(a.values.size for a in offsets)
        self.off_v, self.off_w = pad_atoms(offsets, a_e)
        self.combine = np.array([e.combine_s_per_byte * b for e in system.edges])
        self.pi = slow_probability(system.straggler)
        self.slowdown = system.straggler.slowdown if self.pi > 0 else 1.0

    def means(
        self, counts: list[tuple[int, ...]], s_e: int, s_w: int, loads: np.ndarray | None = None
    ) -> np.ndarray:
        """E[T] (s) of each selection, shape ``(C,)``; ``loads`` (C, n, m) or equal loads."""
        cnt = np.array(counts)  # (C, n)
        total = cnt.sum(axis=1)
        valid = np.arange(self.m)[None, None, :] < cnt[:, :, None]
        if loads is None:
            loads = np.broadcast_to(((s_e + 1) * (s_w + 1) / total)[:, None, None], valid.shape)
        shift = self.shift_s[None] * loads
        scale = self.inv_rate[None] * loads
        edge_on = cnt > 0
        needed = np.maximum(cnt - s_w, 0)
        off_v = self.off_v[None] + (self.combine[None] * needed)[:, :, None]
        off_w = np.broadcast_to(self.off_w[None], off_v.shape)
        lo, hi = support(shift, scale, self.link_v, valid, off_v, edge_on, self.pi, self.slowdown)
        t = np.linspace(lo, hi, self.grid, axis=1)  # (C, G)
        misses = s_e + (~edge_on).sum(axis=1)
        cdf = hierarchical_cdf(
            t, shift, scale, self.link_v, self.link_w, valid, off_v, off_w, edge_on,
            s_w, misses, self.pi, self.slowdown, self.dtype,
        )  # fmt: skip
        return np.asarray(lo + np.trapezoid(1.0 - cdf, t, axis=1))
