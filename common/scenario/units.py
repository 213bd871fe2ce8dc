"""Bandwidth strings: ``"20mbit"``, ``"512kbit"``, ``"1.5MB/s"``, a plain number of bytes/s,
or ``"unlimited"``/``null`` for an infinitely fast link.

Bit units follow tc (SI, powers of 1000): bit, kbit, mbit, gbit, tbit (case-insensitive).
Byte units are written with a slash to avoid tc's confusing ``mbps`` (= megaBYTES/s):
B/s, kB/s, MB/s, GB/s (SI). ``"20mbit"`` = 2.5e6 bytes/s.
"""

from __future__ import annotations

import math
import re
from typing import Any

from common.scenario.fields import ScenarioError, type_name

_BIT_UNITS = {"bit": 1.0, "kbit": 1e3, "mbit": 1e6, "gbit": 1e9, "tbit": 1e12}
_BYTE_UNITS = {"b/s": 1.0, "kb/s": 1e3, "mb/s": 1e6, "gb/s": 1e9}
_PATTERN = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*([A-Za-z/]+)\s*$")
ALLOWED_UNITS = ", ".join([*_BIT_UNITS, "B/s", "kB/s", "MB/s", "GB/s"])


def parse_bandwidth(value: Any, path: str) -> float:
    """Bytes per second (> 0, possibly ``math.inf``) from a number or a unit string."""
    if value is None or value == "unlimited":
        return math.inf
    if isinstance(value, bool):
        raise ScenarioError(path, f"must be a bandwidth, got {type_name(value)} {value!r}")
    if isinstance(value, int | float):
        rate = float(value)
    elif isinstance(value, str):
        match = _PATTERN.match(value)
        unit = match.group(2).lower() if match else ""
        factor = _BIT_UNITS.get(unit, _BYTE_UNITS.get(unit))
        if match is None or factor is None:
            raise ScenarioError(
                path,
                f"cannot parse bandwidth {value!r}; write a number of bytes/s, 'unlimited', "
                f"or <number><unit> with unit one of {ALLOWED_UNITS}",
            )
        rate = float(match.group(1)) * factor / (8.0 if unit in _BIT_UNITS else 1.0)
    else:
        raise ScenarioError(path, f"must be a bandwidth, got {type_name(value)} {value!r}")
    if not rate > 0 or math.isnan(rate):
        raise ScenarioError(path, f"must be > 0 bytes/s, got {value!r}")
    return rate
