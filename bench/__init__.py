"""Benchmarks: ``make bench`` (``python -m bench``). See ``bench/__main__.py``."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Result:
    """One benchmark figure. ``ratio`` results are measured side by side in the same run."""

    section: str
    name: str
    value: float
    unit: str
    target: str = ""  # human-readable target, e.g. "<= 1.5"
    met: bool | None = None  # None when there is no target
