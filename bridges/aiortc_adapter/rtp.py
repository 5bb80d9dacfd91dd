"""RTP packets as aiortc parses them: the ``RtpPacket`` re-export, extension URIs, ``parse_rtp``.

``aiortc.rtp`` (``RtpPacket``, ``HeaderExtensionsMap``) and ``aiortc.clock`` are submodules, not
part of aiortc's public top-level API, so only this package imports them; the rest of the bridge
takes ``RtpPacket`` and ``current_ntp_time`` from ``bridges.aiortc_adapter``. The packet fields
the bridge reads are listed in ``hooks._RTP_PACKET_ATTRS`` and checked by ``verify_hooks``
against the pinned aiortc (``hooks.PINNED_AIORTC``).
"""

from __future__ import annotations

from collections.abc import Mapping

from aiortc import RTCRtpHeaderExtensionParameters, RTCRtpParameters
from aiortc.clock import current_ntp_time as current_ntp_time
from aiortc.rtp import HeaderExtensionsMap
from aiortc.rtp import RtpPacket as RtpPacket

URI_MID = "urn:ietf:params:rtp-hdrext:sdes:mid"
URI_ABS_SEND_TIME = "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time"
URI_AUDIO_LEVEL = "urn:ietf:params:rtp-hdrext:ssrc-audio-level"


def parse_rtp(data: bytes, extension_ids: Mapping[str, int]) -> RtpPacket:
    """Parse one RTP packet whose header extensions use ``extension_ids`` (uri -> id)."""
    extensions = HeaderExtensionsMap()
    extensions.configure(RTCRtpParameters(headerExtensions=[
        RTCRtpHeaderExtensionParameters(id=i, uri=uri) for uri, i in extension_ids.items()
    ]))
    return RtpPacket.parse(data, extensions)
