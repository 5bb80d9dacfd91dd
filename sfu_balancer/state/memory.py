"""In-memory StateStore: the embedded default, for one balancer process on its own."""

from __future__ import annotations

from collections import Counter, defaultdict, deque
from itertools import islice

from .base import LedgerEntry, ParticipantRecord


def ledger_tail(log: deque[LedgerEntry], dropped: int, cursor: int
                ) -> tuple[list[LedgerEntry], int]:
    """The entries of ``log`` after ``cursor``, read from the back so the cost is the new
    entries only. ``dropped`` counts entries already trimmed off the front, so an entry's
    cursor position is ``dropped`` + its index; a cursor before the front gets all of it."""
    end = dropped + len(log)
    new = max(0, min(end - cursor, len(log)))
    tail = list(islice(reversed(log), new))
    tail.reverse()
    return tail, end


_NO_MEMBERS: dict[str, ParticipantRecord] = {}  # read only: the members of an empty room
JOIN_SWEEP_EVERY = 4096  # record_join calls between sweeps of every room's join times
JOIN_HISTORY_S = 600.0  # join times kept by a sweep; far above any join-rate window


class MemoryStore:
    instance_id = ""  # one process on its own owns every record

    def __init__(self, ledger_horizon_s: float = 120.0) -> None:
        self.ledger_horizon_s = ledger_horizon_s
        # Kept by room (and counted by tenant), so that a join costs what its room holds,
        # never what the whole balancer holds (5,000 participants, 2,000 joins/s).
        self._by_room: dict[str, dict[str, ParticipantRecord]] = {}
        self._tenants: Counter[str] = Counter()
        self._joins: dict[str, dict[str, deque[float]]] = {}  # room -> bridge -> join times
        self._joins_recorded = 0
        self._relays: dict[str, set[frozenset[str]]] = defaultdict(set)
        self._ledger: deque[LedgerEntry] = deque()
        self._ledger_dropped = 0  # entries trimmed off the front: cursor = dropped + index
        self._drains: dict[str, float] = {}

    async def claim_placement(self, record: ParticipantRecord, seen: frozenset[str]) -> bool:
        # One event loop and no await inside: this check-and-set is atomic here.
        current = {r.bridge for p, r in self._by_room.get(record.room, {}).items()
                   if p != record.participant}
        if record.bridge not in current and current != seen:
            return False
        self._put(record)
        return True

    def _put(self, record: ParticipantRecord) -> None:
        self._pop(record.room, record.participant)
        self._by_room.setdefault(record.room, {})[record.participant] = record
        if record.tenant is not None:
            self._tenants[record.tenant] += 1

    def _pop(self, room: str, participant: str) -> ParticipantRecord | None:
        members = self._by_room.get(room)
        record = members.pop(participant, None) if members is not None else None
        if record is None:
            return None
        if not members:
            del self._by_room[room]
        if record.tenant is not None:
            self._tenants[record.tenant] -= 1
            if self._tenants[record.tenant] <= 0:
                del self._tenants[record.tenant]
        return record

    def _records(self) -> list[ParticipantRecord]:
        return [r for members in self._by_room.values() for r in members.values()]

    def put_participant(self, record: ParticipantRecord) -> None:
        """Record ``record`` unconditionally (a cache mirroring an authoritative store)."""
        self._put(record)

    def load_participants(self, records: list[ParticipantRecord]) -> None:
        """Replace every participant record (the Redis store's cached view refreshes so)."""
        self._by_room, self._tenants = {}, Counter()
        for record in records:
            self._put(record)

    async def remove_participant(self, room: str, participant: str) -> ParticipantRecord | None:
        return self._pop(room, participant)

    async def get_participant(self, room: str, participant: str) -> ParticipantRecord | None:
        members = self._by_room.get(room)
        return members.get(participant) if members is not None else None

    async def room_participants(self, room: str) -> list[ParticipantRecord]:
        members = self._by_room.get(room)
        return list(members.values()) if members is not None else []

    async def room_members(self, room: str) -> dict[str, int]:
        # Called several times per join: a plain count (a Counter costs twice as much here).
        counts: dict[str, int] = {}
        for record in self._by_room.get(room, _NO_MEMBERS).values():
            counts[record.bridge] = counts.get(record.bridge, 0) + 1
        return counts

    async def rooms(self) -> dict[str, dict[str, int]]:
        result: dict[str, Counter[str]] = defaultdict(Counter)
        for record in self._records():
            result[record.room][record.bridge] += 1
        return {room: dict(members) for room, members in result.items()}

    async def participants_on(self, bridge: str) -> list[ParticipantRecord]:
        return [r for r in self._records() if r.bridge == bridge]

    async def tenant_count(self, tenant: str) -> int:
        return self._tenants.get(tenant, 0)

    async def record_join(self, room: str, bridge: str, now: float) -> None:
        self._joins.setdefault(room, {}).setdefault(bridge, deque()).append(now)
        self._joins_recorded += 1
        if self._joins_recorded % JOIN_SWEEP_EVERY == 0:  # rooms nobody joins again
            for name in list(self._joins):
                self._trim_joins(name, now, JOIN_HISTORY_S)

    async def recent_joins(self, room: str, now: float, window_s: float) -> dict[str, int]:
        self._trim_joins(room, now, window_s)
        return {bridge: len(times) for bridge, times in self._joins.get(room, {}).items()}

    def _trim_joins(self, room: str, now: float, window_s: float) -> None:
        bridges = self._joins.get(room)
        if bridges is None:
            return
        for bridge, times in list(bridges.items()):
            while times and times[0] <= now - window_s:
                times.popleft()
            if not times:
                del bridges[bridge]
        if not bridges:
            del self._joins[room]

    async def add_relay(self, room: str, a: str, b: str) -> bool:
        pair = frozenset((a, b))
        if pair in self._relays[room]:
            return False
        self._relays[room].add(pair)
        return True

    async def relays(self, room: str) -> list[tuple[str, str]]:
        pairs = [tuple(sorted(pair)) for pair in self._relays.get(room, ())]
        return sorted((a, b) for a, b in pairs)

    async def remove_relay(self, room: str, a: str, b: str) -> bool:
        pairs = self._relays.get(room)
        if not pairs or frozenset((a, b)) not in pairs:
            return False
        pairs.discard(frozenset((a, b)))
        if not pairs:
            del self._relays[room]
        return True

    async def ledger_add(self, entry: LedgerEntry) -> None:
        self._ledger.append(entry)

    def _trim_ledger(self, now: float) -> None:
        while self._ledger and self._ledger[0].placed_at < now - self.ledger_horizon_s:
            self._ledger.popleft()
            self._ledger_dropped += 1

    async def ledger_entries(self, now: float) -> list[LedgerEntry]:
        self._trim_ledger(now)
        return list(self._ledger)

    async def ledger_since(self, now: float, cursor: int) -> tuple[list[LedgerEntry], int]:
        self._trim_ledger(now)
        return ledger_tail(self._ledger, self._ledger_dropped, cursor)

    async def set_drain(self, bridge: str, deadline: float | None) -> None:
        if deadline is None:
            self._drains.pop(bridge, None)
        else:
            self._drains[bridge] = deadline

    async def drains(self) -> dict[str, float]:
        return dict(self._drains)

    async def close(self) -> None:
        return None
