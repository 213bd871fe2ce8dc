"""JNCSS search engine: per-edge candidate frontiers scored through the master's order statistic.

For one tolerance pair (s_e, s_w) and one load ``L`` (equal loads: ``(s_e+1)(s_w+1)/M``,
M = selected workers), the iteration time of a selection depends on each selected edge only
through that edge's finish-time CDF ``F_e`` (its ``(k - s_w)``-th arrival among its chosen
workers, plus combine and uplink). Edges interact only through the master, which finishes
when at most ``s_e`` selected edges are still missing (an edge that is out counts as "never
missing" with the allowance unchanged — the same as missing with one more allowed miss).

So, for a pair and a load, the engine tabulates every per-edge *option* (the edge out, or one
subset of its workers) once, on one common time grid (:class:`EdgeTable`), and scores any
selection from those rows with one Poisson-binomial pass over edges. Options of one edge of the
same size whose CDF is dominated everywhere by another's are pruned: the master's CDF is
monotone in every edge's CDF, so a dominated option never beats its dominator at that load.

- small instances (the product of per-edge frontiers is small): every combination, for every
  total M at its own exact load (:func:`enumerate_pair`);
- large ones: coordinate descent whose step scores every option of every edge at once from
  leave-one-edge-out master CDFs, at loads interpolated between tabulated ones
  (:func:`descend_pair`).

Options are all subsets for edges of at most ``SUBSET_MAX`` workers, else the fastest-first
prefixes by mean arrival. The caller re-scores the winners exactly (``common.perf.jncss``).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from common.coding import is_feasible
from common.perf.batch import compute_cdf, delay_cdf, prob_at_most_misses, unique_rows
from common.perf.model import Atoms, add_atoms, compress, link_atoms, slow_probability
from common.perf.system import SystemModel

SUBSET_MAX = 6  # edges up to this many workers offer every subset, larger ones prefixes
SEARCH_ATOMS = 8  # worker round-trip link delay atoms in the search (mean-preserving)
SEARCH_EDGE_ATOMS = 6  # edge download + upload delay atoms in the search (mean-preserving)
ENUM_MAX = 60_000  # combinations enumerated per pair before switching to descent
LADDER_RANGE = 4  # the descent considers totals M down to M_all / 4 ...
LADDER_STEPS = 2  # ... with tables at 2 loads per octave
SPAN = 4.0  # the grid reaches SPAN x the reference mean's excess over its start
LATTICE_SPAN = 1.5  # ... times this on a lattice shared by several s_e
LATTICE_STEPS = 1  # lattice tables per octave of load

Option = tuple[int, ...]  # topology worker indices of one edge, ascending; () = edge out


@dataclass
class SystemArrays:
    """The system's per-worker and per-edge parameters as padded arrays (topology order)."""

    n: int
    m: int
    sizes: list[int]
    shift_s: np.ndarray  # (n, m) seconds per unit load
    inv_rate: np.ndarray  # (n, m) mean exponential seconds per unit load
    link_v: np.ndarray  # (n, m, A) round-trip link delay atoms (s)
    link_w: np.ndarray  # (n, m, A)
    off_v: np.ndarray  # (n, Ae) edge download + upload atoms (s)
    off_w: np.ndarray  # (n, Ae)
    combine: np.ndarray  # (n,) combine seconds per received vector
    pi: float
    slowdown: float
    _kinds: tuple[np.ndarray, np.ndarray] | None = None

    @classmethod
    def of(cls, system: SystemModel) -> SystemArrays:
        n, m = system.n_edges, max(system.workers_per_edge)
        b = float(system.gradient_bytes)
        shift = np.zeros((n, m))
        inv = np.zeros((n, m))
        atoms: list[list[Atoms]] = []
        cache: dict[object, Atoms] = {}
        for e, row in enumerate(system.workers):
            out = []
            for j, w in enumerate(row):
                shift[e, j] = w.shift_s
                inv[e, j] = 0.0 if np.isinf(w.rate) else 1.0 / w.rate
                if w.link not in cache:
                    one = link_atoms(w.link, b)
                    cache[w.link] = compress(add_atoms(one, one), SEARCH_ATOMS)
                out.append(cache[w.link])
            atoms.append(out + [out[-1]] * (m - len(out)))
        a = max(at.values.size for ats in atoms for at in ats)
        lv, lw = np.zeros((n, m, a)), np.zeros((n, m, a))
        for e, ats in enumerate(atoms):
            for j, at in enumerate(ats):
                lv[e, j, : at.values.size] = at.values
                lv[e, j, at.values.size :] = at.values[-1]
                lw[e, j, : at.values.size] = at.weights
        offs = []
        for edge in system.edges:
            one = link_atoms(edge.uplink, b)
            offs.append(compress(add_atoms(one, one), SEARCH_EDGE_ATOMS))
        ae = max(at.values.size for at in offs)
        ov, ow = np.zeros((n, ae)), np.zeros((n, ae))
        for e, at in enumerate(offs):
            ov[e, : at.values.size] = at.values
            ov[e, at.values.size :] = at.values[-1]
            ow[e, : at.values.size] = at.weights
        pi = slow_probability(system.straggler)
        return cls(
            n, m, list(system.workers_per_edge), shift, inv, lv, lw, ov, ow,
            np.array([e.combine_s_per_byte * b for e in system.edges]),
            pi, system.straggler.slowdown if pi > 0 else 1.0,
        )  # fmt: skip

    def start(self, load: float) -> float:
        """No worker can arrive before this (s): the grid's first point."""
        valid = np.arange(self.m)[None, :] < np.array(self.sizes)[:, None]
        first = self.link_v.min(axis=-1) + self.shift_s * load * min(1.0, self.slowdown)
        return float(max(first[valid].min(), 0.0))

    def arrivals(self, load: float, t: np.ndarray) -> np.ndarray:
        """P[worker (e, j) has delivered by t[g]] ignoring its edge's offset: (n, m, G).
        Workers with equal parameters (the same device profile and link) share one row."""
        _, inverse = self.kinds()
        return self.kind_arrivals(load, t)[inverse].reshape(self.n, self.m, t.size)

    def kind_arrivals(self, load: float, t: np.ndarray) -> np.ndarray:
        """:meth:`arrivals` of each distinct worker (:meth:`kinds`): (K, G)."""
        kinds, _ = self.kinds()
        sh = (kinds[:, 0] * load)[:, None]
        sc = kinds[:, 1] * load
        inv = np.where(sc > 0, 1.0 / np.where(sc > 0, sc, 1.0), 1e30)[:, None]
        a_n = self.link_v.shape[-1]
        lv, lw = kinds[:, 2 : 2 + a_n], kinds[:, 2 + a_n :]
        out = np.zeros((kinds.shape[0], t.size))
        for a in range(a_n):
            x = t[None, :] - lv[:, a, None]
            f = compute_cdf(x, sh, inv)
            if self.pi > 0:
                f = (1 - self.pi) * f + self.pi * compute_cdf(x / self.slowdown, sh, inv)
            out += lw[:, a, None] * f
        return out

    def kinds(self) -> tuple[np.ndarray, np.ndarray]:
        """The distinct workers (shift, 1/rate, link atoms, link weights) and each worker's
        index among them (flat, topology order)."""
        if self._kinds is None:
            a_n = self.link_v.shape[-1]
            flat = np.concatenate(
                [
                    self.shift_s.reshape(-1, 1),
                    self.inv_rate.reshape(-1, 1),
                    self.link_v.reshape(-1, a_n),
                    self.link_w.reshape(-1, a_n),
                ],
                axis=1,
            )
            first, inverse = unique_rows(flat)
            self._kinds = (flat[first], inverse)
        return self._kinds


