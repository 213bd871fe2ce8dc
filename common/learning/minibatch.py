"""Minibatches that keep coded training exact.

At iteration ``t`` partition ``k`` contributes the rows ``batch_rows(n_rows_k, batch, seed, t,
k)`` of its own rows: a draw without replacement from a generator seeded by ``(seed, t, k)``
alone, so every worker that holds partition ``k`` uses the very same rows, and the decoded
gradient equals the uncoded gradient of the minibatch made of every partition's batch. The
master steps on the mean over ``rows_per_iteration(n_train, K, batch)`` rows.
"""

from __future__ import annotations

import numpy as np

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
