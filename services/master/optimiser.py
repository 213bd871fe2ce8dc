"""The master's update rule on the decoded mean gradient.

``{"kind": "sgd"}`` (the default): ``params -= lr * g``. ``{"kind": "momentum", "beta": 0.9}``:
``v = beta * v + g; params -= lr * v`` (heavy ball). ``{"kind": "adam", "beta1": 0.9,
"beta2": 0.999, "eps": 1e-8}``: Adam with bias correction (Kingma & Ba). ``g`` is the mean
gradient of the rows the iteration summed (full batch or the exact minibatch), so coded and
uncoded runs that decode the same ``g`` take the same steps. Deterministic, float64.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

OPTIMISER_KINDS = ("sgd", "momentum", "adam")
_KEYS = {
    "sgd": {"kind"},
    "momentum": {"kind", "beta"},
    "adam": {"kind", "beta1", "beta2", "eps"},
}
_DEFAULTS = {"beta": 0.9, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8}


def validate_optimiser(spec: Any) -> dict[str, Any]:
    """The spec with defaults filled in; ``ValueError`` naming the field if it is invalid."""
    if spec is None:
        return {"kind": "sgd"}
    if not isinstance(spec, dict):
        raise ValueError(f"optimiser: must be a mapping, got {type(spec).__name__}")
    kind = spec.get("kind")
    if kind not in OPTIMISER_KINDS:
        raise ValueError(
            f"optimiser.kind: must be one of {', '.join(OPTIMISER_KINDS)}, got {kind!r}"
        )
    unknown = sorted(set(spec) - _KEYS[kind])
    if unknown:
        raise ValueError(
            f"optimiser.{unknown[0]}: unknown key for {kind}; allowed: {sorted(_KEYS[kind])}"
        )
    out: dict[str, Any] = {"kind": kind}
    for key in sorted(_KEYS[kind] - {"kind"}):
        value = spec.get(key, _DEFAULTS[key])
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"optimiser.{key}: must be a number, got {value!r}")
        value = float(value)
        hi_ok = value > 0 if key == "eps" else 0.0 <= value < 1.0
        if not math.isfinite(value) or not hi_ok:
            bound = "> 0" if key == "eps" else "in [0, 1)"
            raise ValueError(f"optimiser.{key}: must be {bound}, got {value}")
        out[key] = value
    return out


class Optimiser:
    """``step(params, g) -> new params``; keeps the momentum / Adam moments between steps."""

    def __init__(self, spec: Any, learning_rate: float) -> None:
        self.spec = validate_optimiser(spec)
        self.lr = float(learning_rate)
        self.t = 0
        self.m: np.ndarray | None = None
        self.v: np.ndarray | None = None

    def state(self) -> tuple[int, np.ndarray | None, np.ndarray | None]:
        """The moments, to ``restore`` when a step's result is not applied (non-finite)."""
        return self.t, self.m, self.v

    def restore(self, state: tuple[int, np.ndarray | None, np.ndarray | None]) -> None:
        # step() rebinds m and v to new arrays, so the saved references are still intact
        self.t, self.m, self.v = state

    def step(self, params: np.ndarray, g_sum: np.ndarray, n_rows: int) -> np.ndarray:
        """One step on the mean gradient ``g_sum / n_rows`` (sgd: the historical expression
        ``params - (lr / n_rows) * g_sum``, bit for bit)."""
        kind = self.spec["kind"]
        self.t += 1
        if kind == "sgd":
            return params - (self.lr / n_rows) * g_sum
        g = g_sum / n_rows
        if self.m is None:
            self.m = np.zeros_like(params)
            self.v = np.zeros_like(params)
        assert self.v is not None
        if kind == "momentum":
            self.m = self.spec["beta"] * self.m + g
            return params - self.lr * self.m
        b1, b2 = self.spec["beta1"], self.spec["beta2"]
        self.m = b1 * self.m + (1.0 - b1) * g
        self.v = b2 * self.v + (1.0 - b2) * (g * g)
        m_hat = self.m / (1.0 - b1**self.t)
        v_hat = self.v / (1.0 - b2**self.t)
        return params - self.lr * m_hat / (np.sqrt(v_hat) + self.spec["eps"])
