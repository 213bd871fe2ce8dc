"""Splitting the training rows into the K partitions that the gradient code places."""

from __future__ import annotations

import numpy as np


def partition_rows(n_train: int, K: int) -> list[np.ndarray]:
    """Row indices of each of the K partitions, deterministic and balanced.

    Parameters
    ----------
    n_train : int
        Number of training rows (>= K).
    K : int
        Number of partitions (>= 1).

    Returns
    -------
    list of K int64 arrays
        Contiguous, disjoint index ranges covering ``0..n_train-1``; sizes differ by at most
        one (the first ``n_train % K`` partitions get the extra row). Every node computes the
        same split from ``(n_train, K)`` alone, so no index lists travel over the network.
    """
    if isinstance(n_train, bool) or not isinstance(n_train, int | np.integer):
        raise TypeError(f"n_train: must be an integer, got {type(n_train).__name__}")
    if isinstance(K, bool) or not isinstance(K, int | np.integer):
        raise TypeError(f"K: must be an integer, got {type(K).__name__}")
    if K < 1:
        raise ValueError(f"K: must be >= 1, got {K}")
    if n_train < K:
        raise ValueError(
            f"K: {K} partitions need at least {K} training rows, got n_train={n_train}"
        )
    return [part.astype(np.int64) for part in np.array_split(np.arange(n_train), K)]
