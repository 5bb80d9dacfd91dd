"""The bridge worker: the command interface the agent (or a test) drives.

Every command either completes or raises ``BridgeError`` with a reason; a failed command leaves
no half-built participant or relay behind, and never affects other rooms or participants.
Offers the bridge makes on its own (subscriber renegotiation) go to ``on_offer``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from bridges.counters import TrafficCounters
from bridges.sfu.room import RELAY_PREFIX, Participant, Relay, Room
from bridges.sfu.sdp import BridgeError
from bridges.sfu.session import OfferSink
from sfu_balancer.wire import ErrorCode, Offer, TrackInfo

log = logging.getLogger(__name__)

OfferHandler = Callable[[Offer], None]
ID_MAX = 128


def check_id(what: str, value: str) -> None:
    if not value or len(value) > ID_MAX or not value.isprintable():
        raise BridgeError(ErrorCode.MALFORMED, f"{what} id {value[:40]!r} is not acceptable")


class Worker:
    def __init__(self, on_offer: OfferHandler | None = None) -> None:
        self.counters = TrafficCounters()
        self.rooms: dict[str, Room] = {}
        self.draining = False
        self.on_offer: OfferHandler = on_offer or (lambda offer: None)
        self._tasks: set[asyncio.Task[None]] = set()
        self.emptied = asyncio.Event()  # set exactly while the bridge holds no room
        self.emptied.set()

    # -- figures for stats --------------------------------------------------------------------

    @property
    def participant_count(self) -> int:
        return sum(len(r.participants) for r in self.rooms.values())

    @property
    def relay_streams(self) -> int:
        return sum(relay.streams for r in self.rooms.values() for relay in r.relays.values())

    # -- commands -----------------------------------------------------------------------------

    async def allocate(self, room: str, participant: str, sdp: str) -> str:
        """Place ``participant`` in ``room`` with its publish offer; return the answer."""
        check_id("room", room)
        check_id("participant", participant)
        if participant.startswith(RELAY_PREFIX):
            raise BridgeError(ErrorCode.MALFORMED, f"ids may not start with {RELAY_PREFIX!r}")
        if self.draining and room not in self.rooms:
            raise BridgeError(ErrorCode.DRAINING, "this bridge is draining: no new rooms")
        r = self._room(room, create=True)
        if participant in r.participants:
            raise BridgeError(ErrorCode.CONFLICT, f"{participant!r} is already in room {room!r}")
        p = Participant(r, participant, self._offer_sink(room, participant))
        r.participants[participant] = p
        try:
            return await p.publish(sdp)
        except BaseException:
            r.participants.pop(participant, None)
            r.remove_sources(p.sources)
            await p.close()
            self._forget_if_empty(r)
            raise

    async def answer(self, room: str, participant: str, seq: int, sdp: str) -> None:
        r = self._room(room)
        if participant.startswith(RELAY_PREFIX):
            relay = r.relays.get(participant[len(RELAY_PREFIX):])
            session = relay.session if relay is not None else None
        else:
            p = r.participants.get(participant)
            session = p.session if p is not None else None
        if session is None:
            raise BridgeError(
                ErrorCode.UNKNOWN_PARTICIPANT, f"no subscription {participant!r} in {room!r}"
            )
        await session.answer(seq, sdp)

    async def release(self, room: str, participant: str) -> None:
        r = self._room(room)
        p = r.participants.pop(participant, None)
        if p is None:
            raise BridgeError(ErrorCode.UNKNOWN_PARTICIPANT, f"{participant!r} is not in {room!r}")
        r.remove_sources(p.sources)  # the others renegotiate their subscribe connections
        await p.close()
        self._forget_if_empty(r)

    async def relay_open(
        self, room: str, relay: str, peer: str, sdp: str | None
    ) -> tuple[str, str, int]:
        """Open the outgoing side (``sdp`` None) or answer the peer's offer.

        Returns (kind, sdp, seq) for ``relay_accept``: kind "offer" or "answer".
        """
        check_id("room", room)
        check_id("relay", relay)
        r = self._room(room, create=not self.draining)
        rel = r.relays.get(relay)
        created = rel is None
        if rel is None:
            rel = Relay(r, relay, peer, self._offer_sink(room, RELAY_PREFIX + relay))
            r.relays[relay] = rel
        try:
            if sdp is None:
                offer, seq = await rel.open_outgoing()
                return "offer", offer, seq
            return "answer", await rel.accept_offer(sdp), 0
        except BaseException:
            if created:
                r.relays.pop(relay, None)
                r.remove_sources(list(rel.in_sources.values()))
                await rel.close()
                self._forget_if_empty(r)
            raise

    async def relay_close(self, room: str, relay: str) -> None:
        r = self._room(room)
        rel = r.relays.pop(relay, None)
        if rel is None:
            raise BridgeError(ErrorCode.UNKNOWN_PARTICIPANT, f"no relay {relay!r} in {room!r}")
        r.remove_sources(list(rel.in_sources.values()))
        await rel.close()
        self._forget_if_empty(r)

    async def release_all(self) -> None:
        """Close every participant and relay (drain deadline, shutdown)."""
        for room in list(self.rooms.values()):
            for pid in list(room.participants):
                await self.release(room.name, pid)
            for rid in list(room.relays):
                await self.relay_close(room.name, rid)

    async def close(self) -> None:
        await self.release_all()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    # -- helpers ------------------------------------------------------------------------------

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run a fire-and-forget coroutine, keeping a reference until it ends."""
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("background task failed: %r", task.exception())

    def _room(self, name: str, create: bool = False) -> Room:
        room = self.rooms.get(name)
        if room is None:
            if not create:
                raise BridgeError(ErrorCode.UNKNOWN_ROOM, f"no room {name!r} on this bridge")
            room = self.rooms[name] = Room(name, self.counters, self.spawn)
            self.emptied.clear()
        return room

    def _forget_if_empty(self, room: Room) -> None:
        if room.empty and self.rooms.get(room.name) is room:
            del self.rooms[room.name]
        if not self.rooms:
            self.emptied.set()

    def _offer_sink(self, room: str, participant: str) -> OfferSink:
        def sink(sdp: str, seq: int, tracks: list[TrackInfo]) -> None:
            offer = Offer(room=room, participant=participant, sdp=sdp, seq=seq, tracks=tracks)
            self.on_offer(offer)

        return sink
