"""The hierarchical code object (spec §3): placement, coefficients, edge targets, decoders."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from common.coding.errors import InfeasibleCodeError
from common.coding.lagrange import DEFAULT_POINTS
from common.coding.placement import Placement, coverage
from common.coding.tier import (
    Tier,
    fr_tier,
    frozen,
    gauss_tier,
    ignore_tier,
    lagrange_tier,
)

VARIANTS = ("lagrange", "fr", "ignore")


@dataclass(frozen=True, eq=False)
class HierarchicalCode:
    """A two-tier gradient code: n edges under the master, m_i workers under edge i.

    Worker (i, j) sends ``sum_t worker_coefficients[i][j][t] * g[placement[i][j][t]]``; edge i
    combines its first m_i - s_w responders with :meth:`edge_decode_weights` into
    ``sum_k edge_targets[i, k] g_k``; the master combines its first n - s_e edges with
    :meth:`master_decode_weights` into ``sum_k g_k`` (rescaled estimate for "ignore").
    """

    scheme: str
    n_edges: int
    workers_per_edge: tuple[int, ...]
    s_e: int
    s_w: int
    K: int
    exact: bool
    placement: Placement
    worker_coefficients: tuple[tuple[np.ndarray, ...], ...]
    edge_targets: np.ndarray  # (n_edges, K)
    variant: str  # "fr" (every tier 0/1), "lagrange" (some tier real-coded) or "ignore"
    edge_tier: Tier = field(repr=False)
    worker_tiers: tuple[Tier, ...] = field(repr=False)
    points: str = DEFAULT_POINTS
    is_flat: bool = False
    # wide worker tiers (docs/numerics.md): worker (i, j)'s coefficients are the longdouble
    # numbers worker_coefficients[i][j] + worker_coefficients_lo[i][j] (a float64 pair holds
    # a longdouble exactly); None for the edges whose worker tier is not wide
    worker_coefficients_lo: tuple[tuple[np.ndarray, ...] | None, ...] = ()
    _memo: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def D(self) -> int:
        """Partitions per worker (the largest, if loads are unequal)."""
        return max(len(p) for edge in self.placement for p in edge)

    @property
    def edges_needed(self) -> int:
        return self.n_edges - self.s_e

    def workers_needed(self, i: int) -> int:
        return self.workers_per_edge[i] - self.s_w

    def load_fraction(self, i: int, j: int) -> float:
        """|placement[i][j]| / K: the share of the data worker (i, j) processes."""
        return len(self.placement[i][j]) / self.K

    def edge_decode_weights(self, i: int, responders: Sequence[int]) -> np.ndarray:
        """(len(responders),) weights for edge i; only the first m_i - s_w are non-zero."""
        if not 0 <= i < self.n_edges:
            raise InfeasibleCodeError(f"edge index {i} out of range 0..{self.n_edges - 1}")
        return self.worker_tiers[i].weights(responders, "workers")

    def edge_is_wide(self, i: int) -> bool:
        """True when edge i's worker tier is wide: its workers send hi + lo vectors and the
        edge combines them in longdouble (:meth:`edge_decode_weights_wide`)."""
        return bool(self.worker_tiers[i].wide)

    def edge_decode_weights_wide(self, i: int, responders: Sequence[int]) -> np.ndarray:
        """As :meth:`edge_decode_weights`, in longdouble for a wide worker tier."""
        if not 0 <= i < self.n_edges:
            raise InfeasibleCodeError(f"edge index {i} out of range 0..{self.n_edges - 1}")
        return self.worker_tiers[i].wide_weights(responders, "workers")

    def worker_coefficients_wide(self, i: int, j: int) -> np.ndarray:
        """Worker (i, j)'s coefficients in longdouble (hi + lo; just hi if not wide)."""
        from common.coding.gauss import LD

        hi = self.worker_coefficients[i][j].astype(LD)
        lo = self.worker_coefficients_lo[i] if self.worker_coefficients_lo else None
        return hi if lo is None else hi + lo[j].astype(LD)

    def master_decode_weights(self, responders: Sequence[int]) -> np.ndarray:
        """(len(responders),) weights for the master; only the first n - s_e are non-zero."""
        return self.edge_tier.weights(responders, "edges")

    def decode_error_estimate(self) -> float:
        """Worst-case relative float64 decode error over the straggler patterns (see numerics)."""
        if "error" not in self._memo:
            from common.coding.numerics import hierarchical_error_estimate

            self._memo["error"] = hierarchical_error_estimate(self)
        return float(self._memo["error"])

    def spec(self) -> dict[str, Any]:
        """Small JSON-able description; ``code_from_spec(spec)`` rebuilds this code exactly."""
        out: dict[str, Any] = {
            "scheme": self.scheme,
            "workers_per_edge": list(self.workers_per_edge),
            "s_e": self.s_e,
            "s_w": self.s_w,
            "K": self.K,
        }
        if self.scheme == "hgc-hetero":
            out["placement"] = [[list(p) for p in edge] for edge in self.placement]
        if self.points != DEFAULT_POINTS:
            out["points"] = self.points
        if self.variant == "lagrange":
            # the orderings "equi-search" chose: rebuilding from them needs no search, so every
            # node gets the same code whatever its floating-point quirks
            out["orders"] = {
                "edge": self.edge_tier.order,
                "workers": [t.order for t in self.worker_tiers],
            }
            tiers = (self.edge_tier, *self.worker_tiers)
            if any(t.kind == "gauss" for t in tiers):
                # the Gaussian tiers and their seeds (docs/code-json.md); null: not Gaussian
                out["gauss"] = {
                    "edge": self.edge_tier.seed if self.edge_tier.kind == "gauss" else None,
                    "workers": [t.seed if t.kind == "gauss" else None for t in self.worker_tiers],
                }
            if any(t.wide for t in self.worker_tiers):
                # extended-precision worker tiers (docs/code-json.md); absent: none
                out["wide"] = [bool(t.wide) for t in self.worker_tiers]
        return out

    def to_json(self) -> dict[str, Any]:
        """The whole code in the ``hgc code --json`` schema (docs/code-json.md)."""
        return {
            "scheme": self.scheme,
            "n_edges": self.n_edges,
            "workers_per_edge": list(self.workers_per_edge),
            "s_e": self.s_e,
            "s_w": self.s_w,
            "K": self.K,
            "D": self.D,
            "exact": self.exact,
            "variant": self.variant,
            "placement": [[list(p) for p in edge] for edge in self.placement],
            "worker_coefficients": [
                [[float(c) for c in coefs] for coefs in edge] for edge in self.worker_coefficients
            ],
            "edge_targets": [[float(b) for b in row] for row in self.edge_targets],
            **self._wide_json(),
        }

    def _wide_json(self) -> dict[str, Any]:
        """Wide worker tiers: the float64 remainders of their longdouble coefficients."""
        if not self.worker_coefficients_lo:
            return {}
        return {
            "worker_coefficients_lo": [
                None if edge is None else [[float(c) for c in lo] for lo in edge]
                for edge in self.worker_coefficients_lo
            ]
        }


