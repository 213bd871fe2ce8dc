"""Codec: round trips of every message type, and one negative control per validation."""

from __future__ import annotations

import contextlib
import dataclasses

import msgpack
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from common.runtime import messages as m
from common.runtime.codec import (
    DTYPES,
    PROTOCOL_VERSION,
    Limits,
    ProtocolError,
    decode,
    encode,
    message_nbytes,
)

ints = st.integers(min_value=-(2**40), max_value=2**40)
floats = st.floats(allow_nan=False, width=64)
names = st.text(min_size=0, max_size=20)
specs = st.dictionaries(
    st.text(max_size=8),
    st.one_of(ints, floats, names, st.booleans(), st.none(), st.lists(ints, max_size=4)),
    max_size=4,
)


@st.composite
def arrays(draw: st.DrawFn) -> np.ndarray:
    dtype = draw(st.sampled_from(sorted(DTYPES)))
    shape = tuple(draw(st.lists(st.integers(0, 5), min_size=0, max_size=3)))
    size = int(np.prod(shape))
    if dtype.startswith("float"):
        values = draw(st.lists(st.floats(allow_nan=False, width=32), min_size=size, max_size=size))
    else:
        values = draw(st.lists(st.integers(-(2**31), 2**31 - 1), min_size=size, max_size=size))
    return np.array(values, dtype=dtype).reshape(shape)


MESSAGE_STRATEGIES = {
    m.Register: st.builds(
        m.Register, iteration=ints, role=names, node=names, edge=ints, worker=ints
    ),
    m.Heartbeat: st.builds(m.Heartbeat, iteration=ints, node=names),
    m.EdgeSetup: st.builds(
        m.EdgeSetup,
        iteration=ints,
        edge=ints,
        code_spec=specs,
        data_spec=specs,
        model_spec=specs,
        emulation_spec=specs,
    ),
    m.WorkerSetup: st.builds(
        m.WorkerSetup,
        iteration=ints,
        edge=ints,
        worker=ints,
        partitions=st.lists(ints, max_size=5).map(tuple),
        coefficients=arrays(),
        n_partitions=ints,
        data_spec=specs,
        model_spec=specs,
        emulation_spec=specs,
    ),
    m.Ready: st.builds(m.Ready, iteration=ints, node=names, edge=ints, worker=ints),
    m.ModelUpdate: st.builds(m.ModelUpdate, iteration=ints, params=arrays(), epoch=ints),
    m.WorkerGradient: st.builds(
        m.WorkerGradient, iteration=ints, edge=ints, worker=ints, vector=arrays(), compute_s=floats
    ),
    m.EdgeGradient: st.builds(
        m.EdgeGradient,
        iteration=ints,
        edge=ints,
        vector=arrays(),
        responders=st.lists(ints, max_size=5).map(tuple),
        wait_s=floats,
        decode_s=floats,
        worker_arrivals_s=st.lists(floats, max_size=5).map(tuple),
    ),
    m.IterationFailed: st.builds(
        m.IterationFailed,
        iteration=ints,
        edge=ints,
        missing_workers=st.lists(ints, max_size=5).map(tuple),
        reason=names,
    ),
    m.EdgeProgress: st.builds(
        m.EdgeProgress,
        iteration=ints,
        edge=ints,
        elapsed_s=floats,
        worker_arrivals_s=st.lists(floats, max_size=5).map(tuple),
        worker_compute_s=st.lists(floats, max_size=5).map(tuple),
        epoch=ints,
        plan_epoch=ints,
    ),
    m.LateAnswer: st.builds(
        m.LateAnswer,
        iteration=ints,
        edge=ints,
        worker=ints,
        compute_s=floats,
        arrival_s=floats,
        epoch=ints,
        plan_epoch=ints,
    ),
    m.Shutdown: st.builds(m.Shutdown, iteration=ints, reason=names),
    m.Rejoin: st.builds(m.Rejoin, iteration=ints, reason=names),
}


def test_every_message_type_has_a_strategy() -> None:
    assert set(MESSAGE_STRATEGIES) == set(m.ALL_MESSAGES)


def assert_same(a: m.Message, b: m.Message) -> None:
    assert type(a) is type(b)
    for f in dataclasses.fields(a):
        x, y = getattr(a, f.name), getattr(b, f.name)
        if isinstance(x, np.ndarray):
            assert x.dtype == y.dtype and x.shape == y.shape
            np.testing.assert_array_equal(x, y)
        else:
            assert x == y, f.name
            assert type(x) is type(y), f.name


@pytest.mark.parametrize("cls", m.ALL_MESSAGES, ids=lambda c: c.op)
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_round_trip(cls: type[m.Message], data: st.DataObject) -> None:
    msg = data.draw(MESSAGE_STRATEGIES[cls])
    frames = encode(msg)
    back = decode([bytes(f) for f in frames])
    assert_same(msg, back)


