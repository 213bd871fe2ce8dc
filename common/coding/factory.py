"""Building codes by scheme name, from a placement, or from a spec (the public entry points)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from common.coding.bounds import check_topology
from common.coding.errors import CodeSpecError, InfeasibleCodeError, NumericallyUnstableCodeError
from common.coding.flat import FlatCode, make_flat
from common.coding.hierarchical import HierarchicalCode, build_hierarchical
from common.coding.lagrange import DEFAULT_POINTS, POINT_KINDS
from common.coding.placement import (
    cyclic_placement,
    fr_applies,
    fr_groups,
    fr_placement,
    normalise_placement,
)
from common.coding.schemes import REGISTRY, Tolerances, check_scheme

# The schemes make_code builds (a code, not a plan): every registry row's code but hgc-hetero,
# which needs a placement (code_from_placement).
CODE_SCHEMES = tuple(
    dict.fromkeys(row.code for row in REGISTRY.values() if row.code != "hgc-hetero")
)
FLAT_CODE_SCHEMES = tuple(row.code for row in REGISTRY.values() if row.is_flat)
# Default refusal threshold for the estimated worst relative decode error (docs/numerics.md).
DEFAULT_TOLERANCE = 1e-6

Code = HierarchicalCode | FlatCode


def make_code(
    scheme: str,
    workers_per_edge: Sequence[int],
    s_e: int = 0,
    s_w: int = 0,
    *,
    s: int | None = None,
    K: int | None = None,
    points: str = DEFAULT_POINTS,
    tolerance: float | None = DEFAULT_TOLERANCE,
    orders: dict[str, Any] | None = None,
    gauss: dict[str, Any] | None = None,
) -> Code:
    """Build a code of a named scheme (see ``CODE_SCHEMES`` and docs/architecture.md).

    Parameters
    ----------
    scheme : one of ``CODE_SCHEMES``.
    workers_per_edge : m_i for each edge i (length n_edges).
    s_e, s_w : edge / worker stragglers tolerated (hierarchical schemes).
    s : stragglers among all M workers (flat schemes only).
    K : number of partitions; default the smallest valid one.
    points : evaluation points of the Lagrange tiers (docs/numerics.md).
    tolerance : refuse (``NumericallyUnstableCodeError``) a Lagrange code whose estimated worst
        relative float64 decode error exceeds it; None to skip the check.
    orders : point orderings recorded in a spec ({"edge": int, "workers": [int]} or, for
        flat codes, {"order": int}); None to choose them (see docs/numerics.md).
    gauss : Gaussian tiers recorded in a spec ({"edge": seed | None, "workers": [seed | None]}
        or, for flat codes, {"seed": int}); None: chosen automatically where the Lagrange
        points are not accurate enough (docs/numerics.md).

    Raises
    ------
    InfeasibleCodeError naming the violated condition and what is possible instead
    (the conditions of ``check_scheme``, the one feasibility rule).
    """
    if scheme not in CODE_SCHEMES:
        raise InfeasibleCodeError(
            f"scheme: unknown {scheme!r}; known: {', '.join(CODE_SCHEMES)}", "scheme"
        )
    if points not in POINT_KINDS:
        raise InfeasibleCodeError(f"points: unknown {points!r}; known: {', '.join(POINT_KINDS)}")
    m = check_topology(workers_per_edge)
    row = REGISTRY[scheme]
    if row.is_flat:
        if s is None:
            raise InfeasibleCodeError(f"{scheme}: give s (stragglers among all M workers)", "s")
        if s_e or s_w:
            raise InfeasibleCodeError(
                f"{scheme}: takes s, not s_e/s_w (got s_e={s_e}, s_w={s_w})", "s_e"
            )
        order = None if orders is None else orders.get("order")
        seed = None if gauss is None else gauss.get("seed")
        code: Code = make_flat(scheme, m, s, K, points, order, seed, fixed=orders is not None)
        return _checked(code, tolerance)
    if s is not None:
        raise InfeasibleCodeError(f"{scheme}: takes s_e and s_w; s is for flat-frc/flat-crc", "s")
    for name, value in (("s_e", s_e), ("s_w", s_w)):
        if name not in row.takes and value:
            raise InfeasibleCodeError(f"{scheme}: {name} must be 0 (got {value}); use hgc", name)
    if scheme == "ignore":
        # uncoded placement; edges wait for m_i - s_w workers, the master for n - s_e edges
        K = _checked_K(scheme, m, s_e, s_w, K)
        return build_hierarchical("ignore", cyclic_placement(m, 0, 0, K), K, s_e, s_w, "ignore")
    check_scheme(scheme, m, Tolerances(s_e, s_w))
    why_not_fr = fr_applies(m, s_e, s_w)
    if scheme == "fr" and why_not_fr:
        raise InfeasibleCodeError(
            f"fr (0/1 variant) does not apply: {why_not_fr}; use scheme hgc (Lagrange "
            f"coefficients, same optimal load)"
        )
    if why_not_fr is None:
        groups = fr_groups(m, s_e, s_w)
        if K is None or K % groups == 0:
            # the 0/1 variant needs only K a multiple of its groups; a given K must also
            # pass the general rule (integer loads, at most MAX_K)
            K = groups if K is None else _checked_K(scheme, m, s_e, s_w, K)
            return build_hierarchical(scheme, fr_placement(m, s_e, s_w, K), K, s_e, s_w, "fr")
        if scheme == "fr":
            raise InfeasibleCodeError(f"K={K}: fr needs K a multiple of {groups}", "K")
    K = _checked_K(scheme, m, s_e, s_w, K)
    code = build_hierarchical(
        scheme, cyclic_placement(m, s_e, s_w, K), K, s_e, s_w, "lagrange", points, orders, gauss
    )
    return _checked(code, tolerance)


def _checked_K(scheme: str, m: tuple[int, ...], s_e: int, s_w: int, K: int | None) -> int:
    valid = check_scheme(scheme, m, Tolerances(s_e, s_w, K=K)).K
    assert valid is not None
    return valid


def _checked(code: Code, tolerance: float | None) -> Code:
    if tolerance is None or code.variant != "lagrange":
        return code
    err = code.decode_error_estimate()
    if err > tolerance:
        raise NumericallyUnstableCodeError(
            f"{code.scheme}: estimated worst relative float64 decode error {err:.3g} exceeds the "
            f"tolerance {tolerance:.3g}; use tolerances whose s+1 divides the tier size (the 0/1 "
            f"variant: s_e+1 | n_edges, s_w+1 | every m_i, or flat-frc), smaller s_e/s_w/s, "
            f"or pass a larger tolerance"
        )
    return code


def code_from_placement(
    placement: Sequence[Sequence[Sequence[int]]],
    K: int,
    s_e: int,
    s_w: int,
    *,
    points: str = DEFAULT_POINTS,
    tolerance: float | None = DEFAULT_TOLERANCE,
    orders: dict[str, Any] | None = None,
    gauss: dict[str, Any] | None = None,
) -> HierarchicalCode:
    """A ``hgc-hetero`` code for any placement covering each partition on >= s_e+1 edges with
    >= s_w+1 holders each (unequal loads allowed). Raises naming an under-covered partition."""
    for name, v in (("s_e", s_e), ("s_w", s_w)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 0:
            raise InfeasibleCodeError(f"{name}: must be an integer >= 0, got {v!r}")
    pl = normalise_placement(placement, K)
    code = build_hierarchical("hgc-hetero", pl, K, s_e, s_w, "lagrange", points, orders, gauss)
    checked = _checked(code, tolerance)
    assert isinstance(checked, HierarchicalCode)
    return checked


def code_from_spec(spec: dict[str, Any], *, tolerance: float | None = None) -> Code:
    """Rebuild the code described by ``code.spec()`` (deterministic: same code on every node).

    ``K`` may be left out (the smallest valid K is used) except for ``hgc-hetero``; ``orders``
    may be left out (the orderings are then searched again, which gives the same result on
    every node of one platform; ship ``code.spec()`` to mix platforms). ``tolerance``: the
    decode-error check of ``make_code``; None (the default) because a node must build the
    code its sender already accepted -- the planner checks once, with the default tolerance.
    """
    if not isinstance(spec, dict):
        raise CodeSpecError(f"code spec: expected a dict, got {type(spec).__name__}")
    scheme = _field(spec, "scheme", str)
    m = _field(spec, "workers_per_edge", list)
    K = _field(spec, "K", int) if "K" in spec or scheme == "hgc-hetero" else None
    points = spec.get("points", DEFAULT_POINTS)
    if scheme in FLAT_CODE_SCHEMES:
        order = {"order": _field(spec, "order", int)} if "order" in spec else None
        seed = _flat_seed(spec)
        return make_code(
            scheme,
            m,
            s=_field(spec, "s", int),
            K=K,
            points=points,
            tolerance=tolerance,
            orders=order,
            gauss=seed,
        )
    s_e, s_w = _field(spec, "s_e", int), _field(spec, "s_w", int)
    orders = _orders(spec, len(m) if scheme != "hgc-hetero" else None)
    gauss = _gauss(spec, len(m))
    wide = _wide(spec, len(m), gauss)
    if wide is not None:
        assert gauss is not None
        gauss = {**gauss, "wide": wide}
    if scheme == "hgc-hetero":
        placement = _field(spec, "placement", list)
        return code_from_placement(
            placement,
            _field(spec, "K", int),
            s_e,
            s_w,
            points=points,
            tolerance=tolerance,
            orders=orders,
            gauss=gauss,
        )
    return make_code(
        scheme, m, s_e, s_w, K=K, points=points, tolerance=tolerance, orders=orders, gauss=gauss
    )


def _orders(spec: dict[str, Any], n_edges: int | None) -> dict[str, Any] | None:
    if "orders" not in spec:
        return None
    orders = spec["orders"]
    if (
        not isinstance(orders, dict)
        or not isinstance(orders.get("edge"), int)
        or not isinstance(orders.get("workers"), list)
        or not all(isinstance(o, int) and o >= 0 for o in orders["workers"])
        or (n_edges is not None and len(orders["workers"]) != n_edges)
    ):
        raise CodeSpecError(
            "code spec: field 'orders' must be {'edge': int, 'workers': [int per edge]}, "
            f"got {orders!r}"
        )
    return orders


def _gauss(spec: dict[str, Any], n_edges: int) -> dict[str, Any] | None:
    """The optional ``gauss`` field of a hierarchical spec: {"edge": seed | null,
    "workers": [seed | null per edge]} (seeds are integers >= 0)."""
    if "gauss" not in spec:
        return None
    g = spec["gauss"]

    def ok(x: Any) -> bool:
        return x is None or (isinstance(x, int) and not isinstance(x, bool) and x >= 0)

    if (
        not isinstance(g, dict)
        or set(g) != {"edge", "workers"}
        or not ok(g["edge"])
        or not isinstance(g["workers"], list)
        or len(g["workers"]) != n_edges
        or not all(ok(x) for x in g["workers"])
    ):
        raise CodeSpecError(
            "code spec: field 'gauss' must be {'edge': seed or null, 'workers': [seed or null "
            f"per edge]}} with seeds integers >= 0, got {g!r}"
        )
    return g


def _wide(spec: dict[str, Any], n_edges: int, gauss: dict[str, Any] | None) -> list[bool] | None:
    """The optional ``wide`` field of a hierarchical spec: [bool per edge], true only for an
    edge whose worker tier is Gaussian (``gauss.workers`` has its seed)."""
    if "wide" not in spec:
        return None
    w = spec["wide"]
    if (
        not isinstance(w, list)
        or len(w) != n_edges
        or not all(isinstance(x, bool) for x in w)
        or (
            any(w)
            and (
                gauss is None
                or any(x and s is None for x, s in zip(w, gauss["workers"], strict=False))
            )
        )
    ):
        raise CodeSpecError(
            "code spec: field 'wide' must be [true or false per edge], true only where "
            f"'gauss' gives that edge's worker tier a seed, got {w!r}"
        )
    return w


def _flat_seed(spec: dict[str, Any]) -> dict[str, Any] | None:
    """The optional ``gauss`` field of a flat spec: the seed (an integer >= 0)."""
    if "gauss" not in spec:
        return None
    seed = spec["gauss"]
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise CodeSpecError(f"code spec: field 'gauss' must be an integer seed >= 0, got {seed!r}")
    return {"seed": seed}


def _field(spec: dict[str, Any], name: str, kind: type) -> Any:
    if name not in spec:
        raise CodeSpecError(f"code spec: missing field {name!r}")
    value = spec[name]
    if not isinstance(value, kind) or isinstance(value, bool):
        raise CodeSpecError(f"code spec: field {name!r} must be {kind.__name__}, got {value!r}")
    return value
