"""What a worker computes, off the I/O loop: its partitions' rows and its one coded vector."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from common.learning import build_model, dataset_shape
from common.learning import load_partitions as load_partition_rows
from common.learning.minibatch import batch_rows
from common.learning.models import Model
from common.perf.system import StragglerModel, WorkerProfile
from common.runtime.emulation import (
    COMPUTE_MODES,
    ComputeEmulator,
    emulate_compute,
    link_of_entry,
)


@dataclass
class WorkerData:
    """Only this worker's partitions: ``X_parts[k]`` (rows_k, d) and ``y_parts[k]`` (rows_k,)."""

    model: Model
    coefficients: np.ndarray  # (len(partitions),) float64, or longdouble for a wide tier
    X_parts: list[np.ndarray]
    y_parts: list[np.ndarray]
    partitions: tuple[int, ...] = ()  # the partition index of each X_parts entry
    minibatch: int | None = None  # rows per partition per iteration (None: all of them)
    seed: int = 0  # the data spec's seed: with (iteration, partition) it picks the batch

    @property
    def n_rows(self) -> int:
        return sum(len(y) for y in self.y_parts)

    @property
    def nbytes(self) -> int:
        return sum(x.nbytes + y.nbytes for x, y in zip(self.X_parts, self.y_parts, strict=True))


def load_partitions(
    partitions: tuple[int, ...],
    coefficients: np.ndarray,
    n_partitions: int,
    data_spec: dict[str, Any],
    model_spec: dict[str, Any],
) -> WorkerData:
    """This worker's partitions' rows only: the whole dataset is never built (synthetic rows
    are generated per block, MNIST IDX records read one by one; see
    ``common.learning.load_partitions``), so set-up memory is O(own rows)."""
    bad = [k for k in partitions if not 0 <= k < n_partitions]
    if bad:
        raise ValueError(f"partitions {bad} outside 0..{n_partitions - 1}")
    _, n_features, n_classes = dataset_shape(data_spec)
    model = build_model(model_spec, n_features, n_classes)
    X_parts, y_parts = load_partition_rows(data_spec, n_partitions, partitions)
    wide = np.asarray(coefficients).dtype == np.longdouble  # a wide tier (docs/numerics.md)
    coeffs = np.array(coefficients, dtype=np.longdouble if wide else np.float64)
    return WorkerData(
        model, coeffs, X_parts, y_parts, tuple(int(k) for k in partitions),
        data_spec.get("minibatch"), int(data_spec.get("seed", 0)),
    )  # fmt: skip


def coded_gradient(data: WorkerData, params: np.ndarray, iteration: int = 0) -> np.ndarray:
    """z = sum_k c_k g_k(params), shape (P,): one vector whatever the number of partitions.

    With ``data.minibatch`` set, g_k is the summed gradient over partition k's batch at
    ``iteration`` (``common.learning.minibatch.batch_rows``), the same rows on every worker
    holding k, so the decoded vector is exactly the uncoded minibatch gradient.

    Longdouble coefficients (a wide tier): the sum is accumulated in longdouble and returned
    in longdouble (the worker sends it as hi + lo, ``common.coding.combine.split_wide``)."""
    z = np.zeros(data.model.n_params, dtype=data.coefficients.dtype)
    parts = data.partitions or tuple(range(len(data.X_parts)))
    for c, k, X, y in zip(data.coefficients, parts, data.X_parts, data.y_parts, strict=True):
        if c == 0.0:
            continue
        if data.minibatch is not None:
            rows = batch_rows(len(y), data.minibatch, data.seed, iteration, k)
            X, y = X[rows], y[rows]
        g = data.model.gradient_sum(params, X, y)
        z += c * (g.astype(np.longdouble) if z.dtype == np.longdouble else g)
    return z