GAUSS_SWITCH = 1e-9  # Lagrange estimate above which tiers are offered Gaussian coefficients


def build_hierarchical(
    scheme: str,
    placement: Placement,
    K: int,
    s_e: int,
    s_w: int,
    variant: str,
    points: str = DEFAULT_POINTS,
    orders: dict[str, Any] | None = None,
    gauss: dict[str, Any] | None = None,
) -> HierarchicalCode:
    """Coefficients for a validated placement (spec §3 step 3 for ``lagrange``).

    ``orders`` ({"edge": int, "workers": [int, ...]}, from a spec) fixes the point orderings
    instead of searching for them. ``gauss`` ({"edge": seed | None, "workers": [seed | None,
    ...]}, from a spec) makes the tiers with a seed random-Gaussian tiers (common/coding/
    gauss.py), the others Lagrange. With neither (a new code) the choice is automatic: all
    Lagrange, unless the code's estimated worst decode error exceeds ``GAUSS_SWITCH``; then
    each polynomial tier whose Gaussian version has the smaller tier estimate becomes
    Gaussian (kept only if the whole code's estimate improves; :func:`gauss_choice`). A spec
    with ``orders`` but no ``gauss`` (written before Gaussian tiers existed) rebuilds
    all-Lagrange, as it was, and so does a non-default ``points`` family (asking for points
    is asking for Lagrange tiers).
    """
    if variant != "lagrange" or gauss is not None or orders is not None or points != DEFAULT_POINTS:
        return _build(scheme, placement, K, s_e, s_w, variant, points, orders, gauss)
    code = _build(scheme, placement, K, s_e, s_w, variant, points, None, None)
    if code.variant != "lagrange":
        return code
    choice = gauss_choice(code.edge_tier, code.worker_tiers, _code_estimate)
    if choice is None:
        return code
    auto_orders = {
        "edge": code.edge_tier.order,
        "workers": [t.order for t in code.worker_tiers],
    }
    code = _build(scheme, placement, K, s_e, s_w, variant, points, auto_orders, choice)
    wide = wide_choice(code.worker_tiers)
    if wide is None:
        return code
    return _build(
        scheme, placement, K, s_e, s_w, variant, points, auto_orders, {**choice, "wide": wide}
    )


