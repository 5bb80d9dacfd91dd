"""Participant records of the Redis store: claims, removals and reads (a part of RedisStore).

Claims and removals are Lua scripts (``scripts``); reads of one room are one HGET/HGETALL,
reads of every room one pipeline (``_snapshot``). Every answer falls back to the cached view
(``mirror``) while Redis is unreachable.
"""

from __future__ import annotations

import json
from dataclasses import replace

import structlog

from sfu_balancer.state.base import ParticipantRecord
from sfu_balancer.state.redis.connection import RedisConnection

log = structlog.get_logger(__name__)


class Participants(RedisConnection):
    """StateStore participant methods of RedisStore."""

    async def claim_placement(self, record: ParticipantRecord, seen: frozenset[str]) -> bool:
        record = replace(record, instance=self.instance_id)
        key = (record.room, record.participant)

        async def op() -> bool:
            result = await self._claim(
                keys=self._room_keys(record.room),
                args=[record.participant, self._encode(record), record.bridge,
                      json.dumps(sorted(seen)), record.room, record.tenant or ""])
            if result == -1:
                log.warning("redis_corrupt_key", key=self.key("room", record.room),
                            note="room key is not a hash: join refused")
            if result != 1:
                return False
            self.mirror.put_participant(record)
            return True

        async def fallback() -> bool:
            # The cached view decides alone; recovery re-asserts this record.
            return await self.mirror.claim_placement(record, seen)

        claimed = await self._run(op, fallback, lambda: False, "claim")
        if claimed:
            self._own[key] = record
            self._pending_removes.pop(key, None)
        return claimed

    async def remove_participant(self, room: str, participant: str) -> ParticipantRecord | None:
        key = (room, participant)

        async def op() -> ParticipantRecord | None:
            raw = await self._remove(keys=self._room_keys(room), args=[participant, room, ""])
            await self.mirror.remove_participant(room, participant)
            return None if raw is None else self._decode(room, participant, raw)

        async def fallback() -> ParticipantRecord | None:
            old = await self.mirror.remove_participant(room, participant)
            if old is not None:
                self._pending_removes[key] = old.instance
            return old

        self._own.pop(key, None)
        return await self._run(op, fallback, lambda: None, "remove")

    async def get_participant(self, room: str, participant: str) -> ParticipantRecord | None:
        async def op() -> ParticipantRecord | None:
            raw = await self.redis.hget(self.key("room", room), participant)
            return None if raw is None else self._decode(room, participant, raw)

        return await self._run(op, lambda: self.mirror.get_participant(room, participant),
                               lambda: None, "get_participant")

    async def room_participants(self, room: str) -> list[ParticipantRecord]:
        async def op() -> list[ParticipantRecord]:
            return self._decode_hash(room, await self.redis.hgetall(self.key("room", room)))

        return await self._run(op, lambda: self.mirror.room_participants(room), list,
                               "room_participants")

    async def room_members(self, room: str) -> dict[str, int]:
        members: dict[str, int] = {}
        for record in await self.room_participants(room):
            members[record.bridge] = members.get(record.bridge, 0) + 1
        return members

    async def all_participants(self) -> list[ParticipantRecord]:
        """Every record, read from Redis (or the cached view during an outage)."""
        async def fallback() -> list[ParticipantRecord]:
            return [r for room in await self.mirror.rooms()
                    for r in await self.mirror.room_participants(room)]

        return await self._run(self._snapshot, fallback, list, "all_participants")

    async def rooms(self) -> dict[str, dict[str, int]]:
        result: dict[str, dict[str, int]] = {}
        for record in await self.all_participants():
            members = result.setdefault(record.room, {})
            members[record.bridge] = members.get(record.bridge, 0) + 1
        return result

    async def cached_rooms(self) -> dict[str, dict[str, int]]:
        """``rooms()`` from the cached view (refreshed every ``refresh_s``): for periodic
        scans that tolerate a second of staleness."""
        return await self.mirror.rooms()

    async def participants_on(self, bridge: str) -> list[ParticipantRecord]:
        return [r for r in await self.all_participants() if r.bridge == bridge]

    async def tenant_count(self, tenant: str) -> int:
        async def op() -> int:
            raw = await self.redis.hget(self.key("tenants"), tenant)
            try:
                return int(raw) if raw is not None else 0
            except ValueError:
                log.warning("redis_corrupt_value", key=self.key("tenants"), field=tenant)
                return 0

        return await self._run(op, lambda: self.mirror.tenant_count(tenant), lambda: 0,
                               "tenant_count")
