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
from common.perf.batch import compute_cdf, delay_cdf, prob_at_most_misses
from common.perf.model import Atoms, add_atoms, compress, link_atoms, slow_probability
from common.perf.system import SystemModel

SUBSET_MAX = 6  # edges up to this many workers offer every subset, larger ones prefixes
SEARCH_ATOMS = 8  # worker round-trip link delay atoms in the search (mean-preserving)
SEARCH_EDGE_ATOMS = 6  # edge download + upload delay atoms in the search (mean-preserving)
ENUM_MAX = 60_000  # combinations enumerated per pair before switching to descent
LADDER_RANGE = 4  # the descent considers totals M down to M_all / 4 ...
LADDER_STEPS = 2  # ... with tables at 2 loads per octave
SPAN = 4.0  # the grid reaches SPAN x the reference mean's excess over its start

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
        """P[worker (e, j) has delivered by t[g]] ignoring its edge's offset: (n, m, G)."""
        sh = (self.shift_s * load)[..., None]
        sc = self.inv_rate * load
        inv = np.where(sc > 0, 1.0 / np.where(sc > 0, sc, 1.0), 1e30)[..., None]
        out = np.zeros((self.n, self.m, t.size))
        for a in range(self.link_v.shape[-1]):
            x = t[None, None, :] - self.link_v[:, :, a, None]
            f = compute_cdf(x, sh, inv)
            if self.pi > 0:
                f = (1 - self.pi) * f + self.pi * compute_cdf(x / self.slowdown, sh, inv)
            out += self.link_w[:, :, a, None] * f
        return out


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


def _prefix_cdfs(arr: np.ndarray, body: list[Option], s_w: int) -> tuple[np.ndarray, np.ndarray]:
    """P[at most s_w of the prefix's workers missing] for every prefix in one pass over the
    workers (Poisson-binomial DP capped at s_w + 1 misses): ``(len(body), G)`` and sizes."""
    order = list(body[0]) + [
        next(iter(set(b) - set(a))) for a, b in zip(body, body[1:], strict=False)
    ]
    g = arr.shape[1]
    q = np.zeros((s_w + 2, g))
    q[0] = 1.0
    out = np.zeros((len(body), g))
    for j, w in enumerate(order):
        p = arr[w]
        u = 1.0 - p
        new = q * p
        new[1:] += q[:-1] * u
        new[-1] += q[-1] * u  # the cap state absorbs further misses
        q = new
        if j + 1 >= s_w + 1:
            out[j + 1 - (s_w + 1)] = q[: s_w + 1].sum(axis=0)
    return np.clip(out, 0.0, 1.0), np.array([len(b) for b in body])


