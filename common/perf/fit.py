"""The model the optimiser searches with, for straggler models the exact method cannot take."""

from __future__ import annotations

import dataclasses

import numpy as np

from common.perf.system import StragglerModel, SystemModel


def optimisation_model(system: SystemModel) -> SystemModel:
    """The model the optimiser searches with: the system itself, except that a replayed trace
    (correlated rows, no exact method) is replaced by a per-worker shifted-exponential fit
    (shift = the worker's fastest time, rate from its mean excess), both per unit load."""
    st = system.straggler
    if st.kind != "trace" or st.trace is None:
        return system
    per_load = np.asarray(st.trace, dtype=float) / st.trace_load  # (T, M) seconds per unit load
    shift = per_load.min(axis=0)
    excess = per_load.mean(axis=0) - shift
    rows, w = [], 0
    for profiles in system.workers:
        row = []
        for p in profiles:
            rate = float(1.0 / excess[w]) if excess[w] > 0 else float("inf")
            row.append(dataclasses.replace(p, shift_s=float(shift[w]), rate=rate))
            w += 1
        rows.append(tuple(row))
    return dataclasses.replace(system, workers=tuple(rows), straggler=StragglerModel())