def edge_options(
    sizes: Sequence[int], rank: Sequence[Sequence[int]], s_w: int
) -> list[list[Option]]:
    """Per edge: ``()`` (out) first, then every subset of at least s_w+1 workers (small
    edges) or the fastest-first prefixes of ``rank[e]`` of at least s_w+1 workers."""
    out: list[list[Option]] = []
    for e, m in enumerate(sizes):
        opts: list[Option] = [()]
        if m <= SUBSET_MAX:
            for k in range(s_w + 1, m + 1):
                opts.extend(itertools.combinations(range(m), k))
        else:
            opts.extend(tuple(sorted(rank[e][:k])) for k in range(s_w + 1, m + 1))
        out.append(opts)
    return out


def _nested(body: list[Option]) -> bool:
    """Options that grow by one worker each: fastest-first prefixes."""
    return all(
        len(b) == len(a) + 1 and set(a) <= set(b) for a, b in zip(body, body[1:], strict=False)
    )


class _PrefixPlan:
    """The prefix options of large edges as a forest of distinct worker multisets.

    A prefix's finish CDF depends only on the multiset of its workers' kinds (device profile
    and link) and, through its edge offset, on the edge's uplink and combine cost. Prefixes
    of many edges share those (a cluster of a few device profiles has a few hundred distinct
    prefixes among thousands), so the Poisson-binomial DP runs once per distinct multiset,
    level by level (a level adds one worker to its parent), and the edge offset is applied
    once per distinct (multiset, edge kind)."""

    def __init__(self, arrays: SystemArrays, bodies: dict[int, list[Option]], s_w: int):
        self.s_w = s_w
        self.edges = list(bodies)
        self._offset: tuple[tuple[float, int], _Offset] | None = None
        self.span: dict[int, tuple[int, int]] = {}
        if not self.edges:
            return
        kind = arrays.kinds()[1].reshape(arrays.n, arrays.m)
        weight = np.random.default_rng(20261130).integers(
            1, 2**62, size=int(kind.max()) + 1, dtype=np.uint64
        )
        seqs = []
        for e in self.edges:
            body = bodies[e]
            seq = list(body[0]) + [sum(b) - sum(a) for a, b in zip(body, body[1:], strict=False)]
            seqs.append(seq)
        length = max(len(q) for q in seqs)
        k_of = np.full((len(seqs), length), -1)
        for i, (e, q) in enumerate(zip(self.edges, seqs, strict=True)):
            k_of[i, : len(q)] = kind[e, q]
        real = k_of >= 0
        with np.errstate(over="ignore"):
            key = np.cumsum(np.where(real, weight[np.maximum(k_of, 0)], 0), axis=1)
        # per level j (prefix of j+1 workers): distinct multisets, each one's parent node
        # (level j-1) and added kind, and every edge's node
        self.levels: list[tuple[np.ndarray, np.ndarray]] = []  # (parent, kind) per node
        node = np.full((len(seqs), length), -1)
        for j in range(length):
            on = np.flatnonzero(real[:, j])
            first, inv = unique_rows(key[on, j][:, None])
            node[on, j] = inv
            rep = on[first]
            parent = node[rep, j - 1] if j else np.zeros(rep.size, dtype=int)
            self.levels.append((parent, k_of[rep, j]))
        self.offset = [0, *np.cumsum([lv[0].size for lv in self.levels]).tolist()]
        # the rows of every edge's options (sizes s_w+1 .. len), as (global node, edge kind)
        edge_kind = unique_rows(
            np.concatenate([arrays.off_v, arrays.off_w, arrays.combine[:, None]], axis=1)
        )[1]
        pairs: list[tuple[int, int, int, int]] = []
        for i, e in enumerate(self.edges):
            first_size = len(bodies[e][0])
            sizes = range(first_size, len(seqs[i]) + 1)
            lo = len(pairs)
            pairs.extend(
                (self.offset[k - 1] + int(node[i, k - 1]), int(edge_kind[e]), k, e) for k in sizes
            )
            self.span[e] = (lo, len(pairs))
        arr = np.array(pairs)
        self.fill_edge = arr[:, 3]
        self.fill_option = np.concatenate(
            [np.arange(1, hi - lo + 1) for lo, hi in self.span.values()]
        )
        first, self.inverse = unique_rows(arr[:, :2].astype(float))
        self.rows_node, self.rows_edge, self.rows_k = arr[first, 0], arr[first, 3], arr[first, 2]

    def fill(self, out: np.ndarray, arrays: SystemArrays, kind_arr: np.ndarray, h: float) -> None:
        """Write every prefix option's finish CDF (with the edge offset) into ``out[e, i]``
        (``i``: the option's index, 1..; ``out``: (n, options, G))."""
        if not self.edges:
            return
        s_w, g = self.s_w, kind_arr.shape[1]
        sums = np.empty((self.offset[-1], g))
        q = np.zeros((1, s_w + 2, g))
        q[:, 0] = 1.0
        for j, (parent, kind) in enumerate(self.levels):
            p = kind_arr[kind][:, None]  # (U, 1, G)
            prev = q[parent]
            new = prev * p
            new[:, 1:] += prev[:, :-1] * (1.0 - p)
            new[:, -1] += prev[:, -1] * (1.0 - p[:, 0])  # the cap state absorbs more misses
            q = new
            sums[self.offset[j] : self.offset[j + 1]] = q[:, : s_w + 1].sum(axis=1)
        os_cdf = np.clip(sums[self.rows_node], 0.0, 1.0)
        if self._offset is None or self._offset[0] != (h, g):
            off = _Offset(arrays, self.rows_edge, self.rows_k, s_w, h, g)
            self._offset = ((h, g), off)
        out[self.fill_edge, self.fill_option] = self._offset[1](os_cdf)[self.inverse]


