"""Every private aiortc (and aioice) name the bridge relies on lives in this module, and only here.

aiortc has no public API for forwarding RTP, so the bridge hooks it (DESIGN.md §6):
- receive: a no-op jitter buffer (nothing is reassembled or decoded) and a synchronous tap in
  front of ``RTCRtpReceiver._handle_rtp_packet`` (the original still runs afterwards, so receiver
  reports, NACKs and REMB towards the publisher keep working);
- send: ``RawSender`` writes already-rewritten RTP bytes straight through the subscriber
  transport's SRTP session to the nominated ICE pair's UDP socket, and keeps the aiortc sender's
  SR counters right; NACK and PLI/FIR that reach that sender are diverted to the bridge;
- negotiation results (payload types, header extension ids) and the msid stream id;
- ``aiortc.rtp.RtpPacket`` (the parsed packet the receive tap gets, with the fields in
  ``_RTP_PACKET_ATTRS``) and ``aiortc.clock.current_ntp_time``, re-exported here: neither module
  is part of aiortc's public top-level API, so the rest of the bridge imports them from here;
- test helpers that reach into a connection's sockets (``pause_reading``, ``udp_transports``)
  and parse RTP with given extension ids (``parse_rtp``).

aiortc is pinned (pyproject: ``aiortc==1.16.0``). ``verify_hooks`` checks that every name below
still exists and fails loudly otherwise; the bridge runs it at start-up and a test runs it in CI.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import aioice.ice
import aiortc
from aiortc import (
    RTCPeerConnection,
    RTCRtpHeaderExtensionParameters,
    RTCRtpParameters,
    RTCRtpTransceiver,
)
from aiortc import clock as _clock
from aiortc.clock import current_ntp_time as current_ntp_time
from aiortc.exceptions import InvalidStateError
from aiortc.mediastreams import MediaStreamTrack
from aiortc.rtcrtpreceiver import RTCRtpReceiver
from aiortc.rtcrtpsender import RTCRtpSender
from aiortc.rtp import HeaderExtensionsMap
from aiortc.rtp import RtpPacket as RtpPacket

from bridges.counters import TrafficCounters

log = logging.getLogger(__name__)

PINNED_AIORTC = "1.16.0"

# (owner, attribute): instance attributes checked on live objects by verify_hooks().
_SENDER_ATTRS = (
    "_ssrc", "_rtx_ssrc", "_stream_id", "_retransmit", "_send_keyframe",
    "_RTCRtpSender__ntp_timestamp", "_RTCRtpSender__rtp_timestamp",
    "_RTCRtpSender__octet_count", "_RTCRtpSender__packet_count",
)
_RECEIVER_ATTRS = ("_handle_rtp_packet", "_send_rtcp_pli", "_RTCRtpReceiver__jitter_buffer")
_TRANSCEIVER_ATTRS = ("_codecs", "_headerExtensions")
_DTLS_ATTRS = ("_tx_srtp", "transport")
_ICE_ATTRS = ("_connection",)
_CONNECTION_ATTRS = ("_nominated", "_protocols")
# What the forwarder and the test clients read from a received packet (and build one with).
_RTP_PACKET_ATTRS = (
    "payload", "padding_size", "payload_type", "sequence_number", "ssrc", "timestamp", "marker",
    "extensions",
)
_RTP_EXTENSION_ATTRS = ("audio_level", "mid", "abs_send_time")
_RTP_PACKET_ARGS = ("payload_type", "marker", "sequence_number", "timestamp", "ssrc", "payload")
HOOKED_NAMES: tuple[str, ...] = (
    *(f"RTCRtpSender.{a}" for a in _SENDER_ATTRS),
    *(f"RTCRtpReceiver.{a}" for a in _RECEIVER_ATTRS),
    *(f"RTCRtpTransceiver.{a}" for a in _TRANSCEIVER_ATTRS),
    *(f"RTCDtlsTransport.{a}" for a in _DTLS_ATTRS),
    *(f"RTCIceTransport.{a}" for a in _ICE_ATTRS),
    *(f"aioice.Connection.{a}" for a in _CONNECTION_ATTRS),
    "MediaStreamTrack._id",
    "aioice.ice.get_host_addresses",
    *(f"RtpPacket.{a}" for a in _RTP_PACKET_ATTRS),
    *(f"RtpPacket.extensions.{a}" for a in _RTP_EXTENSION_ATTRS),
    "RtpPacket.parse", "HeaderExtensionsMap.configure", "aiortc.clock.current_ntp_time",
)

URI_MID = "urn:ietf:params:rtp-hdrext:sdes:mid"
URI_ABS_SEND_TIME = "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time"
URI_AUDIO_LEVEL = "urn:ietf:params:rtp-hdrext:ssrc-audio-level"


class HookError(RuntimeError):
    """A private aiortc name the bridge hooks is gone: aiortc changed, update this adapter."""


async def verify_hooks() -> None:
    """Fail loudly (``HookError``) if any hooked private name is missing. Needs a running loop."""
    missing: list[str] = []
    if aiortc.__version__ != PINNED_AIORTC:
        log.warning("aiortc %s is not the pinned %s", aiortc.__version__, PINNED_AIORTC)
    pc = RTCPeerConnection()
    try:
        transceiver = pc.addTransceiver("video", direction="sendonly")
        checks: list[tuple[object, str, Sequence[str]]] = [
            (transceiver.sender, "RTCRtpSender", _SENDER_ATTRS),
            (transceiver.receiver, "RTCRtpReceiver", _RECEIVER_ATTRS),
            (transceiver, "RTCRtpTransceiver", _TRANSCEIVER_ATTRS),
            (transceiver.sender.transport, "RTCDtlsTransport", _DTLS_ATTRS),
            (transceiver.sender.transport.transport, "RTCIceTransport", _ICE_ATTRS),
        ]
        ice = getattr(transceiver.sender.transport.transport, "_connection", None)
        if ice is not None:
            checks.append((ice, "aioice.Connection", _CONNECTION_ATTRS))
        for obj, owner, attrs in checks:
            missing += [f"{owner}.{a}" for a in attrs if not hasattr(obj, a)]
        if not hasattr(_SilentTrack("video", "x"), "_id"):
            missing.append("MediaStreamTrack._id")
        params = list(inspect.signature(RTCRtpReceiver._handle_rtp_packet).parameters)
        if params[:3] != ["self", "packet", "arrival_time_ms"]:
            missing.append(f"RTCRtpReceiver._handle_rtp_packet{params}")
        if not callable(getattr(aioice.ice, "get_host_addresses", None)):
            missing.append("aioice.ice.get_host_addresses")
        missing += _missing_rtp_names()
    finally:
        await pc.close()
    if missing:
        raise HookError(
            f"aiortc {aiortc.__version__}: hooked private names are gone: {', '.join(missing)}"
        )


def _missing_rtp_names() -> list[str]:
    missing: list[str] = []
    params = list(inspect.signature(RtpPacket).parameters)
    missing += [f"RtpPacket({a}=)" for a in _RTP_PACKET_ARGS if a not in params]
    packet = RtpPacket()
    missing += [f"RtpPacket.{a}" for a in _RTP_PACKET_ATTRS if not hasattr(packet, a)]
    extensions = getattr(packet, "extensions", None)
    missing += [
        f"RtpPacket.extensions.{a}" for a in _RTP_EXTENSION_ATTRS if not hasattr(extensions, a)
    ]
    if not callable(getattr(RtpPacket, "parse", None)):
        missing.append("RtpPacket.parse")
    if not callable(getattr(HeaderExtensionsMap, "configure", None)):
        missing.append("HeaderExtensionsMap.configure")
    if not callable(getattr(_clock, "current_ntp_time", None)):
        missing.append("aiortc.clock.current_ntp_time")
    return missing


def parse_rtp(data: bytes, extension_ids: Mapping[str, int]) -> RtpPacket:
    """Parse one RTP packet whose header extensions use ``extension_ids`` (uri -> id)."""
    extensions = HeaderExtensionsMap()
    extensions.configure(RTCRtpParameters(headerExtensions=[
        RTCRtpHeaderExtensionParameters(id=i, uri=uri) for uri, i in extension_ids.items()
    ]))
    return RtpPacket.parse(data, extensions)


# ---------------------------------------------------------------------------------------------
# Sockets of a connection (tests: a peer that stops reading, a socket that cannot drain)
# ---------------------------------------------------------------------------------------------


def udp_transports(pc: RTCPeerConnection) -> list[asyncio.DatagramTransport]:
    """The UDP transports of every ICE connection of ``pc`` (one per gathered host address)."""
    found: list[asyncio.DatagramTransport] = []
    for transceiver in pc.getTransceivers():
        connection = transceiver.sender.transport.transport._connection
        for protocol in connection._protocols:
            transport = protocol.transport
            if transport is not None and transport not in found:
                found.append(transport)
    return found


def pause_reading(pc: RTCPeerConnection) -> int:
    """Stop reading ``pc``'s UDP sockets: what arrives piles up in the kernel, then is lost.

    Returns how many sockets were paused.
    """
    transports = udp_transports(pc)
    for transport in transports:
        transport.pause_reading()  # type: ignore[attr-defined]
    return len(transports)


# ---------------------------------------------------------------------------------------------
# ICE addresses
# ---------------------------------------------------------------------------------------------


def restrict_ice_addresses(addresses: Sequence[str]) -> None:
    """Gather host candidates only on ``addresses`` (aioice skips 127.0.0.1 by default).

    Process-wide: every peer connection created afterwards uses these addresses.
    """
    chosen = list(addresses)

    def get_host_addresses(use_ipv4: bool = True, use_ipv6: bool = True) -> list[str]:
        return [a for a in chosen if (":" in a and use_ipv6) or (":" not in a and use_ipv4)]

    aioice.ice.get_host_addresses = get_host_addresses


def ignore_close_races(loop: asyncio.AbstractEventLoop) -> None:
    """Drop one known-harmless aiortc 1.16 error instead of logging it with its traceback.

    A connection closed while its connect task is between steps makes that task fail with
    ``InvalidStateError("RTCIceTransport is closed")``, reported as "Task exception was never
    retrieved". Nothing is wrong (the connection is gone on purpose), and a logged traceback
    would keep the closed connection's objects alive as long as the log record lives.
    """

    def handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        exc = context.get("exception")
        if isinstance(exc, InvalidStateError) and "is closed" in str(exc):
            log.debug("ignored aiortc close race: %s", exc)
            return
        loop.default_exception_handler(context)

    loop.set_exception_handler(handler)


# ---------------------------------------------------------------------------------------------
# Tracks
# ---------------------------------------------------------------------------------------------


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


# ---------------------------------------------------------------------------------------------
# Negotiation results
# ---------------------------------------------------------------------------------------------


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


# ---------------------------------------------------------------------------------------------
# Receive side
# ---------------------------------------------------------------------------------------------

RtpTap = Callable[[RtpPacket, int], None]


class _NoJitterBuffer:
    """Replaces aiortc's jitter buffer: nothing is reassembled, so nothing reaches the decoder."""

    def add(self, packet: RtpPacket) -> tuple[bool, None]:
        return False, None


