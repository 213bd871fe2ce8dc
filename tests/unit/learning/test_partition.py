from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from common.learning import partition_rows


@given(st.integers(1, 500), st.integers(1, 60))
def test_partitions_are_balanced_disjoint_and_cover(n_train: int, K: int) -> None:
    if n_train < K:
        with pytest.raises(ValueError, match="K:"):
            partition_rows(n_train, K)
        return
    parts = partition_rows(n_train, K)
    assert len(parts) == K
    sizes = [len(p) for p in parts]
    assert max(sizes) - min(sizes) <= 1
    np.testing.assert_array_equal(np.sort(np.concatenate(parts)), np.arange(n_train))
    assert all(p.dtype == np.int64 for p in parts)


def test_deterministic() -> None:
    a, b = partition_rows(1438, 9), partition_rows(1438, 9)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))


@pytest.mark.parametrize(
    ("n", "K", "match"), [(10, 0, "K: must be >= 1"), (3, 4, "K: 4 partitions")]
)
def test_bad_arguments(n: int, K: int, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        partition_rows(n, K)


def test_non_integers_rejected() -> None:
    with pytest.raises(TypeError, match="K: must be an integer"):
        partition_rows(10, 2.0)  # type: ignore[arg-type]