def prefix_plan(arrays: SystemArrays, options: list[list[Option]], s_w: int) -> _PrefixPlan:
    """The :class:`_PrefixPlan` of the edges whose options are prefixes (more than
    ``SUBSET_MAX`` workers): build it once per options list, use it at every load."""
    bodies = {
        e: opts[1:]
        for e, opts in enumerate(options)
        if len(opts) > 1 and arrays.sizes[e] > SUBSET_MAX
    }
    return _PrefixPlan(arrays, bodies, s_w)


class _Offset:
    """The edge offset (download + combine + upload delay atoms) as a fixed linear map on
    rows of CDFs on a uniform grid of step ``h``: gather indices and weights computed once,
    applied at every load of a ladder (linear interpolation, as :func:`delay_cdf`)."""

    def __init__(
        self, arrays: SystemArrays, edge: np.ndarray, k: np.ndarray, s_w: int, h: float, g: int
    ):
        w = arrays.off_w[edge]  # (R, Ae)
        d = arrays.off_v[edge] + (arrays.combine[edge] * np.maximum(k - s_w, 0))[:, None]
        self.rows, self.g = len(edge), g
        self.slots = []  # per atom slot: (rows having it, gather indices and weights)
        for a in range(w.shape[1]):
            row = np.flatnonzero(w[:, a] > 0)
            if row.size == 0:
                continue
            x = d[row, a] / h
            k0 = np.floor(x).astype(int)
            frac = (x - k0)[:, None]
            idx = np.arange(g)[None, :] - k0[:, None]  # (L, G) source grid index
            base = (row * (g + 1))[:, None]
            i0 = np.where(idx >= 0, base + np.minimum(idx, g - 1), base + g)  # g: a zero
            i1 = np.where(idx >= 1, base + np.minimum(idx - 1, g - 1), base + g)
            wt = w[row, a][:, None]
            self.slots.append((row, i0, i1, wt * (1.0 - frac), wt * frac))

    def __call__(self, f: np.ndarray) -> np.ndarray:
        pad = np.zeros((self.rows, self.g + 1))
        pad[:, : self.g] = f
        flat = pad.ravel()
        out = np.zeros((self.rows, self.g))
        for row, i0, i1, w0, w1 in self.slots:
            x = flat[i0] * w0
            x += flat[i1] * w1
            if row.size == self.rows:
                out += x
            else:
                out[row] += x
        return out


