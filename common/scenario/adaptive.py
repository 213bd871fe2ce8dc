"""The scenario's ``adaptive`` section (``hgc-adaptive``, docs/adaptive.md)::

    adaptive: {window: 20, threshold: 0.05, schemes: [hgc-jncss, hgc-hetero]}

``window``: successful iterations between refits (an integer in [2, 100000]); ``threshold``:
the smallest predicted gain (a fraction in [0, 1)) that makes the master switch plans;
``schemes``: the optimisers whose plans compete (``hgc-jncss``, ``hgc-hetero``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from common.scenario.fields import ScenarioError

PLANNERS = ("hgc-jncss", "hgc-hetero")
KEYS = ("window", "threshold", "schemes", "recheck")


@dataclass(frozen=True)
class Adaptive:
    window: int = 20
    threshold: float = 0.05
    schemes: tuple[str, ...] = PLANNERS
    recheck: bool = False  # after a switch, back to the plan before if it measured slower

    def to_json(self) -> dict[str, Any]:
        return {
            "window": self.window,
            "threshold": self.threshold,
            "schemes": list(self.schemes),
            "recheck": self.recheck,
        }


def parse_adaptive(value: Any, path: str = "adaptive") -> Adaptive:
    """The section, or the defaults when absent; ``ScenarioError`` naming the field."""
    if value is None:
        return Adaptive()
    if not isinstance(value, dict):
        raise ScenarioError(path, f"must be a mapping, got {type(value).__name__}")
    for key in value:
        if key not in KEYS:
            raise ScenarioError(f"{path}.{key}", f"unknown key; allowed: {', '.join(KEYS)}")
    window = value.get("window", Adaptive.window)
    if isinstance(window, bool) or not isinstance(window, int) or not 2 <= window <= 100_000:
        raise ScenarioError(f"{path}.window", f"must be an integer in [2, 100000], got {window!r}")
    threshold = value.get("threshold", Adaptive.threshold)
    if (
        isinstance(threshold, bool)
        or not isinstance(threshold, int | float)
        or not (math.isfinite(threshold) and 0.0 <= threshold < 1.0)
    ):
        raise ScenarioError(f"{path}.threshold", f"must be a number in [0, 1), got {threshold!r}")
    schemes = value.get("schemes", list(PLANNERS))
    if not isinstance(schemes, list) or not schemes:
        raise ScenarioError(f"{path}.schemes", f"must be a non-empty list, got {schemes!r}")
    for k, s in enumerate(schemes):
        if s not in PLANNERS:
            raise ScenarioError(
                f"{path}.schemes[{k}]", f"must be one of {', '.join(PLANNERS)}, got {s!r}"
            )
    recheck = value.get("recheck", False)
    if not isinstance(recheck, bool):
        raise ScenarioError(f"{path}.recheck", f"must be true or false, got {recheck!r}")
    return Adaptive(int(window), float(threshold), tuple(dict.fromkeys(schemes)), recheck)
