"""Messages of the balancer <-> bridge link (DESIGN.md §4), msgpack over WebSocket binary frames.

Rules of this module:
- It imports only the standard library, msgpack and its two halves below. Bridges import it,
  so it must never pull in asyncio, aiohttp, redis or aiortc (a test checks this in a fresh
  interpreter).
- Every frame is one msgpack map ``{"v": PROTOCOL_VERSION, "t": <type>, ...fields}``.
- ``decode`` either returns a fully validated, frozen message or raises ``WireError``. It never
  raises anything else, whatever the bytes: the receiver answers a ``WireError`` with an ``error``
  message (``error_reply``) and keeps the link open.
- Unknown *extra* keys are ignored (a newer peer may add optional fields); a missing or mistyped
  field, an unknown type or another version is a ``WireError``.
- Requests that expect a reply carry ``req`` (an int chosen by the sender); the reply, or the
  ``error`` that replaces it, carries the same ``req``.

The exact fields, directions and flows are documented in docs/protocol.md ("Bridge link").
The message dataclasses live in ``wire_messages`` and the field validation in ``wire_fields``;
this module is the framing, and callers import everything from here (``wire.Hello``, ...).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import msgpack  # type: ignore[import-untyped]

from sfu_balancer import wire_fields as _fields
from sfu_balancer.wire_messages import (
    MESSAGE_TYPES,
    Allocate,
    Allocated,
    Answer,
    Bye,
    Capacity,
    Drain,
    Error,
    Hello,
    Message,
    Offer,
    RelayAccept,
    RelayClose,
    RelayOpen,
    Release,
    Report,
    Seat,
    Sync,
    TrackInfo,
)

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
    "Seat",
    "Sync",
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
# Encoding and validated decoding.
# --------------------------------------------------------------------------------------------


# Field names per dataclass type, None for every other type seen (bounded by the types the
# messages hold): ``is_dataclass`` and ``fields`` per value were most of an encode.
_FIELD_NAMES: dict[type, tuple[str, ...] | None] = {}


def _plain(value: Any) -> Any:
    """Dataclasses to maps, recursively; everything else as it is (msgpack packs lists,
    tuples, str, numbers). Cheaper than ``dataclasses.asdict``, which deep-copies every value:
    this runs for every report and every join's allocate."""
    kind = type(value)
    try:
        names = _FIELD_NAMES[kind]
    except KeyError:
        is_instance = dataclasses.is_dataclass(value) and not isinstance(value, type)
        names = _FIELD_NAMES[kind] = (tuple(f.name for f in dataclasses.fields(value))
                                      if is_instance else None)
    if names is not None:
        return {name: _plain(getattr(value, name)) for name in names}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def encode(message: Message) -> bytes:
    """One binary WebSocket frame."""
    frame: dict[str, Any] = {"v": PROTOCOL_VERSION, "t": message.TYPE}
    frame.update(_plain(message))
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
        message = _fields.build(cls, frame, about)
    except _fields.FieldError as exc:
        raise WireError(ErrorCode.MALFORMED, str(exc), req=req, type=about) from None
    assert isinstance(message, Message)
    return message


def error_reply(exc: WireError) -> Error:
    """The ``error`` message that answers a refused frame."""
    return Error(code=exc.code, reason=exc.reason, req=exc.req, about=exc.type)