class EdgeTable:
    """Finish-time CDFs of every option of every edge at one load, on one grid ``t`` (s)."""

    def __init__(
        self,
        arrays: SystemArrays,
        options: list[list[Option]],
        s_w: int,
        load: float,
        t: np.ndarray,
        plan: _PrefixPlan | None = None,
        out: np.ndarray | None = None,
    ):
        """``out``: an array ``(n, max options, G)`` to hold the rows (``rows[e]`` are views
        of it; padding rows past an edge's options are left as they are)."""
        self.t, self.load = t, load
        h = np.array([t[1] - t[0]])
        if plan is None:
            plan = prefix_plan(arrays, options, s_w)
        if out is None:
            out = np.empty((len(options), max(len(o) for o in options), t.size))
        out[:, 0] = 1.0  # the edge is out: never missing
        self.rows = [out[e, : len(opts)] for e, opts in enumerate(options)]
        if plan.edges:
            plan.fill(out, arrays, arrays.kind_arrivals(load, t), float(h[0]))
        arr = None
        for e, opts in enumerate(options):
            body = opts[1:]
            if e in plan.span or not body:
                continue
            if arr is None:
                arr = arrays.arrivals(load, t)  # (n, m, G)
            mask = np.zeros((len(body), arrays.m), dtype=bool)
            for i, o in enumerate(body):
                mask[i, list(o)] = True
            a = np.where(mask[:, :, None], arr[e][None], 1.0)
            os_cdf = prob_at_most_misses(a, s_w)
            k = mask.sum(axis=1)
            w = arrays.off_w[e]
            live = np.flatnonzero(w > 0)
            d = (
                arrays.off_v[e, live][None, :]
                + (arrays.combine[e] * np.maximum(k - s_w, 0))[:, None]
            )  # (O, atoms)
            rows = np.repeat(os_cdf, live.size, axis=0)
            shifted = delay_cdf(rows, d.ravel(), np.broadcast_to(h, (d.size,)))
            out[e, 1 : len(opts)] = (
                shifted.reshape(len(body), live.size, -1) * w[live][None, :, None]
            ).sum(1)

    def prune(self, options: list[list[Option]]) -> list[list[int]]:
        """Per edge, the option indices not dominated by a same-size option at this load."""
        keep = []
        for e, opts in enumerate(options):
            rows = self.rows[e]
            by_size: dict[int, list[int]] = {}
            for i, o in enumerate(opts):
                by_size.setdefault(len(o), []).append(i)
            kept = []
            for idx in by_size.values():
                if len(idx) == 1:
                    kept.extend(idx)
                    continue
                r = rows[idx]
                ge: np.ndarray = np.asarray((r[:, None, :] >= r[None, :, :] - 1e-7).all(axis=2))
                for x, i in enumerate(idx):
                    dominated = any(
                        ge[y, x] and (not ge[x, y] or y < x) for y in range(len(idx)) if y != x
                    )
                    if not dominated:
                        kept.append(i)
            keep.append(sorted(kept))
        return keep


