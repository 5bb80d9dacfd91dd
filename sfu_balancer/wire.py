"""Messages of the balancer <-> bridge link (DESIGN.md §4), msgpack over WebSocket binary frames.

Rules of this module:
- It imports only the standard library and msgpack. Bridges import it, so it must never pull in
  asyncio, aiohttp, redis or aiortc (a test checks this in a fresh interpreter).
- Every frame is one msgpack map ``{"v": PROTOCOL_VERSION, "t": <type>, ...fields}``.
- ``decode`` either returns a fully validated, frozen message or raises ``WireError``. It never
  raises anything else, whatever the bytes: the receiver answers a ``WireError`` with an ``error``
  message (``error_reply``) and keeps the link open.
- Unknown *extra* keys are ignored (a newer peer may add optional fields); a missing or mistyped
  field, an unknown type or another version is a ``WireError``.
- Requests that expect a reply carry ``req`` (an int chosen by the sender); the reply, or the
  ``error`` that replaces it, carries the same ``req``.

The exact fields, directions and flows are documented in docs/protocol.md ("Bridge link").
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from dataclasses import dataclass, field
from typing import Any, ClassVar, Union

import msgpack  # type: ignore[import-untyped]

__all__ = [
    "MAX_FRAME_BYTES",
    "MESSAGE_TYPES",
    "PROTOCOL_VERSION",
    "Allocate",
    "Allocated",
    "Answer",
    "Bye",
    "Capacity",
    "Drain",
    "Error",
    "ErrorCode",
    "Hello",
    "Message",
    "Offer",
    "RelayAccept",
    "RelayClose",
    "RelayOpen",
    "Release",
    "Report",
    "TrackInfo",
    "WireError",
    "decode",
    "encode",
    "error_reply",
]

PROTOCOL_VERSION = 1
# SDP of a large room stays far below this; anything bigger is refused before unpacking.
MAX_FRAME_BYTES = 4 * 1024 * 1024


class ErrorCode:
    """Machine-readable ``code`` values of ``error`` messages."""

    MALFORMED = "malformed"  # not msgpack, not a map, or a field of the wrong type
    VERSION = "version"  # ``v`` missing or not PROTOCOL_VERSION
    UNKNOWN_TYPE = "unknown_type"
    BAD_SDP = "bad_sdp"
    UNSUPPORTED_CODEC = "unsupported_codec"
    UNKNOWN_ROOM = "unknown_room"
    UNKNOWN_PARTICIPANT = "unknown_participant"
    CONFLICT = "conflict"  # e.g. participant already allocated, relay already open
    DRAINING = "draining"  # the bridge refuses new rooms while draining
    INTERNAL = "internal"


class WireError(Exception):
    """A frame that cannot be accepted. ``req`` is the request id if it could be read."""

    def __init__(self, code: str, reason: str, *, req: int | None = None, type: str = "") -> None:
        super().__init__(f"{code}: {reason}")
        self.code = code
        self.reason = reason
        self.req = req
        self.type = type


# --------------------------------------------------------------------------------------------
# Message types. Field order is documentation order; all fields are keyword-only.
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Message:
    TYPE: ClassVar[str] = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class Capacity:
    """What the bridge worker can carry: cpu in cores, bandwidth of its host NIC in Mbps."""

    cpu: float = 1.0
    egress_mbps: float = 1000.0
    ingress_mbps: float = 1000.0


@dataclass(frozen=True, slots=True, kw_only=True)
class TrackInfo:
    """One m-line of a subscribe offer: which participant's media it carries (``""`` = idle)."""

    mid: str
    kind: str  # "audio" | "video"
    participant: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Hello(Message):
    """bridge -> balancer, first frame on every link."""

    TYPE: ClassVar[str] = "hello"
    id: str
    host: str
    region: str
    version: str
    capacity: Capacity
    pid: int
    auth: str = ""  # HMAC comes with the security issue; empty until then


