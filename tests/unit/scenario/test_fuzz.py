"""Any junk in any field gives a ScenarioError naming a field, never another exception."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from common.scenario import ScenarioError, parse_scenario

from .helpers import base, with_field


def _paths(node: Any, prefix: str = "") -> list[str]:
    out = [prefix] if prefix else []
    if isinstance(node, dict):
        for key, value in node.items():
            out += _paths(value, f"{prefix}.{key}" if prefix else key)
    elif isinstance(node, list):
        for k, value in enumerate(node):
            out += _paths(value, f"{prefix}.{k}")
    return out


PATHS = _paths(base())
JUNK = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**40), 2**40)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=6,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(PATHS), JUNK)
def test_junk_in_any_field_is_a_scenario_error(path: str, value: Any) -> None:
    try:
        parse_scenario(with_field(base(), path, value))
    except ScenarioError as exc:
        assert exc.field, f"no field named for {path}={value!r}: {exc}"
