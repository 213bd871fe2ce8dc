"""Error types of the coding core. All are ``ValueError`` so callers can catch them broadly."""

from __future__ import annotations


class InfeasibleCodeError(ValueError):
    """A code that cannot be built: the message names the violated condition and the way out.

    ``field`` names the request field at fault when there is one (``"s_e"``, ``"s_w"``,
    ``"s"``, ``"K"``, ``"scheme"``, ``"workers_per_edge"``), so that a caller such as the scenario
    checker can point at its own field (``code.s_e``) with the core's message."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class NumericallyUnstableCodeError(InfeasibleCodeError):
    """The code exists but its worst-case float64 decode error exceeds the requested tolerance."""


class DecodeError(ValueError):
    """Decoding is impossible as asked, e.g. too few responders (message names the shortfall)."""


class CodeSpecError(ValueError):
    """A code spec (``code.spec()`` / JSON) is malformed: the message names the field."""
