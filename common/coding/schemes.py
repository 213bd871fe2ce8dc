"""The scheme registry: every scheme the project runs, in one table, and the one tolerance type.

Everything that lists, orders, validates or plans schemes reads this table: the coding core
(``make_code``), the planner and the simulator (``common.perf``), the scenario checks
(``common.scenario``), ``hgc run`` / ``hgc simulate`` / ``hgc compose``. Adding a scheme is
adding a row here (and, for a new family, teaching the planner about it).

Families:

- ``hierarchical``: a code over every node, edges decode their workers, the master decodes
  the edges; the scheme's own tolerances come from :class:`Tolerances`.
- ``flat``: one code over all M workers (Tandon et al.); edges only relay.
- ``optimised``: the planner chooses tolerances (and, for JNCSS, the nodes) to minimise the
  expected iteration time; it builds the ``code`` scheme named in its row.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from common.coding.bounds import check_feasible, check_K, check_topology
from common.coding.errors import InfeasibleCodeError
from common.coding.flat import check_flat

FAMILIES = ("hierarchical", "flat", "optimised")
TOLERANCE_FIELDS = ("s_e", "s_w", "s")


@dataclass(frozen=True)
class Tolerances:
    """What a scheme tolerates and how many partitions it uses (a scenario's ``code`` section).

    ``s_e`` / ``s_w``: edge / worker stragglers of the hierarchical schemes; ``s``: stragglers
    among all M workers of the flat schemes; ``K``: number of partitions of the fixed schemes.
    ``None`` means "not fixed": the planner chooses the tolerance that minimises the expected
    iteration time, and the smallest valid K. A scheme takes from here only the fields its
    registry row lists (``uncoded`` ignores all of them; ``worker-gc`` takes only ``s_w``).
    """

    s_e: int | None = None
    s_w: int | None = None
    s: int | None = None
    K: int | None = None


@dataclass(frozen=True)
class Scheme:
    """One row of the registry.

    ``takes``: the :class:`Tolerances` fields this scheme uses (the others are 0 for the fixed
    families, chosen by the planner for ``optimised``); ``code``: the ``make_code`` scheme it
    builds (``hgc-hetero``: ``code_from_placement``); ``selects_nodes``: the planner may leave
    nodes out; ``exact``: decodes the exact gradient; ``default``: run when a scenario lists no
    schemes."""

    name: str
    family: str
    takes: tuple[str, ...]
    code: str
    exact: bool = True
    default: bool = True
    selects_nodes: bool = False
    summary: str = ""

    @property
    def is_flat(self) -> bool:
        return self.family == "flat"

    @property
    def is_fixed(self) -> bool:
        """Tolerances from the user (and K honoured), every node taking part."""
        return self.family != "optimised"


# Table order: the order of every table the project prints.
_ROWS = (
    Scheme("uncoded", "hierarchical", (), "uncoded", summary="no redundancy; waits for everyone"),
    Scheme("flat-frc", "flat", ("s",), "flat-frc", summary="Tandon's fractional repetition"),
    Scheme("flat-crc", "flat", ("s",), "flat-crc", summary="Tandon's cyclic repetition"),
    Scheme("worker-gc", "hierarchical", ("s_w",), "worker-gc", summary="coding at workers only"),
    Scheme("edge-gc", "hierarchical", ("s_e",), "edge-gc", summary="coding at edges only"),
    Scheme("hgc", "hierarchical", ("s_e", "s_w"), "hgc", summary="hierarchical gradient code"),
    Scheme(
        "fr",
        "hierarchical",
        ("s_e", "s_w"),
        "fr",
        default=False,
        summary="hgc forced to its 0/1 fractional-repetition variant",
    ),
    Scheme(
        "hgc-best-fixed",
        "optimised",
        (),
        "hgc",
        default=False,
        summary="hgc on every node with the (s_e, s_w) that minimise E[T]",
    ),
    Scheme(
        "hgc-jncss",
        "optimised",
        (),
        "hgc",
        selects_nodes=True,
        summary="joint node and coding-scheme selection (JNCSS)",
    ),
    Scheme(
        "hgc-hetero",
        "optimised",
        (),
        "hgc-hetero",
        selects_nodes=True,
        summary="JNCSS with speed-proportional unequal loads",
    ),
    Scheme(
        "hgc-adaptive",
        "optimised",
        (),
        "hgc-hetero",
        default=False,
        selects_nodes=True,
        summary="re-plans JNCSS / unequal loads from measurements while training",
    ),
    Scheme(
        "ignore",
        "hierarchical",
        ("s_e", "s_w"),
        "ignore",
        exact=False,
        default=False,
        summary="uncoded, ignoring the slowest (rescaled, not exact)",
    ),
)

REGISTRY: dict[str, Scheme] = {row.name: row for row in _ROWS}
#: every scheme name, in table order
SCHEME_NAMES: tuple[str, ...] = tuple(REGISTRY)
#: the schemes a scenario runs when it lists none
DEFAULT_SCHEMES: tuple[str, ...] = tuple(r.name for r in _ROWS if r.default)


def scheme(name: str) -> Scheme:
    """The registry row of ``name``; :class:`InfeasibleCodeError` naming the known ones."""
    try:
        return REGISTRY[name]
    except (KeyError, TypeError):
        raise InfeasibleCodeError(
            f"scheme: unknown {name!r}; known: {', '.join(SCHEME_NAMES)}", "scheme"
        ) from None


def table_order(names: Sequence[str]) -> list[str]:
    """``names`` in the registry's table order (unknown names raise, naming them)."""
    for name in names:
        scheme(name)
    wanted = set(names)
    return [n for n in SCHEME_NAMES if n in wanted]


def fixed_tolerances(name: str, tol: Tolerances) -> Tolerances:
    """The tolerances scheme ``name`` runs with under ``tol``: the fields it takes from
    ``tol`` (``None`` left for the planner to choose), 0 for the others; for ``optimised``
    schemes every tolerance ``None`` (chosen) and no K. Flat schemes have s_e = s_w = None."""
    row = scheme(name)
    if row.family == "optimised":
        return Tolerances()
    if row.is_flat:
        return Tolerances(s=tol.s, K=tol.K)
    s_e = tol.s_e if "s_e" in row.takes else 0
    s_w = tol.s_w if "s_w" in row.takes else 0
    return Tolerances(s_e=s_e, s_w=s_w, K=tol.K)


def check_scheme(name: str, workers_per_edge: Sequence[int], tol: Tolerances) -> Tolerances:
    """Feasibility of a fixed scheme on a topology, without building the code: raise
    :class:`InfeasibleCodeError` (with ``field``) naming the violated condition and what is
    possible, or return the resolved tolerances (every applicable field an int, K the smallest
    valid one when not given). A tolerance left ``None`` is not checked (the planner picks a
    feasible one). Optimised schemes are always feasible here (the planner searches).

    The same conditions ``make_code`` enforces, so a checked request builds."""
    row = scheme(name)
    m = check_topology(workers_per_edge)
    fixed = fixed_tolerances(name, tol)
    if row.family == "optimised":
        return fixed
    if row.is_flat:
        if fixed.s is None:
            return fixed
        return Tolerances(s=fixed.s, K=check_flat(row.code, m, fixed.s, fixed.K))
    if fixed.s_e is None or fixed.s_w is None:
        return fixed
    if row.code == "ignore":
        check_ignore(m, fixed.s_e, fixed.s_w)
        return Tolerances(fixed.s_e, fixed.s_w, K=check_K(m, 0, 0, fixed.K))
    check_feasible(m, fixed.s_e, fixed.s_w)
    return Tolerances(fixed.s_e, fixed.s_w, K=check_K(m, fixed.s_e, fixed.s_w, fixed.K))


def check_ignore(workers_per_edge: Sequence[int], s_e: int, s_w: int) -> None:
    """``ignore`` waits for n - s_e edges and m_i - s_w workers: at least one of each."""
    m = check_topology(workers_per_edge)
    if not 0 <= s_e < len(m):
        raise InfeasibleCodeError(
            f"ignore: needs 0 <= s_e <= n_edges-1 = {len(m) - 1}, got s_e={s_e}", "s_e"
        )
    if not 0 <= s_w < min(m):
        raise InfeasibleCodeError(
            f"ignore: needs 0 <= s_w <= min m_i - 1 = {min(m) - 1}, got s_w={s_w}", "s_w"
        )
