"""Hand-written validation helpers: every error names the dotted field path and what is allowed.

A tiny vocabulary (mapping, keys, int, float, choice, ...) used by every section parser, so the
messages have one shape: ``"<dotted.path>: <what is wrong>; <what is allowed>"``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any


class ScenarioError(ValueError):
    """An invalid scenario. ``field`` is the dotted path (``"topology.workers_per_edge[2]"``)."""

    def __init__(self, field: str, message: str) -> None:
        if len(message) > 400:  # never echo a large input back (e.g. an expanded alias bomb)
            message = message[:397] + "..."
        self.field = field
        self.detail = message
        super().__init__(f"{field}: {message}" if field else message)


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED: Any = _Required()


def join(path: str, key: str | int) -> str:
    """``join("a", "b") == "a.b"``, ``join("a", 2) == "a[2]"``, ``join("", "b") == "b"``."""
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def type_name(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def as_mapping(value: Any, path: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ScenarioError(path, f"must be a mapping, got {type_name(value)} {value!r}")
    for key in value:
        if not isinstance(key, str):
            raise ScenarioError(path, f"keys must be strings, got {type_name(key)} {key!r}")
    return value


def check_keys(section: Mapping[str, Any], allowed: Iterable[str], path: str) -> None:
    allowed = sorted(allowed)
    for key in section:
        if key not in allowed:
            raise ScenarioError(join(path, key), f"unknown key; allowed keys: {', '.join(allowed)}")


def _lookup(section: Mapping[str, Any], key: str, default: Any, path: str) -> Any:
    value = section.get(key, default)
    if value is REQUIRED:
        raise ScenarioError(join(path, key), "is required")
    return value


def to_int(value: Any, path: str, lo: int | None = None, hi: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ScenarioError(path, f"must be an integer, got {type_name(value)} {value!r}")
    if lo is not None and value < lo:
        raise ScenarioError(path, f"must be >= {lo}, got {value}")
    if hi is not None and value > hi:
        raise ScenarioError(path, f"must be <= {hi}, got {value}")
    return value


def get_int(
    section: Mapping[str, Any],
    key: str,
    path: str,
    default: Any = REQUIRED,
    lo: int | None = None,
    hi: int | None = None,
) -> Any:
    """An integer in [lo, hi]; ``None`` passes only if it is the default (optional field)."""
    value = _lookup(section, key, default, path)
    if value is None and default is None:
        return None
    return to_int(value, join(path, key), lo, hi)


def to_float(
    value: Any,
    path: str,
    lo: float | None = None,
    hi: float | None = None,
    lo_open: bool = False,
) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ScenarioError(path, f"must be a number, got {type_name(value)} {value!r}")
    value = float(value)
    if math.isnan(value):
        raise ScenarioError(path, "must be a number, got NaN")
    if lo is not None and (value < lo or (lo_open and value == lo)):
        raise ScenarioError(path, f"must be {'>' if lo_open else '>='} {lo}, got {value}")
    if hi is not None and value > hi:
        raise ScenarioError(path, f"must be <= {hi}, got {value}")
    if math.isinf(value) and hi is None:
        raise ScenarioError(path, "must be finite, got infinity")
    return value


def get_float(
    section: Mapping[str, Any],
    key: str,
    path: str,
    default: Any = REQUIRED,
    lo: float | None = None,
    hi: float | None = None,
    lo_open: bool = False,
) -> Any:
    """A finite number in [lo, hi] (``(lo, hi]`` with ``lo_open``); ``None`` only as default."""
    value = _lookup(section, key, default, path)
    if value is None and default is None:
        return None
    return to_float(value, join(path, key), lo, hi, lo_open)


def get_choice(
    section: Mapping[str, Any], key: str, path: str, choices: Iterable[str], default: Any = REQUIRED
) -> str:
    choices = tuple(choices)
    value = _lookup(section, key, default, path)
    if value not in choices:
        raise ScenarioError(
            join(path, key),
            f"must be one of {', '.join(choices)}, got {type_name(value)} {value!r}",
        )
    return str(value)


def get_bool(section: Mapping[str, Any], key: str, path: str, default: Any = REQUIRED) -> bool:
    value = _lookup(section, key, default, path)
    if not isinstance(value, bool):
        raise ScenarioError(
            join(path, key), f"must be true or false, got {type_name(value)} {value!r}"
        )
    return value


def get_str(section: Mapping[str, Any], key: str, path: str, default: Any = REQUIRED) -> Any:
    value = _lookup(section, key, default, path)
    if value is None and default is None:
        return None
    if not isinstance(value, str) or not value:
        raise ScenarioError(
            join(path, key), f"must be a non-empty string, got {type_name(value)} {value!r}"
        )
    return value


def get_list(section: Mapping[str, Any], key: str, path: str, default: Any = REQUIRED) -> list[Any]:
    value = _lookup(section, key, default, path)
    if not isinstance(value, list | tuple):
        raise ScenarioError(join(path, key), f"must be a list, got {type_name(value)} {value!r}")
    return list(value)
