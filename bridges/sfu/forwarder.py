"""The packet path: one ``Source`` per received track fans its RTP out to ``Leg``s.

Invariants:
- Forwarding is synchronous, inside aiortc's receive handler: no await, no queue, no task per
  packet. A packet is parsed once (by aiortc) and rewritten once per leg (``OutStream``).
- A leg never blocks the others: ``RawSender.send`` drops instead of waiting when its socket
  cannot take more (a subscriber that stops reading only loses its own packets).
- Keyframe requests towards a publisher go through ``KeyframeThrottle``: at most one PLI per
  ``min_interval`` per source, and a request made during the quiet time is sent when it ends
  (coalesced), so a subscriber who joins always gets its PLI and a keyframe.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Protocol

from bridges.aiortc_adapter import RawSender, RtpPacket, current_ntp_time
from bridges.counters import TrafficCounters
from bridges.sfu.rtp import OutStream, vp8_keyframe_start

KEYFRAME_RETRY_S = 0.5  # a leg waiting for a keyframe asks again this often (still throttled)


class Cancellable(Protocol):
    def cancel(self) -> None: ...


class Timers(Protocol):
    """What ``KeyframeThrottle`` needs from an event loop (tests pass a fake one)."""

    def time(self) -> float: ...
    def call_at(self, when: float, callback: Callable[[], object], /) -> Cancellable: ...


class KeyframeThrottle:
    """At most one ``send()`` per ``min_interval`` seconds; requests in between are coalesced.

    Time and timers come from ``timers`` (default: the running event loop, looked up on use).
    """

    def __init__(
        self, send: Callable[[], None], min_interval: float = 1.0, timers: Timers | None = None,
    ) -> None:
        self._send = send
        self._min_interval = min_interval
        self._timers = timers
        self._last: float | None = None
        self._pending: Cancellable | None = None
        self.sent = 0
        self.requested = 0

    def _loop(self) -> Timers:
        return self._timers if self._timers is not None else asyncio.get_running_loop()

    def request(self) -> None:
        self.requested += 1
        if self._pending is not None:
            return
        loop = self._loop()
        now = loop.time()
        if self._last is None or now - self._last >= self._min_interval:
            self._fire()
        else:
            self._pending = loop.call_at(self._last + self._min_interval, self._fire)

    def _fire(self) -> None:
        self._pending = None
        self._last = self._loop().time()
        self.sent += 1
        self._send()

    def close(self) -> None:
        if self._pending is not None:
            self._pending.cancel()
            self._pending = None


class Source:
    """One publisher track as received by this bridge (from a participant or a relay)."""

    def __init__(
        self, *, key: str, participant: str, kind: str, origin: str,
        rtx_payload_types: frozenset[int], counters: TrafficCounters,
        send_pli: Callable[[int], None], timers: Timers | None = None,
    ) -> None:
        self.key = key
        self.participant = participant
        self.kind = kind
        self.origin = origin  # "local", or the relay id it arrived through
        self.legs: list[Leg] = []
        self.media_ssrc: int | None = None
        self.packets = 0
        self.keyframes_seen = 0
        self._rtx_pts = rtx_payload_types
        self._counters = counters
        self._video = kind == "video"
        self._send_pli = send_pli
        self.keyframes = KeyframeThrottle(self._pli, timers=timers)

    def _pli(self) -> None:
        if self.media_ssrc is not None:
            self._send_pli(self.media_ssrc)

    def request_keyframe(self) -> None:
        if self._video:
            self.keyframes.request()

    def attach(self, leg: Leg) -> None:
        if leg not in self.legs:
            self.legs = [*self.legs, leg]  # copy-on-write: the packet loop iterates a snapshot

    def detach(self, leg: Leg) -> None:
        if leg in self.legs:
            self.legs = [x for x in self.legs if x is not leg]

    def close(self) -> None:
        for leg in self.legs:
            leg.detach()
        self.legs = []
        self.keyframes.close()

    def on_packet(self, packet: RtpPacket, arrival_ms: int) -> None:
        """Receive tap (see ``aiortc_adapter.install_receive_tap``): fan the packet out."""
        payload = packet.payload
        padding = packet.padding_size
        counters = self._counters
        counters.packets_in += 1
        counters.bytes_in += 12 + len(payload) + padding
        if packet.payload_type in self._rtx_pts:
            if len(payload) <= 2:
                return  # RTX padding probe: bandwidth estimation only
            seq = (payload[0] << 8) | payload[1]
            payload = payload[2:]
            padding = 0
        else:
            seq = packet.sequence_number
            self.media_ssrc = packet.ssrc
        self.packets += 1
        legs = self.legs
        if not legs:
            return
        now = time.monotonic()
        ntp = current_ntp_time()
        keyframe: bool | None = None
        if self._video:
            dynamic: bytes | None = ((ntp >> 14) & 0xFFFFFF).to_bytes(3, "big")  # abs-send-time
        else:
            level = packet.extensions.audio_level
            dynamic = None if level is None else bytes(((0x80 if level[0] else 0) | level[1],))
        ts_in = packet.timestamp
        marker = packet.marker
        for leg in legs:
            stream = leg.stream
            if not stream.started:
                if not leg.sender.ready:
                    continue
                if self._video:
                    if keyframe is None:
                        keyframe = vp8_keyframe_start(payload)
                        self.keyframes_seen += keyframe
                    if not keyframe:
                        leg.want_keyframe(now)
                        continue
                stream.start(seq, ts_in, now)
                leg.started_at = now
            out = stream.rewrite(seq, ts_in, marker, payload, padding, dynamic, now)
            if out is not None:
                leg.sender.send(out[0], out[1], len(payload), ntp)


class Leg:
    """One outgoing stream of a subscriber (or relay) connection; its source may change."""

    def __init__(self, stream: OutStream, sender: RawSender) -> None:
        self.stream = stream
        self.sender = sender
        self.source: Source | None = None
        self.started_at: float | None = None
        self._last_keyframe_ask = 0.0
        sender.divert_feedback(self._on_nack, self._on_keyframe_request)

    def attach(self, source: Source) -> None:
        if self.source is not None:
            self.detach()
        self.stream.stop()
        self.source = source
        self._last_keyframe_ask = 0.0
        source.attach(self)

    def detach(self) -> None:
        if self.source is not None:
            self.source.detach(self)
            self.source = None
        self.stream.stop()

    def want_keyframe(self, now: float) -> None:
        if self.source is not None and now - self._last_keyframe_ask >= KEYFRAME_RETRY_S:
            self._last_keyframe_ask = now
            self.source.request_keyframe()

    def _on_nack(self, seq: int) -> None:
        data = self.stream.repair(seq, time.monotonic())
        if data is not None:
            self.sender.send_repair(data)

    def _on_keyframe_request(self) -> None:
        if self.source is not None:
            self.source.request_keyframe()
