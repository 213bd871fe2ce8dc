"""Honest table cells: ``-`` where there is no figure.

ratio_or_none(num, den) -> float | None     # None: no meaningful ratio (common.perf.ratio)
cell(value, "8.2f") -> str                  # "-" for None / NaN / inf, else format()
"""

from __future__ import annotations

from common.perf.ratio import finite, ratio_or_none

__all__ = ["cell", "finite", "ratio_or_none"]


def cell(value: float | None, spec: str) -> str:
    """One table cell: ``format(value, spec)``, or ``-`` right-aligned to the spec's width
    when there is no finite value."""
    number = finite(value)
    if number is None:
        width = spec.split(".")[0].lstrip("<>^=+- ")
        return "-".rjust(int(width)) if width.isdigit() else "-"
    return format(value, spec)
