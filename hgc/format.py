"""Honest table cells: one rule for every ratio the project prints or writes to JSON.

A ratio is only a figure when both its parts are finite numbers and the denominator is not
~0. A simulator that predicts 0 s (a scenario with no modelled compute) must give ``-`` in
the ``meas/sim`` column and ``null`` in ``summary.json``, never ``1834978071780.44``::

    ratio_or_none(num, den) -> float | None     # None: no meaningful ratio
    cell(value, "8.2f") -> str                  # "-" for None / NaN / inf, else format()

"~0" is ``|den| <= ABS_TINY`` (a nanosecond, for the seconds that the tables divide: no
iteration time, prediction or byte count is meaningfully smaller) or ``|den| <= REL_TINY *
|num|`` (a ratio beyond 1e9 only reports that the denominator is rounding noise).
"""

from __future__ import annotations

import math
import numbers

ABS_TINY = 1e-9
REL_TINY = 1e-9


def finite(value: object) -> float | None:
    """``value`` as a float when it is a finite real number (bools are not), else None."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def ratio_or_none(num: float | None, den: float | None) -> float | None:
    """``num / den``, or None when either is missing or non-finite or ``den`` is ~0."""
    n, d = finite(num), finite(den)
    if n is None or d is None or abs(d) <= max(ABS_TINY, REL_TINY * abs(n)):
        return None
    ratio = n / d
    return ratio if math.isfinite(ratio) else None


def cell(value: float | None, spec: str) -> str:
    """One table cell: ``format(value, spec)``, or ``-`` right-aligned to the spec's width
    when there is no finite value."""
    number = finite(value)
    if number is None:
        width = spec.split(".")[0].lstrip("<>^=+- ")
        return "-".rjust(int(width)) if width.isdigit() else "-"
    return format(value, spec)
