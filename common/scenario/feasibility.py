"""The scenario's ``code`` section checked with the coding core's own feasibility rule
(``common.coding.check_scheme``, spec section 2), so a bad tolerance or K is rejected with
the field name before anything is built, in the very words the core would use.

The tolerances are checked as every fixed scheme would use them (``s_e``/``s_w`` as ``hgc``,
``s`` as ``flat-crc``), since ``hgc run --schemes`` may pick schemes the file does not list;
``K`` (and flat-frc's divisibility) against each fixed scheme the scenario lists.
"""

from __future__ import annotations

from collections.abc import Sequence

from common.coding import (
    InfeasibleCodeError,
    Tolerances,
    check_scheme,
    largest_feasible_s_e,
    scheme,
)
from common.scenario.fields import ScenarioError, join

__all__ = ["check_code", "largest_feasible_s_e"]


def check_code(
    code: Tolerances,
    workers_per_edge: Sequence[int],
    schemes: Sequence[str],
    path: str = "code",
) -> None:
    """Raise ``ScenarioError`` on ``<path>.s_e`` / ``.s_w`` / ``.s`` / ``.K`` if infeasible."""
    wpe = tuple(workers_per_edge)
    checks = [("hgc", Tolerances(code.s_e, code.s_w), False)]
    checks.append(("flat-crc", Tolerances(s=code.s), False))
    checks += [(name, code, True) for name in schemes if scheme(name).is_fixed]
    for name, tol, listed in checks:
        try:
            check_scheme(name, wpe, tol)
        except InfeasibleCodeError as exc:
            field = join(path, exc.field) if exc.field else path
            where = f" ({name} is listed in schemes)" if listed else ""
            raise ScenarioError(field, f"{exc}{where}") from None