def test_decoded_arrays_are_read_only_zero_copy_views() -> None:
    params = np.arange(1000.0)
    frames = encode(m.ModelUpdate(iteration=3, params=params))
    assert np.shares_memory(np.frombuffer(frames[1], dtype=np.float64), params)  # no copy out
    received = bytearray(frames[1])  # a writable receive buffer, as zmq may hand us
    back = decode([frames[0], memoryview(received)])
    assert isinstance(back, m.ModelUpdate)
    assert not back.params.flags.writeable
    assert np.shares_memory(back.params, np.frombuffer(received, dtype=np.float64))
    with pytest.raises(ValueError):
        back.params[0] = 1.0


def test_non_contiguous_and_big_endian_arrays_are_sent_correctly() -> None:
    a = np.arange(12.0).reshape(3, 4).T
    b = np.arange(5, dtype=">i4")
    back_a = decode(encode(m.ModelUpdate(iteration=0, params=a)))
    back_b = decode(encode(m.ModelUpdate(iteration=0, params=b)))
    np.testing.assert_array_equal(back_a.params, a)  # type: ignore[attr-defined]
    np.testing.assert_array_equal(back_b.params, b)  # type: ignore[attr-defined]
    assert back_b.params.dtype == np.dtype("<i4")  # type: ignore[attr-defined]


def test_message_nbytes_counts_all_frames() -> None:
    frames = encode(m.ModelUpdate(iteration=0, params=np.zeros(10)))
    assert message_nbytes(frames) == len(frames[0]) + 80


# ------------------------------------------------------------------ negative controls


def good_frames() -> list[bytes]:
    msg = m.WorkerGradient(iteration=4, edge=1, worker=2, vector=np.ones(8), compute_s=0.5)
    return [bytes(f) for f in encode(msg)]


def header_of(frames: list[bytes]) -> dict:
    return msgpack.unpackb(frames[0])


def with_header(frames: list[bytes], **changes: object) -> list[bytes]:
    h = header_of(frames)
    for key, value in changes.items():
        if value is KeyError:
            del h[key]
        else:
            h[key] = value
    return [msgpack.packb(h), *frames[1:]]


def reason(frames: list, limits: Limits | None = None) -> str:
    with pytest.raises(ProtocolError) as info:
        decode(frames) if limits is None else decode(frames, limits)
    return info.value.reason


def test_good_frames_decode() -> None:
    # the positive control for every case below
    assert isinstance(decode(good_frames()), m.WorkerGradient)


@pytest.mark.parametrize(
    "frames, expected",
    [
        ([], "malformed"),
        ([b""], "malformed"),
        ([b"\xc1"], "malformed"),  # never-used msgpack byte
        ([b"\x93\x01\x02"], "malformed"),  # truncated msgpack array
        ([msgpack.packb([1, 2, 3])], "malformed"),  # not a map
        (
            [msgpack.packb({"op": "heartbeat", "iteration": 1, "node": "x", "arrays": []})],
            "version",
        ),
    ],
    ids=["no-frames", "empty-header", "bad-byte", "truncated", "not-a-map", "no-version"],
)
def test_garbage_headers(frames: list, expected: str) -> None:
    assert reason(frames) == expected


def test_wrong_version() -> None:
    assert reason(with_header(good_frames(), v=PROTOCOL_VERSION + 1)) == "version"
    assert reason(with_header(good_frames(), v="1")) == "version"
    assert reason(with_header(good_frames(), v=True)) == "version"


def test_unknown_op() -> None:
    assert reason(with_header(good_frames(), op="rm -rf")) == "unknown_op"
    assert reason(with_header(good_frames(), op=7)) == "unknown_op"
    assert reason(with_header(good_frames(), op=KeyError)) == "unknown_op"


def test_missing_field() -> None:
    assert reason(with_header(good_frames(), compute_s=KeyError)) == "malformed"
    assert reason(with_header(good_frames(), iteration=KeyError)) == "malformed"


def test_unknown_field_is_not_ignored() -> None:
    with pytest.raises(ProtocolError, match="unknown fields.*sneaky"):
        decode(with_header(good_frames(), sneaky=1))


@pytest.mark.parametrize(
    "field, value",
    [
        ("iteration", "4"),
        ("iteration", 4.0),
        ("iteration", True),
        ("edge", None),
        ("compute_s", "fast"),
        ("compute_s", [0.5]),
    ],
)
def test_wrong_field_types(field: str, value: object) -> None:
    with pytest.raises(ProtocolError, match=field) as info:
        decode(with_header(good_frames(), **{field: value}))
    assert info.value.reason == "malformed"


def test_wrong_types_inside_containers() -> None:
    frames = [
        bytes(f)
        for f in encode(
            m.EdgeGradient(
                iteration=1, edge=0, vector=np.ones(2), responders=(0, 1), wait_s=0.0, decode_s=0.0
            )
        )
    ]
    assert reason(with_header(frames, responders=[0, "1"])) == "malformed"
    assert reason(with_header(frames, responders=5)) == "malformed"
    setup = [bytes(f) for f in encode(m.Shutdown(iteration=-1, reason="x"))]
    assert reason(with_header(setup, reason=b"bytes")) == "malformed"


