"""Wire codec: a message <-> a list of ZeroMQ frames. No pickle anywhere.

Format (version ``PROTOCOL_VERSION``)::

    frame 0   msgpack map {"v": 1, "op": "<op>", <scalar fields>...,
                           "arrays": [{"field": name, "dtype": "float64", "shape": [d0, ...]}, ...]}
    frame 1.. one raw frame per entry of "arrays", in that order: the array's bytes,
              C order, little-endian

``encode(msg) -> list[bytes | memoryview]`` never copies an array (the frames are views on
the arrays' memory; send them with ``copy=False`` and do not mutate the arrays until the
send completes). ``decode(frames) -> Message`` validates everything it can **before**
touching array data: frame count, header size, total size, msgpack type, version, op,
unknown/missing fields, field types (from the dataclass annotations), dtype allow-list,
shape (every dimension and the element count capped by ``max_total_bytes``, so no peer's
numbers drive an allocation) and shape against frame length. Anything wrong raises
``ProtocolError`` whose ``reason`` is one of ``REASONS`` (the label of
``hgc_<role>_messages_dropped_total``); ``decode`` raises nothing else.

Decoded arrays are **zero-copy, read-only** views on the received frame buffers
(``arr.flags.writeable is False``); they keep the buffer alive. Copy one before mutating it.
Tuple-typed fields come back as tuples (msgpack has only lists).
"""

from __future__ import annotations

import dataclasses
import math
import sys
import types
import typing
from dataclasses import dataclass
from typing import Any, Union

import msgpack
import numpy as np

from common.runtime.messages import MESSAGE_TYPES, Message

PROTOCOL_VERSION = 1
REASONS = ("malformed", "oversized", "unknown_op", "version")
# Wire dtypes: explicit little-endian so an x86 master and an arm64 worker agree.
DTYPES: dict[str, np.dtype] = {
    "float64": np.dtype("<f8"),
    "float32": np.dtype("<f4"),
    "int64": np.dtype("<i8"),
    "int32": np.dtype("<i4"),
}
MAX_NDIM = 8

Frame = bytes | memoryview


class ProtocolError(ValueError):
    """A message that cannot be encoded or must not be decoded.

    ``reason`` is one of ``REASONS``; the text names the field or condition.
    """

    def __init__(self, reason: str, detail: str) -> None:
        if reason not in REASONS:
            raise ValueError(f"ProtocolError reason must be one of {REASONS}, got {reason!r}")
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class Limits:
    """Size caps applied by ``decode`` (bytes unless stated)."""

    max_header_bytes: int = 16 << 20  # set-up messages carry specs (e.g. straggler traces)
    max_total_bytes: int = 512 << 20  # header + all array frames
    max_frames: int = 16

    def __post_init__(self) -> None:
        for name in ("max_header_bytes", "max_total_bytes", "max_frames"):
            if getattr(self, name) < 1:
                raise ValueError(f"Limits.{name} must be >= 1, got {getattr(self, name)}")


DEFAULT_LIMITS = Limits()


# ---------------------------------------------------------------- field type checking


_HINTS: dict[type, dict[str, Any]] = {}


def _field_types(cls: type[Message]) -> dict[str, Any]:
    """Resolved annotations of the instance fields of a message class (cached per class)."""
    if cls not in _HINTS:
        module = sys.modules[cls.__module__]
        hints = typing.get_type_hints(cls, globalns=vars(module))
        _HINTS[cls] = {f.name: hints[f.name] for f in dataclasses.fields(cls)}
    return _HINTS[cls]


def _array_fields(cls: type[Message]) -> frozenset[str]:
    """Names of the ndarray fields (cached per class: this runs for every message)."""
    if cls not in _ARRAYS:
        _ARRAYS[cls] = frozenset(n for n, t in _field_types(cls).items() if t is np.ndarray)
    return _ARRAYS[cls]


