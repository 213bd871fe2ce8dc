"""Ratios that are figures or nothing: one rule for every ratio the project computes.

A ratio is only a figure when both its parts are finite numbers and the denominator is not
~0. A simulator that predicts 0 s (a scenario with no modelled compute) must give ``-`` in a
table and ``null`` in JSON, never ``1834978071780.44``. Pure (the simulator uses it); the
application's table cells are ``hgc.format.cell``.

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