class Emulation:
    """A worker's compute emulation from its ``emulation_spec`` entry (docs/operations.md).

    Keys (all optional): ``compute`` (delay | work | off | real, default delay), ``fixed_delay_s``
    (extra seconds every iteration), ``shift_s`` + ``rate`` (+ ``straggler``: kind, p_slow,
    p_recover, slowdown) for the straggler model of ``common.runtime.emulation``, ``load``,
    ``worker_index``, ``seed``; ``link`` (a ``Link`` as JSON, parsed strictly by
    ``common.runtime.emulation.link_from_spec``) delays this worker's messages to its edge
    in-process (the edge delays its messages to the worker with the same link).

    A bad entry is a ``ValueError`` whose message starts with ``where`` (the entry's name,
    e.g. ``emulation_spec['worker-0-1']``) and names the field.
    """

    KEYS = frozenset(
        {"compute", "fixed_delay_s", "shift_s", "rate", "straggler", "load", "worker_index",
         "seed", "link", "changes", "link_changes"}
    )  # fmt: skip

    def __init__(self, spec: dict[str, Any], where: str = "emulation") -> None:
        self.link = link_of_entry(spec, where)  # also rejects a spec that is not a map
        unknown = set(spec) - self.KEYS
        if unknown:
            raise ValueError(f"{where}: unknown keys {sorted(unknown)}")
        self.mode = str(spec.get("compute", "delay"))
        if self.mode not in COMPUTE_MODES:
            raise ValueError(f"{where}.compute: must be one of {COMPUTE_MODES}")
        self.fixed_delay_s = float(spec.get("fixed_delay_s", 0.0))
        if self.fixed_delay_s < 0:
            raise ValueError(f"{where}.fixed_delay_s: must be >= 0, got {self.fixed_delay_s}")
        self.model: ComputeEmulator | None = None
        if "shift_s" in spec or "rate" in spec:
            s = dict(spec.get("straggler", {"kind": "shifted-exponential"}))
            if s.get("trace") is not None:
                s["trace"] = np.asarray(s["trace"], dtype=np.float64)
            try:
                straggler = StragglerModel(**s)
            except TypeError as exc:
                raise ValueError(f"{where}.straggler: {exc}") from None
            profile = WorkerProfile(float(spec.get("shift_s", 0.0)), float(spec.get("rate", 1.0)))
            self.model = ComputeEmulator(
                profile,
                straggler,
                float(spec.get("load", 1.0)),
                int(spec.get("worker_index", 0)),
                int(spec.get("seed", 0)),
                _changes(spec.get("changes", []), f"{where}.changes"),
            )

    @property
    def active(self) -> bool:
        if self.mode in ("off", "real"):
            return False
        return self.model is not None or self.fixed_delay_s > 0

    def extra_s(self, iteration: int, measured_s: float) -> float:
        extra = self.fixed_delay_s
        if self.model is not None:
            extra += self.model.extra_delay_s(iteration, measured_s)
        return extra


def _changes(value: Any, where: str) -> list[tuple[int, WorkerProfile]]:
    """``[{iteration, shift_s, rate}, ...]``: the device profile from that iteration on
    (a scenario's ``set-device`` fault)."""
    if not isinstance(value, list):
        raise ValueError(f"{where}: must be a list, got {type(value).__name__}")
    out = []
    for k, c in enumerate(value):
        if not isinstance(c, dict) or set(c) != {"iteration", "shift_s", "rate"}:
            raise ValueError(f"{where}[{k}]: must be a map of iteration, shift_s, rate")
        it, shift, rate = c["iteration"], c["shift_s"], c["rate"]
        if isinstance(it, bool) or not isinstance(it, int) or it < 0:
            raise ValueError(f"{where}[{k}].iteration: must be an integer >= 0, got {it!r}")
        for key, v in (("shift_s", shift), ("rate", rate)):
            if isinstance(v, bool) or not isinstance(v, int | float) or v != v:
                raise ValueError(f"{where}[{k}].{key}: must be a number, got {v!r}")
        if shift < 0 or rate <= 0:
            raise ValueError(f"{where}[{k}]: needs shift_s >= 0 and rate > 0")
        out.append((it, WorkerProfile(float(shift), float(rate))))
    return out


def compute_step(
    data: WorkerData, params: np.ndarray, iteration: int, emulation: Emulation
) -> tuple[np.ndarray, float, float]:
    """The coded vector, total seconds (emulated delay included) and the emulated seconds.

    ``compute: real``: the real computation only; nothing modelled is added, slept or burnt
    (the CPU quota of the worker's device, applied from outside, sets its speed)."""
    started = time.perf_counter()
    z = coded_gradient(data, params, iteration)
    measured = time.perf_counter() - started
    if emulation.mode == "real":
        return z, measured, 0.0
    delayed = emulate_compute(emulation.extra_s(iteration, measured), emulation.mode)
    return z, time.perf_counter() - started, delayed