def test_int_is_accepted_for_a_float_field() -> None:
    msg = decode(with_header(good_frames(), compute_s=2))
    assert isinstance(msg, m.WorkerGradient)
    assert msg.compute_s == 2.0 and isinstance(msg.compute_s, float)


@pytest.mark.parametrize("dtype", ["float16", "complex128", "object", "bool", "uint8", "<U4"])
def test_dtype_not_in_allow_list(dtype: str) -> None:
    frames = good_frames()
    h = header_of(frames)
    h["arrays"][0]["dtype"] = dtype
    assert reason([msgpack.packb(h), frames[1]]) == "malformed"


def test_encode_refuses_bad_dtype_and_bad_fields() -> None:
    with pytest.raises(ProtocolError, match="dtype"):
        encode(m.ModelUpdate(iteration=0, params=np.ones(3, dtype=np.float16)))
    with pytest.raises(ProtocolError, match="ndarray"):
        encode(m.ModelUpdate(iteration=0, params=[1.0, 2.0]))  # type: ignore[arg-type]
    with pytest.raises(ProtocolError, match="iteration"):
        encode(m.Heartbeat(iteration="0", node="x"))  # type: ignore[arg-type]


def test_shape_does_not_match_frame_length() -> None:
    frames = good_frames()
    assert reason([frames[0], frames[1][:-1]]) == "malformed"  # truncated array frame
    assert reason([frames[0], frames[1] + b"\0" * 8]) == "malformed"  # extra bytes
    h = header_of(frames)
    h["arrays"][0]["shape"] = [9]
    assert reason([msgpack.packb(h), frames[1]]) == "malformed"
    for bad_shape in ([-1], [1.5], "8", [True], [1] * 9):
        h["arrays"][0]["shape"] = bad_shape
        assert reason([msgpack.packb(h), frames[1]]) == "malformed", bad_shape


def test_huge_shape_is_refused_without_allocating() -> None:
    frames = good_frames()
    h = header_of(frames)
    h["arrays"][0]["shape"] = [2**40, 2**40]
    assert reason([msgpack.packb(h), frames[1]]) == "malformed"


def test_array_frame_count_and_fields() -> None:
    frames = good_frames()
    assert reason(frames[:1]) == "malformed"  # header lists an array, no frame
    assert reason([*frames, frames[1]]) == "malformed"  # an extra frame
    h = header_of(frames)
    h["arrays"] = []
    assert reason([msgpack.packb(h)]) == "malformed"  # array field missing
    h["arrays"] = [{"field": "compute_s", "dtype": "float64", "shape": [8]}]
    assert reason([msgpack.packb(h), frames[1]]) == "malformed"  # not an array field
    h["arrays"] = [{"field": "vector", "dtype": "float64"}]
    assert reason([msgpack.packb(h), frames[1]]) == "malformed"
    h["arrays"] = "vector"
    assert reason([msgpack.packb(h), frames[1]]) == "malformed"


def test_size_caps() -> None:
    frames = good_frames()
    assert reason(frames, Limits(max_total_bytes=len(frames[0]) + 63)) == "oversized"
    assert reason(frames, Limits(max_header_bytes=len(frames[0]) - 1)) == "oversized"
    assert reason(frames, Limits(max_frames=1)) == "oversized"
    assert decode(frames, Limits(max_total_bytes=len(frames[0]) + 64))  # exactly at the cap


def test_limits_are_validated() -> None:
    with pytest.raises(ValueError, match="max_total_bytes"):
        Limits(max_total_bytes=0)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=64), min_size=0, max_size=4))
def test_random_bytes_never_escape_as_another_error(frames: list[bytes]) -> None:
    try:
        decode(frames)
    except ProtocolError as exc:
        assert exc.reason in {"malformed", "oversized", "unknown_op", "version"}


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_mutated_valid_headers_raise_only_protocol_errors(data: st.DataObject) -> None:
    frames = good_frames()
    head = bytearray(frames[0])
    for _ in range(data.draw(st.integers(1, 4))):
        pos = data.draw(st.integers(0, len(head) - 1))
        head[pos] = data.draw(st.integers(0, 255))
    with contextlib.suppress(ProtocolError):
        decode([bytes(head), frames[1]])


def test_set_up_with_a_long_straggler_trace_fits_the_default_header_cap() -> None:
    trace = np.random.default_rng(0).random((20_000, 12)).tolist()  # ~2 MB of msgpack floats
    msg = m.EdgeSetup(
        iteration=-1,
        edge=0,
        code_spec={"scheme": "hgc"},
        data_spec={},
        model_spec={},
        emulation_spec={"worker-0-0": {"straggler": {"kind": "trace", "trace": trace}}},
    )
    frames = encode(msg)
    assert len(frames[0]) > 1 << 20
    back = decode(frames)
    assert isinstance(back, m.EdgeSetup)
    assert back.emulation_spec["worker-0-0"]["straggler"]["trace"] == trace
