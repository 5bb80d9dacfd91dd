"""Tracks, stream ids and negotiation results, read from or written to aiortc private names.

- ``silent_track``: a sender track that never yields, with its msid track id set through
  ``MediaStreamTrack._id``; ``set_stream_id`` writes ``RTCRtpSender._stream_id``;
- what was negotiated: ``RTCRtpTransceiver._codecs`` (payload types, RTX) and
  ``RTCRtpTransceiver._headerExtensions`` (extension ids);
- ``sender_ssrcs``: ``RTCRtpSender._ssrc`` / ``_rtx_ssrc``, the SSRCs aiortc announced.

aiortc exposes none of these publicly. The names are listed in ``hooks`` and checked by
``verify_hooks`` against the pinned aiortc (``hooks.PINNED_AIORTC``).
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiortc import RTCRtpTransceiver
from aiortc.mediastreams import MediaStreamTrack
from aiortc.rtcrtpsender import RTCRtpSender


class _SilentTrack(MediaStreamTrack):
    """A sender track that never yields, so aiortc's own RTP loop idles (no 50 Hz polling)."""

    def __init__(self, kind: str, track_id: str) -> None:
        super().__init__()
        self.kind = kind
        self._id = track_id  # private: the track id that goes into a=msid

    async def recv(self) -> Any:
        await asyncio.Event().wait()  # never set: the sender task waits here until stopped


def silent_track(kind: str, track_id: str) -> MediaStreamTrack:
    return _SilentTrack(kind, track_id)


def set_stream_id(sender: RTCRtpSender, stream_id: str) -> None:
    """The msid stream id of ``sender`` in later offers (the bridge uses the participant id)."""
    sender._stream_id = stream_id


def negotiated_payload_types(transceiver: RTCRtpTransceiver) -> tuple[int | None, int | None]:
    """(primary payload type, its RTX payload type or None), as negotiated."""
    codecs = transceiver._codecs
    if not codecs:
        return None, None
    primary = codecs[0].payloadType
    for codec in codecs:
        if codec.name.lower() == "rtx" and codec.parameters.get("apt") == primary:
            return primary, codec.payloadType
    return primary, None


def rtx_payload_types(transceiver: RTCRtpTransceiver) -> frozenset[int]:
    return frozenset(
        c.payloadType for c in transceiver._codecs
        if c.name.lower() == "rtx" and c.payloadType is not None
    )


def negotiated_extension_ids(transceiver: RTCRtpTransceiver) -> dict[str, int]:
    return {ext.uri: ext.id for ext in transceiver._headerExtensions}


def sender_ssrcs(sender: RTCRtpSender) -> tuple[int, int]:
    """(media SSRC, RTX SSRC) that aiortc announced for ``sender``."""
    return sender._ssrc, sender._rtx_ssrc
