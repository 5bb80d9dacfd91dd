"""Cascade relays between two bridges of one room, driven through their links.

A relay has one id for both directions: each bridge opens an outgoing side carrying its local
publishers (``relay_open`` without SDP -> its offer), and the peer answers it (``relay_open``
with that offer -> answer), which goes back as ``answer`` to ``relay:<id>``. Later re-offers
from either side travel the same way (``forward_offer``).
"""

from __future__ import annotations

import contextlib
import uuid
from dataclasses import dataclass

import structlog

from sfu_balancer import wire

from .bridge_link import BridgeCommandError, BridgeUnavailable
from .fleet import Fleet
from .room_locks import RoomLocks

log = structlog.get_logger(__name__)
RELAY_PREFIX = "relay:"


@dataclass(frozen=True)
class Relay:
    id: str
    room: str
    a: str
    b: str

    def other(self, bridge: str) -> str:
        return self.b if bridge == self.a else self.a


class Relays:
    def __init__(self, fleet: Fleet, timeout_s: float) -> None:
        self.fleet = fleet
        self.timeout_s = timeout_s
        self.by_id: dict[str, Relay] = {}
        # Opening and closing a room's relays never interleave (a close racing an open
        # would leave one side half-built).
        self._locks = RoomLocks()

    def between(self, room: str, bridge: str) -> list[Relay]:
        return [r for r in self.by_id.values() if r.room == room and bridge in (r.a, r.b)]

    def touching(self, bridge: str) -> list[Relay]:
        return [r for r in self.by_id.values() if bridge in (r.a, r.b)]

    async def open(self, room: str, a: str, b: str) -> Relay:
        async with self._locks.hold(room):
            return await self._open(room, a, b)

    async def _open(self, room: str, a: str, b: str) -> Relay:
        relay = Relay(uuid.uuid4().hex[:16], room, a, b)
        self.by_id[relay.id] = relay
        try:
            for side in (a, b):
                accept = await self._request(side, lambda req, s=side: wire.RelayOpen(
                    req=req, room=room, relay=relay.id, peer=relay.other(s)))
                assert isinstance(accept, wire.RelayAccept)
                if accept.sdp:  # empty until the side has a local publisher
                    await self.forward_offer(relay, side, accept.sdp, accept.seq)
        except (BridgeUnavailable, BridgeCommandError):
            await self._close(relay)
            raise
        log.info("relay_opened", room=room, relay=relay.id, a=a, b=b)
        return relay

    async def forward_offer(self, relay: Relay, source: str, sdp: str, seq: int) -> None:
        """Feed ``source``'s outgoing offer to the peer and return the answer to ``source``."""
        peer = relay.other(source)
        answer = await self._request(peer, lambda req: wire.RelayOpen(
            req=req, room=relay.room, relay=relay.id, peer=source, sdp=sdp))
        assert isinstance(answer, wire.RelayAccept)
        link = self.fleet.link(source)
        if link is None:
            raise BridgeUnavailable(f"{source} is gone")
        await link.send(wire.Answer(room=relay.room, participant=RELAY_PREFIX + relay.id,
                                    sdp=answer.sdp, seq=seq))

    async def close(self, relay: Relay) -> None:
        async with self._locks.hold(relay.room):
            await self._close(relay)

    async def _close(self, relay: Relay) -> None:
        if self.by_id.pop(relay.id, None) is None:
            return  # already closed
        for side in (relay.a, relay.b):
            link = self.fleet.link(side)
            if link is None:
                continue
            with contextlib.suppress(BridgeUnavailable):
                await link.send(wire.RelayClose(room=relay.room, relay=relay.id))

    async def _request(self, bridge: str, build) -> wire.Message:  # type: ignore[no-untyped-def]
        link = self.fleet.link(bridge)
        if link is None:
            raise BridgeUnavailable(f"{bridge} is not connected")
        return await link.request(build, self.timeout_s)