def install_receive_tap(receiver: RTCRtpReceiver, tap: RtpTap, *, decode: bool = False) -> None:
    """Call ``tap(packet, arrival_ms)`` synchronously for every RTP packet routed to ``receiver``.

    The tap runs first (forwarding adds no wait), then aiortc's own handler, which keeps RTCP
    receiver reports, NACK generation and REMB towards the sender. The decoder thread aiortc starts
    stays idle because the no-op jitter buffer never completes a frame. ``decode=True`` keeps the
    jitter buffer (test clients that both inspect packets and decode).
    """
    if not decode:
        receiver._RTCRtpReceiver__jitter_buffer = _NoJitterBuffer()  # type: ignore[attr-defined]
    original = receiver._handle_rtp_packet

    async def handle(packet: RtpPacket, arrival_time_ms: int) -> None:
        tap(packet, arrival_time_ms)
        await original(packet, arrival_time_ms=arrival_time_ms)

    receiver._handle_rtp_packet = handle  # type: ignore[method-assign]


def send_pli(receiver: RTCRtpReceiver, media_ssrc: int) -> Awaitable[None]:
    """RTCP PLI towards the sender of ``media_ssrc`` (a coroutine to schedule)."""
    return receiver._send_rtcp_pli(media_ssrc)


# ---------------------------------------------------------------------------------------------
# Send side
# ---------------------------------------------------------------------------------------------


