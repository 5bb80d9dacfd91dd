"""In-memory StateStore: the embedded default, for one balancer process on its own."""

from __future__ import annotations

from collections import Counter, defaultdict, deque

from .base import LedgerEntry, ParticipantRecord


class MemoryStore:
    instance_id = ""  # one process on its own owns every record

    def __init__(self, ledger_horizon_s: float = 120.0) -> None:
        self.ledger_horizon_s = ledger_horizon_s
        self._participants: dict[tuple[str, str], ParticipantRecord] = {}
        self._joins: dict[tuple[str, str], deque[float]] = defaultdict(deque)
        self._relays: dict[str, set[frozenset[str]]] = defaultdict(set)
        self._ledger: deque[LedgerEntry] = deque()
        self._drains: dict[str, float] = {}

    async def claim_placement(self, record: ParticipantRecord, seen: frozenset[str]) -> bool:
        # One event loop and no await inside: this check-and-set is atomic here.
        current = {r.bridge for (room, p), r in self._participants.items()
                   if room == record.room and p != record.participant}
        if record.bridge not in current and current != seen:
            return False
        self._participants[(record.room, record.participant)] = record
        return True

    def put_participant(self, record: ParticipantRecord) -> None:
        """Record ``record`` unconditionally (a cache mirroring an authoritative store)."""
        self._participants[(record.room, record.participant)] = record

    def load_participants(self, records: list[ParticipantRecord]) -> None:
        """Replace every participant record (the Redis store's cached view refreshes so)."""
        self._participants = {(r.room, r.participant): r for r in records}

    async def remove_participant(self, room: str, participant: str) -> ParticipantRecord | None:
        return self._participants.pop((room, participant), None)

    async def get_participant(self, room: str, participant: str) -> ParticipantRecord | None:
        return self._participants.get((room, participant))

    async def room_participants(self, room: str) -> list[ParticipantRecord]:
        return [r for (name, _), r in self._participants.items() if name == room]

    async def room_members(self, room: str) -> dict[str, int]:
        return dict(Counter(r.bridge for r in await self.room_participants(room)))

    async def rooms(self) -> dict[str, dict[str, int]]:
        result: dict[str, Counter[str]] = defaultdict(Counter)
        for record in self._participants.values():
            result[record.room][record.bridge] += 1
        return {room: dict(members) for room, members in result.items()}

    async def participants_on(self, bridge: str) -> list[ParticipantRecord]:
        return [r for r in self._participants.values() if r.bridge == bridge]

    async def tenant_count(self, tenant: str) -> int:
        return sum(1 for r in self._participants.values() if r.tenant == tenant)

    async def record_join(self, room: str, bridge: str, now: float) -> None:
        self._joins[(room, bridge)].append(now)

    async def recent_joins(self, room: str, now: float, window_s: float) -> dict[str, int]:
        counts: dict[str, int] = {}
        for (name, bridge), times in list(self._joins.items()):
            while times and times[0] <= now - window_s:
                times.popleft()
            if not times:
                del self._joins[(name, bridge)]
            elif name == room:
                counts[bridge] = len(times)
        return counts

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

    async def ledger_entries(self, now: float) -> list[LedgerEntry]:
        while self._ledger and self._ledger[0].placed_at < now - self.ledger_horizon_s:
            self._ledger.popleft()
        return list(self._ledger)

    async def set_drain(self, bridge: str, deadline: float | None) -> None:
        if deadline is None:
            self._drains.pop(bridge, None)
        else:
            self._drains[bridge] = deadline

    async def drains(self) -> dict[str, float]:
        return dict(self._drains)

    async def close(self) -> None:
        return None
