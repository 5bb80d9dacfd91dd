"""Send side: ``RawSender`` puts already-rewritten RTP bytes on the wire for one aiortc sender.

aiortc has no public API for sending raw RTP, so ``RawSender`` goes through private names: the
subscriber transport's SRTP session (``RTCDtlsTransport._tx_srtp``) and the nominated ICE pair's
UDP socket (``RTCIceTransport._connection`` -> ``aioice.Connection._nominated``); it keeps the
aiortc sender's SR counters right (the name-mangled ``RTCRtpSender.__ntp_timestamp``,
``__rtp_timestamp``, ``__octet_count``, ``__packet_count``) and diverts the NACK and PLI/FIR
that reach that sender (``RTCRtpSender._retransmit``, ``_send_keyframe``) to the bridge. The names
are listed in ``hooks`` and checked by ``verify_hooks`` against the pinned aiortc
(``hooks.PINNED_AIORTC``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiortc.rtcrtpsender import RTCRtpSender

from bridges.counters import TrafficCounters

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
