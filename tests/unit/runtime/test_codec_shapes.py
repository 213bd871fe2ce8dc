"""Hostile array shapes: every wild shape is refused as ``malformed`` before any allocation.

Audit finding #1: ``[2**63 - 1, 0]`` has zero elements, so it passed the frame-length check
and numpy's "array is too big" ValueError escaped ``decode`` and killed an edge.
"""

from __future__ import annotations

from typing import Any

import msgpack
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from common.runtime import codec
from common.runtime import messages as m
from common.runtime.codec import DTYPES, Limits, ProtocolError, decode, encode


def model_update(shape: Any, dtype: str = "float64", data: bytes = b"") -> list[bytes]:
    """The audit's reproducer: a ModelUpdate header naming ``shape``, one array frame."""
    header = {
        "v": codec.PROTOCOL_VERSION,
        "op": "model_update",
        "iteration": 0,
        "arrays": [{"field": "params", "dtype": dtype, "shape": shape}],
    }
    return [msgpack.packb(header), data]


def reason(frames: list[bytes], limits: Limits = codec.DEFAULT_LIMITS) -> str:
    with pytest.raises(ProtocolError) as info:
        decode(frames, limits)
    return info.value.reason


WILD_SHAPES = [
    [2**63 - 1, 0],  # the audit's crash: zero elements, numpy cannot build it
    [0, 2**63 - 1],
    [2**64 - 1, 0],
    [2**40, 0, 2**40],
    [(512 << 20) + 1, 0],  # one past the default max_total_bytes
    [-1],
    [-(2**63), 0],
    [1.5],
    [None, 0],
    ["8"],
    [True],
    [False, 0],
    [[0]],
    [1] * 9,  # more than MAX_NDIM
    "8",
    8,
    None,
]


@pytest.mark.parametrize("shape", WILD_SHAPES, ids=repr)
def test_wild_shape_with_an_empty_frame_is_malformed(shape: Any) -> None:
    assert reason(model_update(shape)) == "malformed"


@pytest.mark.parametrize(
    "shape", [[2**32, 2**32], [2**62, 2], [2**21] * 3, [2**31 - 1, 2**31 - 1]], ids=repr
)
def test_huge_element_count_is_malformed(shape: list[int]) -> None:
    assert reason(model_update(shape, data=b"\0" * 8)) == "malformed"


def test_dimension_cap_follows_the_limits() -> None:
    limits = Limits(max_total_bytes=1000)
    assert reason(model_update([1001, 0]), limits) == "malformed"
    assert reason(model_update([200], data=b"\0" * 1600), limits) == "oversized"
    back = decode(model_update([1000, 0]), limits)  # a zero-size array within the cap
    assert isinstance(back, m.ModelUpdate) and back.params.shape == (1000, 0)


@pytest.mark.parametrize("shape", [[0], [3, 0], [0, 0, 5]], ids=repr)
def test_legitimate_zero_size_arrays_still_round_trip(shape: list[int]) -> None:
    back = decode(encode(m.ModelUpdate(3, np.zeros(shape))))
    assert isinstance(back, m.ModelUpdate)
    assert back.params.shape == tuple(shape) and back.params.flags.writeable is False


def test_an_unexpected_exception_inside_decode_becomes_malformed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Defence in depth: a check we forgot must still surface as the codec's one error."""

    def boom(*args: Any) -> Any:
        raise RuntimeError("a bug in a check")

    frames = [bytes(f) for f in encode(m.Heartbeat(0, "edge-0"))]
    monkeypatch.setattr(codec, "_convert", boom)
    with pytest.raises(ProtocolError, match="RuntimeError") as info:
        decode(frames)
    assert info.value.reason == "malformed"


dims = st.one_of(
    st.integers(-(2**63), 2**64 - 1),
    st.integers(0, 8),
    st.just(0),
    st.floats(allow_nan=False),
    st.booleans(),
    st.none(),
    st.text(max_size=3),
)


# zero-size shapes with one huge dimension: the case small-shape fuzzing never reached
huge_zero = st.lists(st.integers(0, 2**64 - 1), min_size=1, max_size=4).flatmap(
    lambda ds: st.permutations([*ds, 0])
)


@settings(max_examples=400, deadline=None)
@given(
    shape=st.one_of(st.lists(dims, max_size=10), huge_zero, dims),
    dtype=st.sampled_from([*sorted(DTYPES), "float16", "object"]),
    data=st.one_of(st.just(b""), st.binary(max_size=64)),
)
def test_fuzz_wild_shapes_raise_only_protocol_errors(shape: Any, dtype: str, data: bytes) -> None:
    try:
        msg = decode(model_update(shape, dtype, data))
    except ProtocolError as exc:
        assert exc.reason == "malformed"
        return
    assert isinstance(msg, m.ModelUpdate)  # accepted only when it really describes the frame
    assert msg.params.nbytes == len(data) and list(msg.params.shape) == shape
