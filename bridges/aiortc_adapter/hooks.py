"""The pinned aiortc and every private aiortc/aioice name the bridge hooks; ``verify_hooks``.

aiortc has no public API for forwarding RTP, so the modules of this package reach into its
internals (DESIGN.md §6): each name they use is listed in the tables below, and nothing outside
``bridges/aiortc_adapter/`` may use any of them (a test enforces it). aiortc is pinned
(pyproject: ``aiortc==1.16.0``, ``PINNED_AIORTC`` here) because these names change between
releases. ``verify_hooks`` checks that every listed name still exists and fails loudly
(``HookError``, naming what is gone) otherwise; the bridge runs it at start-up and a test runs it
in CI. A new private name used anywhere in the package belongs in these tables too.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Sequence

import aioice.ice
import aiortc
from aiortc import RTCPeerConnection
from aiortc import clock as _clock
from aiortc.rtcrtpreceiver import RTCRtpReceiver
from aiortc.rtp import HeaderExtensionsMap, RtpPacket

from bridges.aiortc_adapter.tracks import silent_track

log = logging.getLogger(__package__)  # the logger name of the single module this package was

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
        if not hasattr(silent_track("video", "x"), "_id"):
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
