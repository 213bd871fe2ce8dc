"""Verify mode: catch a lying node from the code's own redundancy (pure; edge and master).

A tier decodes from any ``needed`` of its answers. With ``needed + 1`` answers in hand,
decoding from different ``needed``-subsets must give the same vector (up to rounding); a
disagreement proves a wrong answer (*detection*). With ``needed + 2`` answers the liar can be
*located*: leave each answer out in turn; only the set without the liar is self-consistent.
This is the DRACO-style 2s+1 argument for s = 1 liar per tier (docs/operations.md).

``check(keys, vectors, needed, weights_of)`` returns a :class:`Verdict`: the answers to
decode from (the liar excluded when located) and what was found. It never raises on data.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

import numpy as np

from common.coding import combine

K = TypeVar("K", bound=Hashable)

DEFAULT_RTOL = 1e-6  # far above decode rounding (~1e-12), far below any useful lie
MAX_SUBSETS = 512  # bound on decodes per check: beyond it a set is judged on a sample


@dataclass(frozen=True)
class Verdict(Generic[K]):
    """``use``: indices (into the answers given) to decode from, in order; ``checked``: at
    least one extra answer was compared; ``detected``: answers disagreed; ``liar``: the
    located wrong answer (None if none, or not locatable); ``disagreement``: the largest
    relative difference seen."""

    use: tuple[int, ...]
    checked: bool
    detected: bool
    liar: K | None
    disagreement: float


def _decode(
    idx: Sequence[int],
    keys: Sequence[K],
    vectors: Sequence[np.ndarray],
    weights_of: Callable[[Sequence[K]], np.ndarray],
) -> np.ndarray:
    w = np.asarray(weights_of([keys[i] for i in idx]), dtype=np.float64)
    return combine([vectors[i] for i in idx], w)


def _spread(
    members: Sequence[int],
    needed: int,
    keys: Sequence[K],
    vectors: Sequence[np.ndarray],
    weights_of: Callable[[Sequence[K]], np.ndarray],
) -> float:
    """Largest relative difference between decodes from ``needed``-subsets of ``members``."""
    subsets = itertools.islice(itertools.combinations(members, needed), MAX_SUBSETS)
    first: np.ndarray | None = None
    scale = 0.0
    worst = 0.0
    for s in subsets:
        g = _decode(s, keys, vectors, weights_of)
        if not np.isfinite(g).all():
            return float("inf")
        if first is None:
            first, scale = g, float(np.linalg.norm(g))
            continue
        worst = max(worst, float(np.linalg.norm(g - first)))
    return worst / max(scale, 1e-300)


def check(
    keys: Sequence[K],
    vectors: Sequence[np.ndarray],
    needed: int,
    weights_of: Callable[[Sequence[K]], np.ndarray],
    rtol: float = DEFAULT_RTOL,
) -> Verdict[K]:
    """Verify the answers ``(keys[i], vectors[i])`` (arrival order) of a tier that decodes
    from any ``needed`` of them with ``weights_of(subset_keys)``. Uses at most ``needed + 2``
    answers (the first ones)."""
    n = min(len(keys), needed + 2)
    every = tuple(range(n))
    if n <= needed:
        return Verdict(every[:needed], False, False, None, 0.0)
    spread = _spread(every, needed, keys, vectors, weights_of)
    if spread <= rtol:
        return Verdict(every[:needed], True, False, None, spread)
    if n < needed + 2:  # detected, but one extra answer cannot say which one lied
        return Verdict((), True, True, None, spread)
    consistent = [
        i
        for i in every
        if _spread(tuple(j for j in every if j != i), needed, keys, vectors, weights_of) <= rtol
    ]
    if len(consistent) != 1:
        return Verdict((), True, True, None, spread)
    liar = consistent[0]
    rest = tuple(j for j in every if j != liar)
    return Verdict(rest[:needed], True, True, keys[liar], spread)