def wide_choice(worker_tiers: Sequence[Tier]) -> list[bool] | None:
    """Which worker tiers a new code makes wide (docs/numerics.md "Wide tiers"): every
    Gaussian one, unless longdouble is only float64 here. Returns the spec's ``wide`` list, or
    None when no tier is Gaussian.

    Why every one and not only those whose estimate is high: a Gaussian tier's decode error is
    heavy-tailed over responder sets (a random square submatrix is near-singular with
    probability proportional to its smallest singular value), so an estimate from the
    builder's own patterns can sit 500x under what independent patterns find. The tail belongs
    to the family, not to a seed; widening removes the float64 floor it multiplies."""
    from common.coding.gauss import WIDE_AVAILABLE

    if not WIDE_AVAILABLE:
        return None
    wide = [t.kind == "gauss" for t in worker_tiers]
    return wide if any(wide) else None


def _code_estimate(edge_tier: Tier, worker_tiers: Sequence[Tier]) -> float:
    from types import SimpleNamespace

    from common.coding.numerics import hierarchical_error_estimate

    return hierarchical_error_estimate(
        SimpleNamespace(edge_tier=edge_tier, worker_tiers=tuple(worker_tiers))
    )


def gauss_choice(
    edge_tier: Tier,
    worker_tiers: Sequence[Tier],
    estimate: Callable[[Tier, Sequence[Tier]], float],
    alternative: Callable[[Tier], Tier] | None = None,
) -> dict[str, Any] | None:
    """The automatic Lagrange/Gaussian choice for a new code (see :func:`build_hierarchical`).

    ``estimate(edge_tier, worker_tiers)`` is the whole code's error estimate. Returns None to
    keep every tier Lagrange, else the ``gauss`` spec field {"edge": seed | None, "workers":
    [seed | None, ...]}. A tier becomes Gaussian when its Gaussian version's estimate is
    smaller by at least a quarter decade (the rule of the seed and ordering searches: tiny
    tiers whose two estimates are both at rounding level stay Lagrange, on every platform).
    Also used by the full grid check (common/coding/grid.py) to know what make_code builds;
    ``alternative(tier)`` (default: ``gauss_tier`` with its seed search) lets it reuse tiers.
    """
    est = estimate(edge_tier, worker_tiers)
    if est <= GAUSS_SWITCH:
        return None
    from common.coding.numerics import tier_estimate

    seen: dict[tuple, Tier | None] = {}  # same holder structure -> same choice

    def alt_for(tier: Tier) -> Tier | None:
        if tier.kind != "lagrange":
            return None
        key = (tier.N, tier.s, tuple(sorted(tier.holders)))
        if key not in seen:
            alt = (
                gauss_tier(tier.N, tier.s, tier.holders, tier.label)
                if alternative is None
                else alternative(tier)
            )
            better = _quarter_decade(tier_estimate(alt)) < _quarter_decade(tier_estimate(tier))
            seen[key] = alt if better else None
        return seen[key]

    edge_alt = alt_for(edge_tier)
    worker_alts = [alt_for(t) for t in worker_tiers]
    if edge_alt is None and all(x is None for x in worker_alts):
        return None
    mixed_edge = edge_tier if edge_alt is None else edge_alt
    mixed_workers = [t if x is None else x for t, x in zip(worker_tiers, worker_alts, strict=True)]
    if not estimate(mixed_edge, mixed_workers) < est:
        return None
    return {
        "edge": None if edge_alt is None else edge_alt.seed,
        "workers": [None if x is None else x.seed for x in worker_alts],
    }


def _quarter_decade(x: float) -> int:
    return math.floor(4 * math.log10(max(x, 1e-300)))