def master_means(t: np.ndarray, edge_cdfs: np.ndarray, s_e: int) -> np.ndarray:
    """E[T] (s) of selections from their edge CDFs ``(C, n, G)`` (out edges: rows of ones):
    the master waits until at most s_e edges miss. Unresolved mass at the grid's end is
    charged as if it lasted the whole span (bad candidates must not look good)."""
    cdf = prob_at_most_misses(edge_cdfs, s_e)
    cdf = np.maximum.accumulate(cdf, axis=1)
    span = t[-1] - t[0]
    return np.asarray(t[0] + np.trapezoid(1.0 - cdf, t, axis=1) + (1.0 - cdf[:, -1]) * span)


def feasible(sizes: Sequence[int], s_e: int, s_w: int) -> bool:
    m = [k for k in sizes if k > 0]
    return bool(m) and min(m) >= s_w + 1 and is_feasible(m, s_e, s_w)


def make_grid(arrays: SystemArrays, load: float, ref_mean: float, ref_load: float, g: int):
    t0 = arrays.start(load)
    span = SPAN * max(ref_mean - arrays.start(ref_load), 1e-6) * max(1.0, load / ref_load)
    return np.linspace(t0, t0 + span, g)


def enumerate_pair(
    arrays: SystemArrays,
    options: list[list[Option]],
    s_e: int,
    s_w: int,
    ref_mean: float,
    ref_load: float,
    grid: int,
    top: int,
) -> list[tuple[float, tuple[Option, ...]]]:
    """Every non-dominated combination, each at its own load; the ``top`` best."""
    n = arrays.n
    sizes_of = [sorted({len(o) for o in opts}) for opts in options]
    by_m: dict[int, list[tuple[int, ...]]] = {}
    for ks in itertools.product(*sizes_of):
        if sum(1 for k in ks if k) >= s_e + 1 and feasible(ks, s_e, s_w):
            by_m.setdefault(sum(ks), []).append(ks)
    found: list[tuple[float, tuple[Option, ...]]] = []
    for total, vectors in by_m.items():
        load = (s_e + 1) * (s_w + 1) / total
        t = make_grid(arrays, load, ref_mean, ref_load, grid)
        table = EdgeTable(arrays, options, s_w, load, t)
        keep = table.prune(options)
        combos: list[tuple[int, ...]] = []
        for ks in vectors:
            per_edge = [[i for i in keep[e] if len(options[e][i]) == ks[e]] for e in range(n)]
            combos.extend(itertools.product(*per_edge))
        for lo in range(0, len(combos), 4096):
            chunk = np.array(combos[lo : lo + 4096])
            cdfs = np.stack([table.rows[e][chunk[:, e]] for e in range(n)], axis=1)
            values = master_means(t, cdfs, s_e)
            best = np.argsort(values)[:top]
            found.extend(
                (float(values[i]), tuple(options[e][chunk[i, e]] for e in range(n))) for i in best
            )
        found.sort(key=lambda x: x[0])
        del found[top:]
    return found


def combinations_count(options: list[list[Option]]) -> int:
    count = 1
    for opts in options:
        count *= len(opts)
    return count


