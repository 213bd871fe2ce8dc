"""Junk in any key of a model or data spec gives a LearningSpecError naming the key."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from common.learning import LearningSpecError, validate_data_spec, validate_model_spec

JUNK = st.none() | st.booleans() | st.integers(-(2**40), 2**40) | st.floats() | st.text(max_size=8)
MODEL_KEYS = ["kind", "l2", "hidden", "activation", "extra"]
DATA_KEYS = [
    "kind",
    "test_fraction",
    "seed",
    "n_samples",
    "n_features",
    "n_classes",
    "noise",
    "path",
    "max_train",
    "extra",
]


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(["logreg", "mlp"]), st.sampled_from(MODEL_KEYS), JUNK)
def test_model_spec_junk(kind: str, key: str, value: Any) -> None:
    try:
        validate_model_spec({"kind": kind, key: value})
    except LearningSpecError as exc:
        assert exc.field in MODEL_KEYS


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(["digits", "synthetic", "mnist"]), st.sampled_from(DATA_KEYS), JUNK)
def test_data_spec_junk(kind: str, key: str, value: Any) -> None:
    spec = {"kind": kind, "path": "somewhere"} if kind == "mnist" else {"kind": kind}
    try:
        validate_data_spec({**spec, key: value})
    except LearningSpecError as exc:
        assert exc.field in DATA_KEYS
