"""Rooms, participants and relays of one bridge worker.

- A ``Participant`` has a publish PC (the client offers; every audio/video m-line becomes a
  ``Source``) and a ``SubscribeSession`` carrying every source of the room except its own.
- A ``Relay`` links this bridge to another one for the same room with a pair of PCs: an outgoing
  ``SubscribeSession`` that carries this bridge's *local* sources only (so relayed media never
  loops back), and an incoming PC that answers the peer's offers; each of its active m-lines is a
  ``Source`` of origin ``<relay id>``, attributed to the participant named by its msid.
- The ``Room`` owns the sources; any change re-syncs every session of the room.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from aiortc import RTCPeerConnection, RTCRtpReceiver, RTCSessionDescription

from bridges import aiortc_adapter as adapter
from bridges.counters import TrafficCounters
from bridges.sfu.forwarder import Source
from bridges.sfu.sdp import BridgeError, check_publish_offer, parse_sections
from bridges.sfu.session import (
    OfferSink,
    SubscribeSession,
    bridge_config,
    close_pc,
    restrict_codecs,
)
from sfu_balancer.wire import ErrorCode, TrackInfo

log = logging.getLogger(__name__)

Spawn = Callable[[Coroutine[Any, Any, None]], None]
RELAY_PREFIX = "relay:"


def _pli_sender(receiver: RTCRtpReceiver, spawn: Spawn) -> Callable[[int], None]:
    def send(ssrc: int) -> None:
        spawn(adapter.send_pli(receiver, ssrc))  # type: ignore[arg-type]

    return send


class Room:
    def __init__(self, name: str, counters: TrafficCounters, spawn: Spawn) -> None:
        self.name = name
        self.counters = counters
        self.spawn = spawn
        self.participants: dict[str, Participant] = {}
        self.relays: dict[str, Relay] = {}
        self.sources: dict[str, Source] = {}

    @property
    def empty(self) -> bool:
        return not self.participants and not self.relays

    def add_source(self, source: Source) -> None:
        self.sources[source.key] = source
        self.sync()

    def remove_sources(self, sources: list[Source]) -> None:
        for source in sources:
            if self.sources.get(source.key) is source:
                del self.sources[source.key]
            source.close()
        self.sync()

    def sync(self) -> None:
        sources = list(self.sources.values())
        for participant in self.participants.values():
            if participant.session is not None:
                participant.session.update(sources)
        for relay in self.relays.values():
            if relay.session is not None:
                relay.session.update(sources)


class Participant:
    def __init__(self, room: Room, pid: str, send_offer: OfferSink) -> None:
        self.room = room
        self.id = pid
        self.publish_pc: RTCPeerConnection | None = None
        self.sources: list[Source] = []
        self.session: SubscribeSession | None = None
        self._send_offer = send_offer

    async def publish(self, offer_sdp: str) -> str:
        """Answer the client's publish offer; its tracks become sources of the room."""
        sections = check_publish_offer(offer_sdp)
        pc = RTCPeerConnection(bridge_config())
        self.publish_pc = pc
        for section in sections:
            # Pre-created so codec preferences apply: the answer keeps only Opus / VP8 (+RTX).
            restrict_codecs(pc.addTransceiver(section.kind, direction="recvonly"))
        new_sources: list[Source] = []

        @pc.on("track")
        def on_track(track: Any) -> None:
            for transceiver in pc.getTransceivers():
                if transceiver.receiver.track is track:
                    source = Source(
                        key=f"{self.id}:{transceiver.mid}", participant=self.id,
                        kind=transceiver.kind, origin="local",
                        rtx_payload_types=adapter.rtx_payload_types(transceiver),
                        counters=self.room.counters,
                        send_pli=_pli_sender(transceiver.receiver, self.room.spawn),
                    )
                    adapter.install_receive_tap(transceiver.receiver, source.on_packet)
                    new_sources.append(source)

        try:
            await pc.setRemoteDescription(RTCSessionDescription(sdp=offer_sdp, type="offer"))
            await pc.setLocalDescription(await pc.createAnswer())
        except BridgeError:
            raise
        except Exception as exc:
            raise BridgeError(ErrorCode.BAD_SDP, f"publish offer refused: {exc}") from None
        self.sources = new_sources
        self.session = SubscribeSession(
            name=f"{self.room.name}/{self.id}", counters=self.room.counters,
            wants=lambda s: s.participant != self.id, send_offer=self._send_offer,
        )
        for source in new_sources:
            self.room.sources[source.key] = source
        self.room.sync()
        return str(pc.localDescription.sdp)

    async def close(self) -> None:
        if self.session is not None:
            await self.session.close()
        if self.publish_pc is not None:
            await close_pc(self.publish_pc)


