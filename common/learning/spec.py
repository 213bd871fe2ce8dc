"""Validation of the model and data specs (plain dicts that travel in the scenario and over the
wire). Every error names the key and the allowed values; unknown keys are errors."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from common.learning.errors import LearningSpecError

MODEL_KINDS = ("logreg", "mlp", "cnn")
ACTIVATIONS = ("tanh", "relu")
DATA_KINDS = ("digits", "synthetic", "mnist", "cifar10")

_MODEL_KEYS = {
    "logreg": {"kind", "l2"},
    "mlp": {"kind", "l2", "hidden", "activation"},
    "cnn": {"kind", "l2", "channels", "filters", "kernel", "pool", "hidden"},
}
_DATA_KEYS = {
    "digits": {"kind", "test_fraction", "seed"},
    "synthetic": {"kind", "test_fraction", "seed", "n_samples", "n_features", "n_classes", "noise"},
    "mnist": {"kind", "path", "test_fraction", "seed", "max_train", "minibatch"},
    "cifar10": {"kind", "path", "test_fraction", "seed", "max_train", "minibatch"},
}
for _keys in _DATA_KEYS.values():
    _keys.add("minibatch")


def _check_keys(spec: Mapping[str, Any], allowed: set[str], what: str) -> None:
    unknown = sorted(set(spec) - allowed)
    if unknown:
        raise LearningSpecError(
            unknown[0], f"unknown key for {what}; allowed keys: {', '.join(sorted(allowed))}"
        )


def _int(spec: Mapping[str, Any], key: str, default: int | None, lo: int, hi: int | None) -> int:
    value = spec.get(key, default)
    if value is None:
        raise LearningSpecError(key, "is required")
    if isinstance(value, bool) or not isinstance(value, int):
        raise LearningSpecError(key, f"must be an integer, got {type(value).__name__} {value!r}")
    if value < lo or (hi is not None and value > hi):
        bound = f">= {lo}" if hi is None else f"in [{lo}, {hi}]"
        raise LearningSpecError(key, f"must be {bound}, got {value}")
    return value


def _float(spec: Mapping[str, Any], key: str, default: float, lo: float, hi: float) -> float:
    value = spec.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise LearningSpecError(key, f"must be a number, got {type(value).__name__} {value!r}")
    value = float(value)
    if not math.isfinite(value) or value < lo or value > hi:
        raise LearningSpecError(key, f"must be in [{lo}, {hi}], got {value}")
    return value


def _kind(spec: Any, kinds: tuple[str, ...], what: str) -> str:
    if not isinstance(spec, Mapping):
        raise LearningSpecError("", f"{what} spec must be a mapping, got {type(spec).__name__}")
    kind = spec.get("kind")
    if kind not in kinds:
        raise LearningSpecError("kind", f"must be one of {', '.join(kinds)}, got {kind!r}")
    return str(kind)


def validate_model_spec(spec: Any) -> dict[str, Any]:
    """Return the model spec with defaults filled in; raise ``LearningSpecError`` if invalid.

    ``{"kind": "logreg", "l2": 0.0}`` or
    ``{"kind": "mlp", "hidden": 32, "activation": "tanh", "l2": 0.0}`` or
    ``{"kind": "cnn", "channels": 1, "filters": 8, "kernel": 5, "pool": 2, "hidden": 0,
    "l2": 0.0}`` (conv -> ReLU -> max pool -> [dense ReLU of ``hidden`` units if > 0] ->
    dense; the input is ``channels`` square images, see ``common.learning.cnn``).
    """
    kind = _kind(spec, MODEL_KINDS, "model")
    _check_keys(spec, _MODEL_KEYS[kind], f"model kind {kind!r}")
    out: dict[str, Any] = {"kind": kind, "l2": _float(spec, "l2", 0.0, 0.0, 1e6)}
    if kind == "mlp":
        out["hidden"] = _int(spec, "hidden", 32, 1, 100_000)
        activation = spec.get("activation", "tanh")
        if activation not in ACTIVATIONS:
            raise LearningSpecError(
                "activation", f"must be one of {', '.join(ACTIVATIONS)}, got {activation!r}"
            )
        out["activation"] = activation
    if kind == "cnn":
        out["channels"] = _int(spec, "channels", 1, 1, 4096)
        out["filters"] = _int(spec, "filters", 8, 1, 4096)
        out["kernel"] = _int(spec, "kernel", 5, 1, 64)
        out["pool"] = _int(spec, "pool", 2, 1, 64)
        out["hidden"] = _int(spec, "hidden", 0, 0, 100_000)
    return out


def validate_data_spec(spec: Any) -> dict[str, Any]:
    """Return the data spec with defaults filled in; raise ``LearningSpecError`` if invalid.

    - ``{"kind": "digits", "test_fraction": 0.2, "seed": 0}``
    - ``{"kind": "synthetic", "n_samples": 2000, "n_features": 100, "n_classes": 10,
      "noise": 1.0, "test_fraction": 0.2, "seed": 0}``
    - ``{"kind": "mnist", "path": DIR_OR_NPZ, "max_train": None, "test_fraction": 0.0,
      "seed": 0}`` (MNIST keeps its own test set; ``test_fraction`` is unused and must be 0).
      Without ``path`` (None): the vendored 5,000-image sample (4,000 train, 1,000 test,
      ``common/learning/data/README.md``). Fashion-MNIST is the same IDX layout.
    - ``{"kind": "cifar10", "path": DIR, ...}``: the CIFAR-10 binary version
      (``common.learning.cifar``); ``path`` required.
    - every kind: ``minibatch`` (None = full batch, the default): rows each partition
      contributes per iteration (``common.learning.minibatch``).

    The file is not opened here (see ``dataset_shape``/``load_dataset``).
    """
    kind = _kind(spec, DATA_KINDS, "data")
    _check_keys(spec, _DATA_KEYS[kind], f"data kind {kind!r}")
    out: dict[str, Any] = {"kind": kind, "seed": _int(spec, "seed", 0, 0, 2**32 - 1)}
    minibatch = spec.get("minibatch")
    if minibatch is not None:
        out["minibatch"] = _int(spec, "minibatch", None, 1, None)
    if kind in ("mnist", "cifar10"):
        path = spec.get("path")
        if (path is not None or kind == "cifar10") and (not isinstance(path, str) or not path):
            raise LearningSpecError("path", f"must be a non-empty string, got {path!r}")
        out["path"] = path
        out["test_fraction"] = _float(spec, "test_fraction", 0.0, 0.0, 0.0)
        max_train = spec.get("max_train")
        out["max_train"] = None if max_train is None else _int(spec, "max_train", None, 1, None)
        return out
    out["test_fraction"] = _float(spec, "test_fraction", 0.2, 0.0, 0.9)
    if kind == "synthetic":
        out["n_samples"] = _int(spec, "n_samples", 2000, 2, 10_000_000)
        out["n_features"] = _int(spec, "n_features", 100, 1, 10_000_000)
        out["n_classes"] = _int(spec, "n_classes", 10, 2, 100_000)
        out["noise"] = _float(spec, "noise", 1.0, 0.0, 1e6)
    return out
