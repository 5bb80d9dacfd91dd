"""Per-room side state of the Redis store: recent joins (the join rate) and relays (a part of
RedisStore).

Recent joins are a ZSET per room that expires on its own; each instance reads a room's joins
at most every ``ledger_read_s`` and adds its own at once. A relay is one SET member per bridge
pair. While Redis is unreachable both come from the cached view; relay changes made meanwhile
are replayed on recovery, joins are not.
"""

from __future__ import annotations

import time
import uuid
from typing import cast

from sfu_balancer.state.redis.connection import RedisConnection, nothing
from sfu_balancer.state.redis.keys import relay_member, text

JOINS_HORIZON_S = 300.0  # recent-join entries older than this are trimmed
JOINS_TRIM_EVERY_S = 10.0  # trim a room's recent joins (and renew its expiry) this often


class RoomActivity(RedisConnection):
    """StateStore join-rate and relay methods of RedisStore."""

    # -- join rate ---------------------------------------------------------------------------

    async def record_join(self, room: str, bridge: str, now: float) -> None:
        await self.mirror.record_join(room, bridge, now)
        wall = now + self.offset
        cached = self._recent.get(room)
        if cached is not None:
            cached[2].append((bridge, wall))

        async def op() -> None:
            key = self.key("joins", room)
            member = {f"{bridge}\t{uuid.uuid4().hex[:8]}": wall}
            if now - self._joins_trimmed.get(room, float("-inf")) < JOINS_TRIM_EVERY_S:
                await self.redis.zadd(key, member)  # the common case: one command
                return
            if len(self._joins_trimmed) > 10_000:
                self._joins_trimmed.clear()  # rooms come and go: keep this bounded
            self._joins_trimmed[room] = now
            pipe = self.redis.pipeline(transaction=False)
            pipe.zadd(key, member)
            pipe.zremrangebyscore(key, "-inf", wall - JOINS_HORIZON_S)
            pipe.expire(key, int(JOINS_HORIZON_S + JOINS_TRIM_EVERY_S))
            await pipe.execute()

        await self._run(op, nothing, lambda: None, "record_join")

    async def recent_joins(self, room: str, now: float, window_s: float) -> dict[str, int]:
        since = now + self.offset - window_s

        async def op() -> dict[str, int]:
            # A room's joins are read at most every ``ledger_read_s`` (a burst into one room
            # shares the read); this instance's own joins are added to the copy at once.
            clock = time.monotonic()
            cached = self._recent.get(room)
            if cached is None or clock - cached[0] >= self.ledger_read_s or cached[1] > since:
                # redis-py types replies loosely; withscores gives (member, score) pairs
                rows = cast(list[tuple[bytes, float]], await self.redis.zrangebyscore(
                    self.key("joins", room), f"({since}", "+inf", withscores=True))
                if len(self._recent) > 10_000:
                    self._recent.clear()  # bounded
                cached = self._recent[room] = (
                    clock, since, [(text(m).partition("\t")[0], float(w)) for m, w in rows])
            counts: dict[str, int] = {}
            for bridge, wall in cached[2]:
                if wall > since:
                    counts[bridge] = counts.get(bridge, 0) + 1
            return counts

        return await self._run(op, lambda: self.mirror.recent_joins(room, now, window_s),
                               dict, "recent_joins")

    # -- relays ------------------------------------------------------------------------------
    async def add_relay(self, room: str, a: str, b: str) -> bool:
        async def op() -> bool:
            added = await self.redis.sadd(self.key("relays", room), relay_member(a, b)) == 1
            await self.mirror.add_relay(room, a, b)
            return added

        async def fallback() -> bool:
            added = await self.mirror.add_relay(room, a, b)
            if added:
                self._pending_relays[(room, *sorted((a, b)))] = True  # type: ignore[index]
            return added

        return await self._run(op, fallback, lambda: False, "add_relay")

    async def relays(self, room: str) -> list[tuple[str, str]]:
        async def op() -> list[tuple[str, str]]:
            pairs = []
            for member in await self.redis.smembers(self.key("relays", room)):
                x, sep, y = text(member).partition("\t")
                if sep and x and y:
                    pairs.append((x, y))
            return sorted(pairs)

        return await self._run(op, lambda: self.mirror.relays(room), list, "relays")

    async def remove_relay(self, room: str, a: str, b: str) -> bool:
        async def op() -> bool:
            await self.mirror.remove_relay(room, a, b)
            return await self.redis.srem(self.key("relays", room), relay_member(a, b)) == 1

        async def fallback() -> bool:
            removed = await self.mirror.remove_relay(room, a, b)
            self._pending_relays[(room, *sorted((a, b)))] = False  # type: ignore[index]
            return removed

        return await self._run(op, fallback, lambda: False, "remove_relay")
