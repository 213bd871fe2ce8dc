"""Error types of the coding core. Both are ``ValueError`` so callers can catch them broadly."""

from __future__ import annotations


class InfeasibleCodeError(ValueError):
    """A code that cannot be built: the message names the violated condition and the way out."""


class NumericallyUnstableCodeError(InfeasibleCodeError):
    """The code exists but its worst-case float64 decode error exceeds the requested tolerance."""


class DecodeError(ValueError):
    """Decoding is impossible as asked, e.g. too few responders (message names the shortfall)."""


class CodeSpecError(ValueError):
    """A code spec (``code.spec()`` / JSON) is malformed: the message names the field."""