@dataclass(frozen=True, slots=True, kw_only=True)
class Report(Message):
    """bridge -> balancer, every report interval; keys match ``core.model.LoadReport``."""

    TYPE: ClassVar[str] = "report"
    cpu: float  # process CPU in cores
    host_cpu: float  # whole host, 0..1
    bytes_in_per_s: float
    bytes_out_per_s: float
    packets_in_per_s: float
    packets_out_per_s: float
    participants: int
    rooms: int
    relay_streams: int
    measured_at: float  # the bridge's monotonic clock, seconds
    state: str = "serving"  # "serving" | "draining"


@dataclass(frozen=True, slots=True, kw_only=True)
class Allocate(Message):
    """balancer -> bridge: place ``participant`` in ``room``; ``sdp`` is its publish offer."""

    TYPE: ClassVar[str] = "allocate"
    req: int
    room: str
    participant: str
    sdp: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Allocated(Message):
    """bridge -> balancer, reply to ``allocate``: the publish answer."""

    TYPE: ClassVar[str] = "allocated"
    req: int
    room: str
    participant: str
    sdp: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Offer(Message):
    """bridge -> balancer: (re)offer of a subscribe connection.

    ``participant`` is a participant id, or ``relay:<relay>`` for the outgoing side of a relay.
    ``seq`` increases per connection; the ``answer`` must echo it so a stale answer is refused.
    """

    TYPE: ClassVar[str] = "offer"
    room: str
    participant: str
    sdp: str
    seq: int
    tracks: list[TrackInfo] = field(default_factory=list)


@dataclass(frozen=True, slots=True, kw_only=True)
class Answer(Message):
    """balancer -> bridge: the subscriber's (or peer bridge's) answer to offer ``seq``."""

    TYPE: ClassVar[str] = "answer"
    room: str
    participant: str
    sdp: str
    seq: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Release(Message):
    """balancer -> bridge: the participant left; its connections close, others renegotiate."""

    TYPE: ClassVar[str] = "release"
    room: str
    participant: str
    req: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class RelayOpen(Message):
    """balancer -> bridge: open (``sdp`` None) or feed (``sdp`` = the peer's offer) relay ``relay``.

    With ``sdp`` None the bridge creates the outgoing side and replies ``relay_accept`` carrying
    its offer. With an offer it answers it on the incoming side and replies with the answer.
    """

    TYPE: ClassVar[str] = "relay_open"
    req: int
    room: str
    relay: str
    peer: str  # id of the bridge at the other end
    sdp: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class RelayAccept(Message):
    """bridge -> balancer, reply to ``relay_open``: an offer (``kind`` "offer") or an answer."""

    TYPE: ClassVar[str] = "relay_accept"
    req: int
    room: str
    relay: str
    kind: str  # "offer" | "answer"
    sdp: str
    seq: int = 0  # for kind "offer": echo it in the ``answer`` to ``relay:<relay>``


@dataclass(frozen=True, slots=True, kw_only=True)
class RelayClose(Message):
    """balancer -> bridge: tear relay ``relay`` down (both sides get one)."""

    TYPE: ClassVar[str] = "relay_close"
    room: str
    relay: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Drain(Message):
    """balancer -> bridge: take no new rooms; ``deadline_s`` from now the rest is released."""

    TYPE: ClassVar[str] = "drain"
    deadline_s: float


@dataclass(frozen=True, slots=True, kw_only=True)
class Bye(Message):
    """Either side: the sender is going away on purpose (not a failure)."""

    TYPE: ClassVar[str] = "bye"
    reason: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class Error(Message):
    """Either side: the frame ``req`` (or an unparsable one) was refused, and why."""

    TYPE: ClassVar[str] = "error"
    code: str
    reason: str
    req: int | None = None
    about: str = ""  # the ``t`` of the refused frame, when known


MESSAGE_TYPES: dict[str, type[Message]] = {
    cls.TYPE: cls
    for cls in (
        Hello, Report, Allocate, Allocated, Offer, Answer, Release,
        RelayOpen, RelayAccept, RelayClose, Drain, Bye, Error,
    )
}


# --------------------------------------------------------------------------------------------
# Encoding and validated decoding.
# --------------------------------------------------------------------------------------------