def _required(cls: type[Message]) -> frozenset[str]:
    """Names of the fields without a default (cached per class)."""
    if cls not in _REQUIRED:
        _REQUIRED[cls] = frozenset(
            f.name
            for f in dataclasses.fields(cls)
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        )
    return _REQUIRED[cls]


_ARRAYS: dict[type, frozenset[str]] = {}
_REQUIRED: dict[type, frozenset[str]] = {}


def _convert(value: Any, hint: Any, where: str) -> Any:
    """Check ``value`` (as msgpack decoded it) against ``hint``; return the typed value."""
    if hint is int and type(value) is int:  # the common cases first (every message)
        return value
    if hint is float and type(value) is float:
        return value
    origin = typing.get_origin(hint)
    if hint is Any:
        return value
    if hint is bool:
        if isinstance(value, bool):
            return value
    elif hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif hint is float:
        if isinstance(value, float):
            return value
        if isinstance(value, int) and not isinstance(value, bool):
            return float(value)
    elif hint is str:
        if isinstance(value, str):
            return value
    elif hint is type(None):
        if value is None:
            return None
    elif origin in (Union, types.UnionType):
        for option in typing.get_args(hint):
            try:
                return _convert(value, option, where)
            except ProtocolError:
                continue
    elif origin is tuple:
        args = typing.get_args(hint)
        if isinstance(value, list | tuple):
            if len(args) == 2 and args[1] is Ellipsis:
                elem = args[0]
                if (elem is float or elem is int) and all(type(v) is elem for v in value):
                    return tuple(value)  # fast path; anything else is checked one by one
                return tuple(_convert(v, args[0], f"{where}[{k}]") for k, v in enumerate(value))
            if len(args) == len(value):
                return tuple(
                    _convert(v, a, f"{where}[{k}]")
                    for k, (v, a) in enumerate(zip(value, args, strict=True))
                )
    elif origin is list:
        (arg,) = typing.get_args(hint)
        if isinstance(value, list | tuple):
            return [_convert(v, arg, f"{where}[{k}]") for k, v in enumerate(value)]
    elif origin is dict:
        key_t, val_t = typing.get_args(hint)
        if isinstance(value, dict):
            return {
                _convert(k, key_t, f"{where} key"): _convert(v, val_t, f"{where}[{k!r}]")
                for k, v in value.items()
            }
    else:  # pragma: no cover - a message field type the codec does not know
        raise TypeError(f"codec cannot check field type {hint!r} ({where})")
    raise ProtocolError("malformed", f"field {where}: expected {hint}, got {type(value).__name__}")


# ---------------------------------------------------------------- encode


def _wire_array(value: Any, where: str) -> np.ndarray:
    if not isinstance(value, np.ndarray):
        raise ProtocolError(
            "malformed", f"field {where}: expected numpy.ndarray, got {type(value).__name__}"
        )
    name = value.dtype.name
    if name not in DTYPES:
        raise ProtocolError(
            "malformed", f"field {where}: dtype {value.dtype} not in {sorted(DTYPES)}"
        )
    if value.ndim > MAX_NDIM:
        raise ProtocolError("malformed", f"field {where}: {value.ndim} dimensions > {MAX_NDIM}")
    # Zero-copy when already C-contiguous little-endian (the normal case); a copy otherwise.
    return np.asarray(value, dtype=DTYPES[name], order="C")