class EdgeTable:
    """Finish-time CDFs of every option of every edge at one load, on one grid ``t`` (s)."""

    def __init__(
        self,
        arrays: SystemArrays,
        options: list[list[Option]],
        s_w: int,
        load: float,
        t: np.ndarray,
    ):
        self.t, self.load = t, load
        h = np.array([t[1] - t[0]])
        arr = arrays.arrivals(load, t)  # (n, m, G)
        self.rows: list[np.ndarray] = []
        for e, opts in enumerate(options):
            g = np.ones((len(opts), t.size))
            body = opts[1:]
            if body and arrays.sizes[e] > SUBSET_MAX:  # nested fastest-first prefixes
                os_cdf, k = _prefix_cdfs(arr[e], body, s_w)
            elif body:
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
                fin = (shifted.reshape(len(body), live.size, -1) * w[live][None, :, None]).sum(1)
                g[1:] = fin
            self.rows.append(g)

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
    """Edge tables at a geometric ladder of loads; a selection's value is interpolated in
    log-load between the two tables around its own load."""

    def __init__(self, arrays, options, s_e, s_w, ref_mean, ref_load, grid, m_lo, m_hi):
        c = (s_e + 1) * (s_w + 1)
        lo, hi = c / m_hi, c / max(m_lo, m_hi // LADDER_RANGE, 1)
        steps = max(2, int(np.ceil(np.log2(hi / lo) * LADDER_STEPS)) + 1) if hi > lo else 1
        self.loads = np.geomspace(lo, hi, steps) if steps > 1 else np.array([lo])
        self.c, self.s_e = c, s_e
        t = make_grid(arrays, float(self.loads[-1]), ref_mean, ref_load, grid)
        self.t = t - t[0] + min(arrays.start(float(x)) for x in self.loads)
        self.tables = [EdgeTable(arrays, options, s_w, float(x), self.t) for x in self.loads]

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
    max_steps: int = 200,
) -> list[tuple[float, tuple[Option, ...]]]:
    """Coordinate descent over per-edge options from each start (option indices): a step
    scores every option of every edge at once and takes the best improving one."""
    n = arrays.n
    sizes = [np.array([len(o) for o in opts]) for opts in options]
    m_hi = sum(arrays.sizes)
    m_lo = max(s_e + 1, 1) * (s_w + 1)
    lad = _Loads(arrays, options, s_e, s_w, ref_mean, ref_load, grid, m_lo, m_hi)
    t = lad.t
    results: dict[tuple[int, ...], float] = {}

    def value_of(state: tuple[int, ...]) -> float:
        total = np.array([sum(len(options[e][state[e]]) for e in range(n))])
        i0, i1, w = lad.bracket(total)
        vals = []
        for i in (int(i0[0]), int(i1[0])):
            cdfs = np.stack([lad.tables[i].rows[e][state[e]] for e in range(n)])[None]
            vals.append(float(master_means(t, cdfs, s_e)[0]))
        return (1 - float(w[0])) * vals[0] + float(w[0]) * vals[1]

    for start in starts:
        state = tuple(start)
        cur = value_of(state)
        for _ in range(max_steps):
            cur_sizes = np.array([len(options[e][state[e]]) for e in range(n)])
            total = cur_sizes.sum()
            best: tuple[float, int, int] | None = None
            per_table = []
            for tab in lad.tables:
                f = np.stack([tab.rows[e][state[e]] for e in range(n)])  # (n, G)
                loo = np.broadcast_to(f, (n, n, t.size)).copy()
                loo[np.arange(n), np.arange(n)] = 1.0
                at_most = prob_at_most_misses(loo, s_e)
                fewer = prob_at_most_misses(loo, s_e - 1) if s_e > 0 else np.zeros_like(at_most)
                per_table.append((at_most, fewer))
            for e in range(n):
                new_total = total - cur_sizes[e] + sizes[e]
                ok = np.array(
                    [
                        i != state[e]
                        and feasible([*cur_sizes[:e], sizes[e][i], *cur_sizes[e + 1 :]], s_e, s_w)
                        for i in range(len(options[e]))
                    ]
                )
                if not ok.any():
                    continue
                idx = np.flatnonzero(ok)
                i0, i1, w = lad.bracket(new_total[idx])
                vals = np.zeros(idx.size)
                for which, wt in ((i0, 1 - w), (i1, w)):
                    for ti in np.unique(which):
                        sel = which == ti
                        rows = lad.tables[ti].rows[e][idx[sel]]
                        at_most, fewer = per_table[ti]
                        cdf = rows * at_most[e][None] + (1 - rows) * fewer[e][None]
                        cdf = np.maximum.accumulate(cdf, axis=1)
                        v = (
                            t[0]
                            + np.trapezoid(1.0 - cdf, t, axis=1)
                            + (1.0 - cdf[:, -1]) * (t[-1] - t[0])
                        )
                        vals[sel] += wt[sel] * v
                k = int(np.argmin(vals))
                if best is None or vals[k] < best[0]:
                    best = (float(vals[k]), e, int(idx[k]))
            if best is None or best[0] >= cur * (1 - 1e-9):
                break
            cur = best[0]
            s = list(state)
            s[best[1]] = best[2]
            state = tuple(s)
        results[state] = cur
    ranked = sorted(results.items(), key=lambda x: x[1])[:top]
    return [(v, tuple(options[e][s[e]] for e in range(n))) for s, v in ranked]
