"""Minibatches that keep coded training exact.

At iteration ``t`` partition ``k`` contributes the rows ``batch_rows(n_rows_k, batch, seed, t,
k)`` of its own rows: a draw without replacement from a generator seeded by ``(seed, t, k)``
alone, so every worker that holds partition ``k`` uses the very same rows, and the decoded
gradient equals the uncoded gradient of the minibatch made of every partition's batch. The
master steps on the mean over ``rows_per_iteration(n_train, K, batch)`` rows.
"""

from __future__ import annotations

import numpy as np

from common.learning.models import Model
from common.learning.partition import partition_rows


def batch_rows(n_rows: int, batch: int, seed: int, iteration: int, partition: int) -> np.ndarray:
    """Sorted positions (into the partition's rows) of its batch at ``iteration``."""
    if batch < 1:
        raise ValueError(f"minibatch: must be >= 1, got {batch}")
    if n_rows <= batch:
        return np.arange(n_rows)
    rng = np.random.default_rng([seed, iteration, partition])
    return np.sort(rng.choice(n_rows, size=batch, replace=False))


def rows_per_iteration(n_train: int, K: int, batch: int | None) -> int:
    """Rows whose gradients one iteration sums (``n_train`` for full batch)."""
    if batch is None:
        return n_train
    return sum(min(batch, len(r)) for r in partition_rows(n_train, K))


def minibatch_gradient_sum(
    model: Model,
    params: np.ndarray,
    X_train: np.ndarray,
    y_train: np.ndarray,
    K: int,
    batch: int | None,
    seed: int,
    iteration: int,
) -> np.ndarray:
    """The UNCODED gradient one iteration sums: every partition's batch (all rows if ``batch``
    is None), partition by partition. What a coded run must decode, to rounding."""
    g = np.zeros(model.n_params, dtype=np.float64)
    for k, rows in enumerate(partition_rows(len(y_train), K)):
        if batch is not None:
            rows = rows[batch_rows(len(rows), batch, seed, iteration, k)]
        g += model.gradient_sum(params, X_train[rows], y_train[rows])
    return g