def encode(msg: Message) -> list[Frame]:
    """Frames for ``msg``: the msgpack header, then one raw frame per ``ndarray`` field.

    Raises ``ProtocolError`` (reason ``malformed``) if a field does not match its type.
    """
    cls = type(msg)
    if MESSAGE_TYPES.get(cls.op) is not cls:
        raise ProtocolError(
            "unknown_op", f"{cls.__name__} (op {cls.op!r}) is not a registered message"
        )
    header: dict[str, Any] = {"v": PROTOCOL_VERSION, "op": cls.op}
    specs: list[dict[str, Any]] = []
    buffers: list[Frame] = []
    arrays = _array_fields(cls)
    for name, hint in _field_types(cls).items():
        value = getattr(msg, name)
        if name in arrays:
            arr = _wire_array(value, f"{cls.op}.{name}")
            specs.append({"field": name, "dtype": arr.dtype.name, "shape": list(arr.shape)})
            buffers.append(arr.data.cast("B") if arr.size else b"")
        else:
            _convert(value, hint, f"{cls.op}.{name}")  # refuse to send what we would refuse to read
            header[name] = list(value) if isinstance(value, tuple) else value
    header["arrays"] = specs
    return [msgpack.packb(header, use_bin_type=True), *buffers]


# ---------------------------------------------------------------- decode


def _frame_len(frame: Any) -> int:
    return frame.nbytes if isinstance(frame, memoryview) else len(frame)


def _as_buffer(frame: Any) -> Any:
    # zmq.Frame exposes the received memory as .buffer; bytes/memoryview are used directly
    return getattr(frame, "buffer", frame)


def _check_shape(shape: Any, dtype: np.dtype, limits: Limits, where: str) -> tuple[int, ...]:
    """A wire shape as a tuple, refused (``malformed``) unless every dimension is a plain
    int in ``[0, limits.max_total_bytes]`` and the array fits in ``max_total_bytes``.

    The per-dimension cap matters for zero-size arrays: ``[2**63 - 1, 0]`` has 0 elements,
    so no frame-length check catches it, but numpy refuses to build it ("array is too big").
    No array a node may receive can have a dimension longer than the message in bytes.
    """
    if not isinstance(shape, list) or len(shape) > MAX_NDIM:
        raise ProtocolError("malformed", f"{where} must be a list of <= {MAX_NDIM} ints")
    cap = limits.max_total_bytes
    for d in shape:
        if not isinstance(d, int) or isinstance(d, bool) or not 0 <= d <= cap:
            raise ProtocolError(
                "malformed", f"{where}: dimension {d!r} is not an int in [0, {cap}]"
            )
    if math.prod(shape) * dtype.itemsize > cap:
        raise ProtocolError("malformed", f"{where}: {shape} {dtype.name} exceeds {cap} B")
    return tuple(shape)


def _array_specs(
    raw: Any, cls: type[Message], n_frames: int, limits: Limits
) -> list[tuple[str, np.dtype, tuple[int, ...]]]:
    if not isinstance(raw, list):
        raise ProtocolError("malformed", "header 'arrays' must be a list")
    if len(raw) != n_frames:
        raise ProtocolError(
            "malformed", f"header lists {len(raw)} arrays but {n_frames} array frames arrived"
        )
    expected = _array_fields(cls)
    out: list[tuple[str, np.dtype, tuple[int, ...]]] = []
    for k, spec in enumerate(raw):
        if not isinstance(spec, dict) or set(spec) != {"field", "dtype", "shape"}:
            raise ProtocolError("malformed", f"arrays[{k}] must be a map with field, dtype, shape")
        name, dtype, shape = spec["field"], spec["dtype"], spec["shape"]
        if not isinstance(name, str) or name not in expected:
            raise ProtocolError(
                "malformed", f"arrays[{k}].field {name!r} is not an array field of {cls.op}"
            )
        if any(name == seen for seen, _, _ in out):
            raise ProtocolError("malformed", f"arrays[{k}].field {name!r} appears twice")
        if not isinstance(dtype, str) or dtype not in DTYPES:
            raise ProtocolError("malformed", f"arrays[{k}].dtype {dtype!r} not in {sorted(DTYPES)}")
        checked = _check_shape(shape, DTYPES[dtype], limits, f"arrays[{k}].shape")
        out.append((name, DTYPES[dtype], checked))
    missing = expected - {name for name, _, _ in out}
    if missing:
        raise ProtocolError("malformed", f"{cls.op}: missing array fields {sorted(missing)}")
    return out