# Past this much data queued in asyncio's user-space buffer of one socket, packets for it are
# dropped: a subscriber path that cannot drain must never grow memory or delay the others.
MAX_WRITE_BUFFER = 256 * 1024


class RawSender:
    """Sends finished RTP bytes for one aiortc ``RTCRtpSender`` without aiortc's per-packet objects.

    Invariants: ``send`` never awaits and never raises (a leg that is not connected drops the
    packet and counts it); SR counters advance exactly for packets handed to the socket, so the
    receiver's SR-based statistics stay coherent.
    """

    __slots__ = (
        "_addr", "_counters", "_dtls", "_nominated", "_pair", "_protect", "_sender", "_sendto",
        "_udp", "rtx_ssrc", "ssrc",
    )

    def __init__(self, sender: RTCRtpSender, counters: TrafficCounters) -> None:
        self._sender = sender
        self._counters = counters
        self.ssrc, self.rtx_ssrc = sender._ssrc, sender._rtx_ssrc
        self._dtls = sender.transport
        self._nominated: dict[int, Any] = self._dtls.transport._connection._nominated
        self._pair: Any = None
        self._protect: Callable[[bytes], bytes] | None = None
        self._sendto: Callable[[bytes, Any], None] | None = None
        self._udp: Any = None
        self._addr: Any = None

    def _refresh(self) -> bool:
        if self._sender.transport is not self._dtls:  # re-bundled: follow the new transport
            self._dtls = self._sender.transport
            self._nominated = self._dtls.transport._connection._nominated
            self._protect = None
        srtp = self._dtls._tx_srtp
        pair = self._nominated.get(1)
        if srtp is None or pair is None:
            self._pair = None
            return False
        self._protect = srtp.protect
        self._pair = pair
        self._udp = pair.protocol.transport
        self._sendto = self._udp.sendto
        self._addr = pair.remote_addr
        return True

    @property
    def ready(self) -> bool:
        """Connected: DTLS keys exist and ICE nominated a pair."""
        if self._pair is None or self._nominated.get(1) is not self._pair:
            return self._refresh()
        return True

    def send(self, data: bytes, rtp_timestamp: int, payload_len: int, ntp: int) -> bool:
        """Protect and send one media packet; update the sender's SR counters."""
        stale = self._pair is None or self._nominated.get(1) is not self._pair
        if stale and not self._refresh():
            self._counters.dropped_out += 1
            return False
        if self._udp.get_write_buffer_size() > MAX_WRITE_BUFFER:
            self._counters.dropped_out += 1
            return False
        try:
            wire = self._protect(data)  # type: ignore[misc]
            self._sendto(wire, self._addr)  # type: ignore[misc]
        except Exception:  # a closed transport or a libsrtp refusal drops this packet only
            self._counters.dropped_out += 1
            self._pair = None
            return False
        sender = self._sender
        sender._RTCRtpSender__ntp_timestamp = ntp  # type: ignore[attr-defined]
        sender._RTCRtpSender__rtp_timestamp = rtp_timestamp  # type: ignore[attr-defined]
        sender._RTCRtpSender__octet_count += payload_len  # type: ignore[attr-defined]
        sender._RTCRtpSender__packet_count += 1  # type: ignore[attr-defined]
        counters = self._counters
        counters.packets_out += 1
        counters.bytes_out += len(wire)
        return True

    def send_repair(self, data: bytes) -> bool:
        """Send a retransmission (RTX or repeated media): not counted in the SR."""
        if not self.ready:
            return False
        try:
            wire = self._protect(data)  # type: ignore[misc]
            self._sendto(wire, self._addr)  # type: ignore[misc]
        except Exception:
            return False
        self._counters.packets_out += 1
        self._counters.bytes_out += len(wire)
        return True

    def divert_feedback(
        self,
        on_nack: Callable[[int], None],
        on_keyframe_request: Callable[[], None],
    ) -> None:
        """Route NACKed sequence numbers and PLI/FIR received by this sender to the bridge.

        aiortc's sender would look up its own history (empty here) and ask its encoder (none)
        for a keyframe; both are replaced on this instance only.
        """

        async def retransmit(sequence_number: int) -> None:
            on_nack(sequence_number)

        self._sender._retransmit = retransmit  # type: ignore[method-assign]
        self._sender._send_keyframe = on_keyframe_request  # type: ignore[method-assign]
