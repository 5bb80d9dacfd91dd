"""Receive side: a synchronous tap in front of aiortc's RTP handler, and PLI towards a sender.

aiortc has no public hook for received RTP, so ``install_receive_tap`` wraps
``RTCRtpReceiver._handle_rtp_packet`` (the original still runs afterwards, so receiver reports,
NACKs and REMB towards the publisher keep working) and replaces the name-mangled
``RTCRtpReceiver.__jitter_buffer`` with a no-op one (nothing is reassembled or decoded);
``send_pli`` calls ``RTCRtpReceiver._send_rtcp_pli``. The names are listed in ``hooks`` and
checked by ``verify_hooks`` against the pinned aiortc (``hooks.PINNED_AIORTC``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiortc.rtcrtpreceiver import RTCRtpReceiver
from aiortc.rtp import RtpPacket

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