def _header(frames: list[Any], limits: Limits) -> dict[str, Any]:
    if not frames:
        raise ProtocolError("malformed", "no frames")
    if len(frames) > limits.max_frames:
        raise ProtocolError("oversized", f"{len(frames)} frames > max_frames {limits.max_frames}")
    head_len = _frame_len(frames[0])
    if head_len > limits.max_header_bytes:
        raise ProtocolError(
            "oversized", f"header {head_len} B > max_header_bytes {limits.max_header_bytes}"
        )
    total = sum(_frame_len(f) for f in frames)
    if total > limits.max_total_bytes:
        raise ProtocolError(
            "oversized", f"message {total} B > max_total_bytes {limits.max_total_bytes}"
        )
    try:
        header = msgpack.unpackb(bytes(_as_buffer(frames[0])), raw=False, strict_map_key=True)
    except Exception as exc:  # msgpack raises several unrelated types on garbage
        raise ProtocolError("malformed", f"header is not msgpack ({type(exc).__name__})") from None
    if not isinstance(header, dict):
        raise ProtocolError("malformed", f"header must be a map, got {type(header).__name__}")
    version = header.get("v")
    if version != PROTOCOL_VERSION or isinstance(version, bool):
        raise ProtocolError("version", f"header v={version!r}, this node speaks {PROTOCOL_VERSION}")
    return header


def decode(frames: list[Any], limits: Limits = DEFAULT_LIMITS) -> Message:
    """Validate and decode frames (``bytes``, ``memoryview`` or ``zmq.Frame``) into a message.

    Raises ``ProtocolError`` and nothing else; never returns a partially checked message.
    """
    try:
        return _decode(frames, limits)
    except ProtocolError:
        raise
    except Exception as exc:  # a check we missed: still peer input, so still "malformed"
        raise ProtocolError("malformed", f"undecodable ({type(exc).__name__}: {exc})") from exc


def _decode(frames: list[Any], limits: Limits) -> Message:
    header = _header(frames, limits)
    op = header.get("op")
    cls = MESSAGE_TYPES.get(op) if isinstance(op, str) else None
    if cls is None:
        raise ProtocolError("unknown_op", f"op {op!r} is not one of {sorted(MESSAGE_TYPES)}")
    specs = _array_specs(header.get("arrays"), cls, len(frames) - 1, limits)
    hints = _field_types(cls)
    scalars = {name for name in hints if name not in _array_fields(cls)}
    unknown = set(header) - scalars - {"v", "op", "arrays"}
    if unknown:
        raise ProtocolError("malformed", f"{op}: unknown fields {sorted(map(str, unknown))}")
    missing = (_required(cls) & scalars) - set(header)
    if missing:
        raise ProtocolError("malformed", f"{op}: missing fields {sorted(missing)}")
    values = {
        name: _convert(header[name], hints[name], f"{op}.{name}")
        for name in scalars
        if name in header
    }
    # All metadata checked; only now look at the array frames.
    for (name, dtype, shape), frame in zip(specs, frames[1:], strict=True):
        expected = math.prod(shape) * dtype.itemsize
        got = _frame_len(frame)
        if expected != got:
            raise ProtocolError(
                "malformed",
                f"{op}.{name}: shape {shape} {dtype.name} needs {expected} B, frame has {got} B",
            )
        # shape is capped (_check_shape), so even a zero-size reshape cannot overflow
        arr = (
            np.frombuffer(_as_buffer(frame), dtype=dtype).reshape(shape)
            if expected
            else np.empty(0, dtype).reshape(shape)
        )
        arr.flags.writeable = False
        values[name] = arr
    try:
        return cls(**values)
    except (TypeError, ValueError) as exc:  # a message's own __post_init__ checks
        raise ProtocolError("malformed", f"{op}: {exc}") from None


def message_nbytes(frames: list[Any]) -> int:
    """Total size of a frame list in bytes (for the sent/received byte counters)."""
    return sum(_frame_len(f) for f in frames)
