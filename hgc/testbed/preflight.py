"""Checks made before any node starts, so an impossible run fails at once with one line
instead of minutes later with a misleading one (a missing heartbeat, an OOM kill):

- ``check_training_types``: every training field of a run description has its type
  (``"iterations": "ten"`` names the field, not a ``'>=' not supported`` from deep inside);
- ``check_message_size``: the gradient of the model fits the codec's message cap
  (``common.runtime.codec.Limits.max_total_bytes``); the message names both;
- ``check_memory``: the estimated memory of the cluster (one process per node) fits this
  machine; the message gives the estimate.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

# measured: RSS of an idle worker / edge / master process (python + numpy + zmq +
# prometheus-client) is 50-60 MB on x86_64; 56 MB is the round figure used for estimates
NODE_BASE_BYTES = 56 << 20
_TYPES: dict[str, type | tuple[type, ...]] = {
    "int": int,
    "float": (int, float),
    "str": str,
    "bool": bool,
}


class PreflightError(ValueError):
    """The run cannot work as described; one line naming the field or the figures."""


def check_training_types(training: Mapping[str, Any], where: str = "training") -> None:
    """Each known field of ``training`` has the type ``TrainingConfig`` declares."""
    from services.master.state import TrainingConfig

    for f in dataclasses.fields(TrainingConfig):
        if f.name not in training or not isinstance(f.type, str):
            continue
        allowed = [t.strip() for t in f.type.split("|")]
        if not set(allowed) & set(_TYPES):
            continue
        value = training[f.name]
        if value is None and "None" in allowed:
            continue
        ok = any(
            isinstance(value, _TYPES[t]) and (t == "bool" or not isinstance(value, bool))
            for t in allowed
            if t in _TYPES
        )
        if not ok:
            shown = repr(value)
            shown = shown if len(shown) <= 40 else shown[:37] + "..."
            raise PreflightError(
                f"{where}.{f.name}: must be {' or '.join(allowed)}, "
                f"got {type(value).__name__} {shown}"
            )


def gradient_bytes(model_spec: Mapping[str, Any], data_spec: Mapping[str, Any]) -> int:
    """Bytes of one gradient (float64) of the model on the data's shape; nothing allocated."""
    from common.learning import LearningSpecError, build_model, dataset_shape

    try:
        _, n_features, n_classes = dataset_shape(dict(data_spec))
        return 8 * build_model(dict(model_spec), n_features, n_classes).n_params
    except (LearningSpecError, OSError, ValueError) as exc:
        raise PreflightError(
            f"data_spec / model_spec: {' '.join(str(exc).split())[:300]}"
        ) from None


def check_message_size(
    model_spec: Mapping[str, Any], data_spec: Mapping[str, Any], cap: int | None = None
) -> int:
    """The gradient (and the parameters, the largest array any message carries) must fit the
    codec's cap; returns the gradient's size in bytes."""
    from common.runtime.codec import Limits

    cap = Limits().max_total_bytes if cap is None else cap
    size = gradient_bytes(model_spec, data_spec)
    if size > cap:
        raise PreflightError(
            f"model_spec: the model's gradient is {size / 2**20:.0f} MiB ({size // 8} "
            f"parameters x 8 bytes), more than the message size cap of {cap / 2**20:.0f} MiB "
            "(codec max_total_bytes); use a smaller model"
        )
    return size


def estimate_bytes(
    workers_per_edge: Sequence[int], model_spec: Mapping[str, Any], data_spec: Mapping[str, Any]
) -> int:
    """Memory of a local cluster: per process a fixed base, plus a few copies of the
    parameters (parameters, gradient, message buffers) and, at the master, the data set."""
    from common.learning import dataset_shape

    params = gradient_bytes(model_spec, data_spec)  # checks the specs, one line
    n_train, n_features, _ = dataset_shape(dict(data_spec))
    nodes = 1 + len(workers_per_edge) + sum(workers_per_edge)
    data = 8 * n_train * (n_features + 1)
    return nodes * (NODE_BASE_BYTES + 4 * params) + 2 * data


def available_bytes() -> int | None:
    """MemAvailable of this machine (None where /proc/meminfo does not say)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def check_memory(
    workers_per_edge: Sequence[int],
    model_spec: Mapping[str, Any],
    data_spec: Mapping[str, Any],
    available: int | None = None,
) -> int:
    """Refuse a cluster whose estimated memory exceeds what this machine has available;
    returns the estimate in bytes."""
    need = estimate_bytes(workers_per_edge, model_spec, data_spec)
    have = available_bytes() if available is None else available
    if have is not None and need > have:
        nodes = 1 + len(workers_per_edge) + sum(workers_per_edge)
        raise PreflightError(
            f"topology: {nodes} processes need about {need / 2**30:.1f} GiB "
            f"(~{NODE_BASE_BYTES >> 20} MiB each plus parameters and data), more than the "
            f"{have / 2**30:.1f} GiB available on this machine"
        )
    return need


def preflight(config: Mapping[str, Any], where: str = "training") -> None:
    """Every check above on a run description (``code.workers_per_edge`` or
    ``code_spec.workers_per_edge``, ``model_spec``, ``data_spec``, ``training``)."""
    training = config.get("training")
    if isinstance(training, Mapping):
        check_training_types(training, where)
    model_spec, data_spec = config.get("model_spec"), config.get("data_spec")
    if not isinstance(model_spec, Mapping) or not isinstance(data_spec, Mapping):
        return
    check_message_size(model_spec, data_spec)
    code = config.get("code_spec") or config.get("code") or {}
    wpe = code.get("workers_per_edge") if isinstance(code, Mapping) else None
    if isinstance(wpe, list | tuple) and all(
        isinstance(m, int) and not isinstance(m, bool) and m >= 0 for m in wpe
    ):
        check_memory(wpe, model_spec, data_spec)