class _Loads:
    """Edge tables at a geometric ladder of loads on one grid ``t``: ``stack`` (n, T, O, G);
    a selection's value is interpolated in log-load between the two tables around its own
    load ``c / M`` (``c = (s_e+1)(s_w+1)``); totals below ``m_min`` are outside the ladder."""

    def __init__(self, loads: np.ndarray, t: np.ndarray, stack: np.ndarray, c: int):
        self.loads, self.t, self.stack, self.c = loads, t, stack, c
        self.m_min = c / float(loads[-1]) * (1 - 1e-9)

    def bracket(self, total: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        x = np.log(self.c / np.maximum(total, 1))
        lg = np.log(self.loads)
        i1 = np.clip(np.searchsorted(lg, x), 1, max(len(lg) - 1, 1)) if len(lg) > 1 else None
        if i1 is None:
            z = np.zeros(total.shape, dtype=int)
            return z, z, np.zeros(total.shape)
        i0 = i1 - 1
        w = np.clip((x - lg[i0]) / (lg[i1] - lg[i0]), 0.0, 1.0)
        return i0, i1, w


def _ladder(arrays, options, s_e, s_w, ref_mean, ref_load, grid, m_lo, m_hi) -> _Loads:
    """The tables of one pair: loads from ``c / m_hi`` to ``c / max(m_lo, m_hi / 4)``."""
    c = (s_e + 1) * (s_w + 1)
    lo, hi = c / m_hi, c / max(m_lo, m_hi // LADDER_RANGE, 1)
    steps = max(2, int(np.ceil(np.log2(hi / lo) * LADDER_STEPS)) + 1) if hi > lo else 1
    loads = np.geomspace(lo, hi, steps) if steps > 1 else np.array([lo])
    t = make_grid(arrays, float(loads[-1]), ref_mean, ref_load, grid)
    t = t - t[0] + min(arrays.start(float(x)) for x in loads)
    plan = prefix_plan(arrays, options, s_w)
    stack = np.zeros((arrays.n, len(loads), max(len(o) for o in options), grid))
    for i, x in enumerate(loads):
        EdgeTable(arrays, options, s_w, float(x), t, plan, stack[:, i])
    return _Loads(loads, t, stack, c)


class Lattice:
    """Edge tables of one s_w at the loads ``(s_w+1)/M_all * 2^(j / LATTICE_STEPS)``, built
    on demand and shared by every s_e (a pair uses the run of them its loads need), on one
    grid from the earliest possible arrival to ``SPAN * LATTICE_SPAN`` times the reference
    mean's excess over it."""

    def __init__(
        self,
        arrays: SystemArrays,
        options: list[list[Option]],
        s_w: int,
        ref_mean: float,
        grid: int,
    ):
        self.arrays, self.options, self.s_w = arrays, options, s_w
        self.m_all = sum(arrays.sizes)
        self.base = (s_w + 1) / self.m_all
        self.ref = ref_mean
        t0 = arrays.start(self.base)
        self.t = np.linspace(t0, t0 + SPAN * LATTICE_SPAN * max(ref_mean - t0, 1e-6), grid)
        self.plan = prefix_plan(arrays, options, s_w)
        self.o_max = max(len(o) for o in options)
        # loads up to 4 x (n edges) x the base: every s_e; tables filled on demand
        self.j_max = int(np.ceil(LATTICE_STEPS * np.log2(4 * arrays.n))) + 1
        self.stack = np.empty((arrays.n, self.j_max + 1, self.o_max, grid))
        self.built: set[int] = set()

    def load(self, j: int) -> float:
        return self.base * 2.0 ** (j / LATTICE_STEPS)

    def fits(self, mean: float) -> bool:
        """Whether the grid resolves plans of this mean (s): its reference was at most
        twice as far from the start."""
        return self.ref - self.t[0] <= 2 * max(mean - self.t[0], 1e-9)

    def ladder(self, s_e: int) -> _Loads:
        c = (s_e + 1) * (self.s_w + 1)
        m_lo = max(s_e + 1, 1) * (self.s_w + 1)
        lo, hi = c / self.m_all, c / max(m_lo, self.m_all // LADDER_RANGE, 1)
        j_lo = int(np.floor(LATTICE_STEPS * np.log2(lo / self.base) + 1e-9))
        j_hi = max(int(np.ceil(LATTICE_STEPS * np.log2(hi / self.base) - 1e-9)), j_lo + 1)
        j_hi = min(j_hi, self.j_max)
        j_lo = min(j_lo, j_hi - 1)
        for j in range(j_lo, j_hi + 1):
            if j not in self.built:
                out = self.stack[:, j]
                out[:] = 1.0  # padding options: any finite rows (never chosen)
                EdgeTable(self.arrays, self.options, self.s_w, self.load(j), self.t, self.plan, out)
                self.built.add(j)
        loads = np.array([self.load(j) for j in range(j_lo, j_hi + 1)])
        return _Loads(loads, self.t, self.stack[:, j_lo : j_hi + 1], c)


def _leave_one_out(rows: np.ndarray, s: int) -> tuple[np.ndarray, np.ndarray]:
    """For every edge e: P[at most s of the OTHER edges miss] and P[at most s - 1 of them
    miss] (0 if s = 0), from the edges' finish CDFs ``rows`` (n, X) (X: any flattened grid
    axes): two ``(n, X)``.

    Prefix and suffix Poisson-binomial distributions (miss counts 0..s only; higher counts
    never feed lower ones) are combined per edge, so all n leave-one-out tails cost two
    passes over the edges instead of n."""
    n, x = rows.shape
    miss = 1.0 - rows
    pre = np.empty((n + 1, s + 1, x))
    suf = np.empty((n + 1, s + 1, x))
    pre[0] = suf[n] = 0.0
    pre[0, 0] = suf[n, 0] = 1.0
    for e in range(n):
        np.multiply(pre[e], rows[e], out=pre[e + 1])
        if s:
            pre[e + 1, 1:] += pre[e, :-1] * miss[e]
    for e in range(n - 1, -1, -1):
        np.multiply(suf[e + 1], rows[e], out=suf[e])
        if s:
            suf[e, 1:] += suf[e + 1, :-1] * miss[e]
    cum = suf[1:]  # made cumulative in place: P[at most b misses after e]
    for b in range(1, s + 1):
        cum[:, b] += cum[:, b - 1]
    at_most = pre[:n, 0] * cum[:, s]
    fewer = pre[:n, 0] * cum[:, s - 1] if s else np.zeros((n, x))
    for a in range(1, s + 1):
        at_most += pre[:n, a] * cum[:, s - a]
        if a < s:
            fewer += pre[:n, a] * cum[:, s - 1 - a]
    return np.clip(at_most, 0.0, 1.0, out=at_most), np.clip(fewer, 0.0, 1.0, out=fewer)


class _Stack:
    """The ladder's edge tables as one array ``(n, T, O, G)`` (padding options: size -1),
    with selection values that are affine in any one edge's row (no monotone envelope, so a
    selection scored whole and scored through one edge's row agree)."""

    def __init__(self, lad: _Loads, options: list[list[Option]], s_e: int):
        self.lad, self.s_e = lad, s_e
        t = lad.t
        n, self.tn, self.g = len(options), len(lad.loads), t.size
        self.o_max = max(len(o) for o in options)
        self.tab = lad.stack  # (n, T, O, G)
        self.size = np.full((n, self.o_max), -1)
        for e, opts in enumerate(options):
            self.size[e, : len(opts)] = [len(o) for o in opts]
        h = t[1] - t[0]
        self.wq = np.full(self.g, h)
        self.wq[0] = h / 2
        self.wq[-1] = h / 2 + (t[-1] - t[0])  # unresolved mass is charged the whole span
        self.edges = np.arange(n)

    def values(self, states: np.ndarray) -> np.ndarray:
        """E[T] (s) of selections given as option indices ``(C, n)``: ``(C,)``."""
        c = states.shape[0]
        total = self.size[self.edges[None], states].sum(axis=1)
        i0, i1, w = self.lad.bracket(total)
        out = np.zeros(c)
        for which, wt in ((i0, 1 - w), (i1, w)):
            rows = self.tab[self.edges[None], which[:, None], states]  # (C, n, G)
            cdf = prob_at_most_misses(rows, self.s_e)
            out += wt * (self.lad.t[0] + ((1.0 - cdf) * self.wq).sum(axis=1))
        return np.where(total >= self.lad.m_min, out, np.inf)

    def moves(self, state: np.ndarray) -> np.ndarray:
        """E[T] (s) of every single-edge change of ``state``: ``(n, O)`` (infeasible: inf;
        unchanged: the state's own value)."""
        n, tn, g, size, s_e = len(state), self.tn, self.g, self.size, self.s_e
        cur_size = size[self.edges, state]
        rows = self.tab[self.edges, :, state].reshape(n, tn * g)
        at_most, fewer = _leave_one_out(rows, s_e)
        at_most, fewer = at_most.reshape(n, tn, g), fewer.reshape(n, tn, g)
        const = self.lad.t[0] + ((1.0 - fewer) * self.wq).sum(axis=2)  # (n, T)
        diff = (at_most - fewer) * self.wq
        vals = const[:, :, None] - np.matmul(self.tab, diff[..., None])[..., 0]  # (n, T, O)
        new_total = int(cur_size.sum()) - cur_size[:, None] + size  # (n, O)
        i0, i1, w = self.lad.bracket(new_total)
        v = (1 - w) * np.take_along_axis(vals, i0[:, None], axis=1)[:, 0]
        v += w * np.take_along_axis(vals, i1[:, None], axis=1)[:, 0]
        order = np.sort(cur_size)
        top2 = order[-2] if n > 1 else 0
        other_max = np.where(cur_size == order[-1], top2, order[-1])
        n_on = int((cur_size > 0).sum()) - (cur_size > 0)[:, None] + (size > 0)
        biggest = np.maximum(other_max[:, None], size)
        ok = (size >= 0) & (n_on >= s_e + 1) & ((s_e + 1) * biggest <= new_total)
        ok &= new_total >= self.lad.m_min
        ok[self.edges, state] = True
        return np.where(ok, v, np.inf)

    def feasible(self, state: np.ndarray) -> bool:
        k = self.size[self.edges, state]
        return bool(k.sum() > 0 and (k > 0).sum() >= self.s_e + 1 and
                    (self.s_e + 1) * k.max() <= k.sum())  # fmt: skip


def descend_pair(
    arrays: SystemArrays,
    options: list[list[Option]],
    s_e: int,
    s_w: int,
    starts: list[tuple[int, ...]],
    ref_mean: float,
    ref_load: float,
    grid: int,
    top: int,
    descents: int = 2,
    max_steps: int = 0,
) -> list[tuple[float, tuple[Option, ...]]]:
    """Descent over per-edge options from the ``descents`` best of ``starts`` (option
    indices, all scored in one batch).

    A step scores every option of every edge at once (:meth:`_Stack.moves`: with edge e's
    row replaced by ``F``, the master's CDF is ``B_e + F (A_e - B_e)``, ``A_e``, ``B_e``
    from :func:`_leave_one_out`, so its mean is affine in ``F`` and one matrix product
    scores all options at every tabulated load; each option's value is interpolated in
    log-load at the total it would make). It takes the best of: the single best change,
    and the best change of every improving edge applied together (or of the better half of
    them), scored whole, so that changes many edges need at once (drop the slow device
    class everywhere) happen in one step. It stops when no single change improves."""
    lad = _ladder(arrays, options, s_e, s_w, ref_mean, ref_load, grid, *_m_range(arrays, s_e, s_w))
    return descend(_Stack(lad, options, s_e), options, starts, top, descents, max_steps)


def descend(
    st: _Stack,
    options: list[list[Option]],
    starts: list[tuple[int, ...]],
    top: int,
    descents: int = 2,
    max_steps: int = 0,
) -> list[tuple[float, tuple[Option, ...]]]:
    """:func:`descend_pair` on ready tables."""
    n = len(options)
    cand = np.array(list(dict.fromkeys(starts)))
    first = st.values(cand)
    steps = max_steps or 4 * n + 50
    results: dict[tuple[int, ...], float] = {}
    for i in np.argsort(first)[:descents].tolist():
        state, cur = cand[i].copy(), float(first[i])
        for _ in range(steps):
            v = st.moves(state)
            cur = float(v[0, state[0]])
            best_o = np.argmin(v, axis=1)
            gain = cur - v[st.edges, best_o]
            better = np.flatnonzero(gain > cur * 1e-9)
            if better.size == 0:
                break
            better = better[np.argsort(-gain[better])]
            one = state.copy()
            one[better[0]] = best_o[better[0]]
            trials = [one]
            for k in (better.size, (better.size + 1) // 2):
                if k > 1:
                    x = state.copy()
                    x[better[:k]] = best_o[better[:k]]
                    if st.feasible(x):
                        trials.append(x)
            vals = st.values(np.array(trials)) if len(trials) > 1 else np.array([np.inf])
            vals[0] = float(v[better[0], best_o[better[0]]])
            j = int(np.argmin(vals))
            state, cur = trials[j], float(vals[j])
        results[tuple(int(x) for x in state)] = cur
    ranked = sorted(results.items(), key=lambda x: x[1])[:top]
    return [(v, tuple(options[e][s[e]] for e in range(n))) for s, v in ranked]


def _m_range(arrays: SystemArrays, s_e: int, s_w: int) -> tuple[int, int]:
    return max(s_e + 1, 1) * (s_w + 1), sum(arrays.sizes)