class Relay:
    def __init__(self, room: Room, rid: str, peer: str, send_offer: OfferSink) -> None:
        self.room = room
        self.id = rid
        self.peer = peer
        self.session: SubscribeSession | None = None
        self.in_pc: RTCPeerConnection | None = None
        self.in_sources: dict[str, Source] = {}  # by mid of the incoming PC
        self._send_offer = send_offer
        self._first_offer: asyncio.Future[tuple[str, int]] | None = None
        self._tapped: set[str] = set()  # mids of the incoming PC whose receiver has our tap

    @property
    def leg_id(self) -> str:
        return RELAY_PREFIX + self.id

    @property
    def streams(self) -> int:
        out = self.session.active_legs if self.session is not None else 0
        return out + len(self.in_sources)

    async def open_outgoing(self) -> tuple[str, int]:
        """Create the outgoing PC; return its first offer and seq (the reply to relay_open)."""
        if self.session is not None:
            raise BridgeError(ErrorCode.CONFLICT, f"relay {self.id} is already open outbound")
        loop = asyncio.get_running_loop()
        first: asyncio.Future[tuple[str, int]] = loop.create_future()
        self._first_offer = first

        def sink(sdp: str, seq: int, tracks: list[TrackInfo]) -> None:
            if not first.done():
                first.set_result((sdp, seq))
            else:
                self._send_offer(sdp, seq, tracks)

        self.session = SubscribeSession(
            name=f"{self.room.name}/{self.leg_id}", counters=self.room.counters,
            wants=lambda s: s.origin == "local", send_offer=sink,
        )
        # An outgoing PC needs at least one m-line to offer. With no local source yet the reply
        # carries an empty SDP, and the first real offer later travels as an `offer` message.
        self.session.update(self.room.sources.values())
        if not any(s.origin == "local" for s in self.room.sources.values()):
            first.set_result(("", 0))  # nothing to carry yet: the first offer comes as `offer`
        return await first

    async def accept_offer(self, offer_sdp: str) -> str:
        """Answer the peer's offer on the incoming PC and map its m-lines to sources."""
        sections = parse_sections(offer_sdp)
        if self.in_pc is None:
            self.in_pc = RTCPeerConnection(bridge_config())
        pc = self.in_pc
        try:
            await pc.setRemoteDescription(RTCSessionDescription(sdp=offer_sdp, type="offer"))
            await pc.setLocalDescription(await pc.createAnswer())
        except Exception as exc:
            raise BridgeError(ErrorCode.BAD_SDP, f"relay offer refused: {exc}") from None
        by_mid = {t.mid: t for t in pc.getTransceivers()}
        gone: list[Source] = []
        added: list[Source] = []
        for section in sections:
            transceiver = by_mid.get(section.mid)
            if transceiver is None or section.kind not in ("audio", "video"):
                continue
            current = self.in_sources.get(section.mid or "")
            active = section.direction in ("sendonly", "sendrecv") and section.msid_stream
            if current is not None and (not active or current.participant != section.msid_stream):
                gone.append(self.in_sources.pop(section.mid or ""))
            if active and section.mid not in self.in_sources:
                if section.mid not in self._tapped:
                    self._tapped.add(section.mid or "")
                    self._install_tap(transceiver.receiver, section.mid or "")
                source = Source(
                    key=f"{self.id}:{section.mid}:{section.msid_stream}",
                    participant=str(section.msid_stream), kind=section.kind, origin=self.id,
                    rtx_payload_types=adapter.rtx_payload_types(transceiver),
                    counters=self.room.counters,
                    send_pli=_pli_sender(transceiver.receiver, self.room.spawn),
                )
                self.in_sources[section.mid or ""] = source
                added.append(source)
        for source in added:
            self.room.sources[source.key] = source
        self.room.remove_sources(gone)  # also re-syncs every session of the room
        return str(pc.localDescription.sdp)

    def _install_tap(self, receiver: RTCRtpReceiver, mid: str) -> None:
        sources = self.in_sources

        def tap(packet: adapter.RtpPacket, arrival_ms: int) -> None:
            source = sources.get(mid)
            if source is not None:
                source.on_packet(packet, arrival_ms)

        adapter.install_receive_tap(receiver, tap)

    async def close(self) -> None:
        if self._first_offer is not None and not self._first_offer.done():
            self._first_offer.cancel()
        if self.session is not None:
            await self.session.close()
        if self.in_pc is not None:
            await close_pc(self.in_pc)
