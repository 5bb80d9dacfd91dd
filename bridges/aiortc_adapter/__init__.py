"""Every private aiortc (and aioice) name the bridge relies on lives in this package, and only here.

aiortc has no public API for forwarding RTP, so the bridge hooks it (DESIGN.md §6). Each module
says which private names it uses and why:
- ``hooks``: the pinned version, the table of every hooked name, ``verify_hooks``;
- ``receive``: a no-op jitter buffer (nothing is reassembled or decoded) and a synchronous tap in
  front of ``RTCRtpReceiver._handle_rtp_packet`` (the original still runs afterwards, so receiver
  reports, NACKs and REMB towards the publisher keep working); PLI towards a publisher;
- ``sender``: ``RawSender`` writes already-rewritten RTP bytes straight through the subscriber
  transport's SRTP session to the nominated ICE pair's UDP socket, and keeps the aiortc sender's
  SR counters right; NACK and PLI/FIR that reach that sender are diverted to the bridge;
- ``tracks``: silent sender tracks, the msid stream id, negotiation results (payload types,
  header extension ids) and the SSRCs aiortc announced;
- ``rtp``: ``aiortc.rtp.RtpPacket`` (the parsed packet the receive tap gets) and
  ``aiortc.clock.current_ntp_time``, re-exported: neither module is part of aiortc's public
  top-level API, so the rest of the bridge imports them from here; ``parse_rtp`` with given
  extension ids;
- ``transport``: ICE host addresses, a known close race, and test helpers that reach into a
  connection's sockets (``pause_reading``, ``udp_transports``).

Everything the rest of the repo uses is re-exported here: import from ``bridges.aiortc_adapter``,
not from its submodules. aiortc is pinned (pyproject: ``aiortc==1.16.0``). ``verify_hooks``
checks that every hooked name still exists and fails loudly otherwise; the bridge runs it at
start-up and a test runs it in CI.
"""

from __future__ import annotations

from bridges.aiortc_adapter.hooks import HOOKED_NAMES, PINNED_AIORTC, HookError, verify_hooks
from bridges.aiortc_adapter.receive import RtpTap, install_receive_tap, send_pli
from bridges.aiortc_adapter.rtp import (
    URI_ABS_SEND_TIME,
    URI_AUDIO_LEVEL,
    URI_MID,
    RtpPacket,
    current_ntp_time,
    parse_rtp,
)
from bridges.aiortc_adapter.sender import MAX_WRITE_BUFFER, RawSender
from bridges.aiortc_adapter.tracks import (
    negotiated_extension_ids,
    negotiated_payload_types,
    rtx_payload_types,
    sender_ssrcs,
    set_stream_id,
    silent_track,
)
from bridges.aiortc_adapter.transport import (
    ignore_close_races,
    pause_reading,
    restrict_ice_addresses,
    udp_transports,
)

__all__ = [
    "HOOKED_NAMES",
    "MAX_WRITE_BUFFER",
    "PINNED_AIORTC",
    "URI_ABS_SEND_TIME",
    "URI_AUDIO_LEVEL",
    "URI_MID",
    "HookError",
    "RawSender",
    "RtpPacket",
    "RtpTap",
    "current_ntp_time",
    "ignore_close_races",
    "install_receive_tap",
    "negotiated_extension_ids",
    "negotiated_payload_types",
    "parse_rtp",
    "pause_reading",
    "restrict_ice_addresses",
    "rtx_payload_types",
    "send_pli",
    "sender_ssrcs",
    "set_stream_id",
    "silent_track",
    "udp_transports",
    "verify_hooks",
]