def encode(message: Message) -> bytes:
    """One binary WebSocket frame."""
    body = dataclasses.asdict(message)
    frame: dict[str, Any] = {"v": PROTOCOL_VERSION, "t": message.TYPE}
    frame.update(body)
    data: bytes = msgpack.packb(frame, use_bin_type=True)
    return data


def decode(data: bytes | bytearray | memoryview) -> Message:
    """Parse and validate one frame, or raise ``WireError``."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise WireError(ErrorCode.MALFORMED, f"frame must be bytes, got {type(data).__name__}")
    if len(data) > MAX_FRAME_BYTES:
        raise WireError(ErrorCode.MALFORMED, f"frame of {len(data)} bytes exceeds the limit")
    try:
        frame = msgpack.unpackb(data, raw=False, strict_map_key=True)
    except Exception as exc:  # msgpack raises several unrelated types on garbage
        raise WireError(ErrorCode.MALFORMED, f"not a msgpack frame: {exc}") from None
    if not isinstance(frame, dict):
        raise WireError(ErrorCode.MALFORMED, "frame must be a map")
    req = frame.get("req")
    req = req if isinstance(req, int) and not isinstance(req, bool) else None
    mtype = frame.get("t")
    about = mtype if isinstance(mtype, str) else ""
    version = frame.get("v")
    if version != PROTOCOL_VERSION or isinstance(version, bool):
        raise WireError(
            ErrorCode.VERSION,
            f"protocol version {version!r} is not supported (this side speaks {PROTOCOL_VERSION})",
            req=req, type=about,
        )
    cls = MESSAGE_TYPES.get(about)
    if cls is None:
        raise WireError(ErrorCode.UNKNOWN_TYPE, f"unknown message type {mtype!r}", req=req)
    try:
        message = _build(cls, frame, about)
    except _FieldError as exc:
        raise WireError(ErrorCode.MALFORMED, str(exc), req=req, type=about) from None
    assert isinstance(message, Message)
    return message


def error_reply(exc: WireError) -> Error:
    """The ``error`` message that answers a refused frame."""
    return Error(code=exc.code, reason=exc.reason, req=exc.req, about=exc.type)


class _FieldError(Exception):
    pass


_HINTS: dict[type, dict[str, Any]] = {}


def _hints(cls: type) -> dict[str, Any]:
    hints = _HINTS.get(cls)
    if hints is None:
        hints = typing.get_type_hints(cls)
        _HINTS[cls] = hints
    return hints


def _build(cls: type, frame: dict[str, Any], where: str) -> object:
    hints = _hints(cls)
    kwargs: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if f.name not in frame:
            has_default = (
                f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
            )
            if has_default:
                continue
            raise _FieldError(f"{where}: missing field {f.name!r}")
        kwargs[f.name] = _check(hints[f.name], frame[f.name], f"{where}.{f.name}")
    return cls(**kwargs)


def _check(hint: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(hint)
    if origin is Union or origin is types.UnionType:
        for option in typing.get_args(hint):
            try:
                return _check(option, value, where)
            except _FieldError:
                continue
        raise _FieldError(f"{where}: {_describe(value)} matches none of {hint}")
    if hint is type(None):
        if value is None:
            return None
    elif hint is bool:
        if isinstance(value, bool):
            return value
    elif hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif hint is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            if math.isfinite(value):
                return float(value)
            raise _FieldError(f"{where}: must be finite, got {value!r}")
    elif hint is str:
        if isinstance(value, str):
            return value
    elif origin is list:
        if isinstance(value, list):
            (item,) = typing.get_args(hint)
            return [_check(item, v, f"{where}[{i}]") for i, v in enumerate(value)]
    elif dataclasses.is_dataclass(hint):
        if isinstance(value, dict):
            return _build(hint, value, where)  # type: ignore[arg-type]
    else:  # pragma: no cover - a message declared a field type this checker does not know
        raise _FieldError(f"{where}: unsupported field type {hint!r}")
    expected = getattr(hint, "__name__", hint)
    raise _FieldError(f"{where}: expected {expected}, got {_describe(value)}")


def _describe(value: Any) -> str:
    return f"{type(value).__name__} {value!r}"[:80]
