"""Per-bridge shared state of the Redis store: the placement ledger and drain deadlines (a part
of RedisStore).

The ledger is one STREAM trimmed to ``ledger_horizon_s``: every instance appends its own
placements and reads the others' back, so a burst spread over instances is charged once
everywhere. Drain deadlines are one HASH; a drain set while Redis is unreachable is replayed on
recovery.
"""

from __future__ import annotations

import time
from typing import cast

import structlog

from sfu_balancer.state.base import LedgerEntry
from sfu_balancer.state.memory import ledger_tail
from sfu_balancer.state.redis.connection import RedisConnection, nothing
from sfu_balancer.state.redis.keys import encode_ledger, text

log = structlog.get_logger(__name__)


class BridgeState(RedisConnection):
    """StateStore ledger and drain methods of RedisStore."""

    # -- ledger --------------------------------------------------------------------------------

    async def ledger_add(self, entry: LedgerEntry) -> None:
        wall = entry.placed_at + self.offset

        async def op() -> None:
            # Every instance reads every placement back (ledger_entries): a burst spread over
            # instances is charged once everywhere, so none of them herds.
            value = encode_ledger(entry, wall)
            min_id = int((wall - self.ledger_horizon_s) * 1000)
            entry_id = await self.redis.xadd(self.key("ledger"), {"e": value},
                                             minid=max(min_id, 0), approximate=True)
            self._own_ledger_ids.add(text(entry_id))

        # Our own charge counts here at once; its copy read back from the stream is skipped.
        self._ledger.append(entry)
        await self._run(op, nothing, lambda: None, "ledger_add")

    async def _read_ledger(self, now: float) -> None:
        """Append other instances' new charges to the local log; trim it to the horizon."""
        async def op() -> None:
            start = "-" if self._ledger_last == "-" else f"({self._ledger_last}"
            # redis-py types replies loosely; XRANGE gives (id, fields) pairs, possibly none
            rows = cast(list[tuple[bytes, dict[bytes, bytes]]],
                        await self.redis.xrange(self.key("ledger"), start, "+") or [])
            for entry_id, fields in rows:
                self._ledger_last = text(entry_id)
                if self._ledger_last in self._own_ledger_ids:
                    self._own_ledger_ids.discard(self._ledger_last)
                    continue
                entry = self._decode_ledger(fields)
                if entry is not None:
                    self._ledger.append(entry)

        # Other instances' charges are read at most every LEDGER_READ_S: a burst of joins
        # shares one read, and 50 ms is far below any report interval the ledger covers.
        clock = time.monotonic()
        if clock - self._ledger_read_at >= self.ledger_read_s:
            self._ledger_read_at = clock
            await self._run(op, nothing, lambda: None, "ledger_entries")
        horizon = now - self.ledger_horizon_s
        while self._ledger and self._ledger[0].placed_at < horizon:
            self._ledger.popleft()
            self._ledger_dropped += 1

    async def ledger_entries(self, now: float) -> list[LedgerEntry]:
        await self._read_ledger(now)
        horizon = now - self.ledger_horizon_s
        return [e for e in self._ledger if e.placed_at >= horizon]

    async def ledger_since(self, now: float, cursor: int) -> tuple[list[LedgerEntry], int]:
        await self._read_ledger(now)
        return ledger_tail(self._ledger, self._ledger_dropped, cursor)

    # -- drains ----------------------------------------------------------------------------------

    async def set_drain(self, bridge: str, deadline: float | None) -> None:
        await self.mirror.set_drain(bridge, deadline)

        async def op() -> None:
            if deadline is None:
                await self.redis.hdel(self.key("drains"), bridge)
            else:
                await self.redis.hset(self.key("drains"), bridge, str(deadline + self.offset))

        async def fallback() -> None:
            self._pending_drains[bridge] = deadline

        await self._run(op, fallback, lambda: None, "set_drain")

    async def drains(self) -> dict[str, float]:
        async def op() -> dict[str, float]:
            result: dict[str, float] = {}
            for bridge, raw in (await self.redis.hgetall(self.key("drains"))).items():
                try:
                    result[text(bridge)] = float(raw) - self.offset
                except ValueError:
                    log.warning("redis_corrupt_value", key=self.key("drains"),
                                field=text(bridge))
            return result

        return await self._run(op, self.mirror.drains, dict, "drains")