def _build(
    scheme: str,
    placement: Placement,
    K: int,
    s_e: int,
    s_w: int,
    variant: str,
    points: str,
    orders: dict[str, Any] | None,
    gauss: dict[str, Any] | None,
) -> HierarchicalCode:
    m = tuple(len(edge) for edge in placement)
    n = len(m)
    if s_w >= min(m):
        i = m.index(min(m))
        raise InfeasibleCodeError(
            f"s_w={s_w} >= workers of edge {i} ({m[i]}): the largest feasible s_w is {min(m) - 1}"
        )
    # "ignore" keeps the uncoded placement (one holder per partition) whatever it waits for
    cover_e, cover_w = (0, 0) if variant == "ignore" else (s_e, s_w)
    edge_holders, worker_holders = coverage(placement, K, cover_e, cover_w)
    edge_seed = None if gauss is None else gauss["edge"]
    if variant == "fr":
        edge_tier = fr_tier(n, s_e, edge_holders, label="master")
    elif variant == "ignore":
        edge_tier = ignore_tier(n, s_e, edge_holders, label="master")
    elif edge_seed is not None:
        edge_tier = gauss_tier(n, s_e, edge_holders, "master", edge_seed)
    else:
        edge_tier = lagrange_tier(
            n, s_e, edge_holders, points, "master", None if orders is None else orders["edge"]
        )
    worker_tiers = []
    coefs = []
    coefs_lo: list[tuple[np.ndarray, ...] | None] = []
    chosen: dict[tuple, int] = {}  # same holder structure -> same ordering (search once)
    for i, edge in enumerate(placement):
        items = sorted(worker_holders[i])
        holders = [worker_holders[i][k] for k in items]
        label = f"edge {i}"
        seed = None if gauss is None else gauss["workers"][i]
        wide = gauss is not None and bool((gauss.get("wide") or [False] * n)[i])
        if variant == "fr":
            tier = fr_tier(m[i], s_w, holders, label=label)
        elif variant == "ignore":
            tier = ignore_tier(m[i], s_w, holders, label=label)
        elif seed is not None:
            tier = gauss_tier(m[i], s_w, holders, label, seed, wide=wide)
        else:
            key = (m[i], tuple(sorted(holders)))
            order = orders["workers"][i] if orders is not None else chosen.get(key)
            tier = lagrange_tier(m[i], s_w, holders, points, label, order)
            chosen.setdefault(key, tier.order)
        worker_tiers.append(tier)
        col = {k: c for c, k in enumerate(items)}
        if tier.B_wide is not None:
            # longdouble products, shipped as a float64 pair hi + lo (exact for longdouble)
            from common.coding.gauss import LD

            wide_rows = [
                np.array(
                    [
                        tier.B_wide[j, col[k]] * LD(edge_tier.B[i, k]) if k in col else LD(0)
                        for k in parts
                    ],
                    dtype=LD,
                )
                for j, parts in enumerate(edge)
            ]
            his = [x.astype(np.float64) for x in wide_rows]
            coefs.append(tuple(his))
            coefs_lo.append(
                tuple(
                    frozen((x - h.astype(LD)).astype(np.float64))
                    for x, h in zip(wide_rows, his, strict=True)
                )
            )
            continue
        coefs_lo.append(None)
        coefs.append(
            tuple(
                np.array(
                    [tier.B[j, col[k]] * edge_tier.B[i, k] if k in col else 0.0 for k in parts]
                )
                for j, parts in enumerate(edge)
            )
        )
    if variant == "lagrange" and all(
        t.kind not in ("lagrange", "gauss") for t in (edge_tier, *worker_tiers)
    ):
        variant = "fr"  # the placement made every tier a 0/1 repetition: no numerical error
    return HierarchicalCode(
        scheme=scheme,
        n_edges=n,
        workers_per_edge=m,
        s_e=s_e,
        s_w=s_w,
        K=K,
        exact=variant != "ignore",
        placement=placement,
        worker_coefficients=tuple(tuple(frozen(c) for c in edge) for edge in coefs),
        edge_targets=frozen(edge_tier.B),
        variant=variant,
        edge_tier=edge_tier,
        worker_tiers=tuple(worker_tiers),
        points=points,
        worker_coefficients_lo=tuple(coefs_lo) if any(x is not None for x in coefs_lo) else (),
    )
