"""Lifecycle of the Redis store: connect and close, the lease, the cached view's refresh,
recovery after an outage, and reaping dead instances' records (a part of RedisStore).

The cached view (``mirror``) is every record as last read, refreshed each ``refresh_s``, plus
this instance's own writes (``_own``), which win over an older snapshot. After an outage,
``sync`` probes Redis and replays what was written meanwhile (the package docstring has the
rules); a lapsed lease (Redis restarted empty, or a cut longer than the TTL) re-asserts this
instance's own records. A dead instance's records are compare-and-deleted, never blindly.
"""

from __future__ import annotations

import json
import os
import socket
import time
from typing import Self

import structlog
from redis import exceptions as redis_errors

from sfu_balancer.state.base import ParticipantRecord
from sfu_balancer.state.errors import StoreUnavailable
from sfu_balancer.state.redis.connection import OUTAGE, RedisConnection
from sfu_balancer.state.redis.keys import relay_member, text

log = structlog.get_logger(__name__)


class Lifecycle(RedisConnection):
    """Connect/close, ``sync``, recovery and reaping of RedisStore."""

    async def connect(self) -> Self:
        """Reach Redis, take the lease and load the cached view; StoreUnavailable if Redis
        cannot be reached (the caller exits with a clear message)."""
        try:
            await self.redis.ping()
            self._up = True
            now = time.monotonic()
            self.up_since = now
            await self._renew_lease(now)
            await self._refresh(now)
        except (*OUTAGE, redis_errors.RedisError) as exc:
            await self.disconnect()
            raise StoreUnavailable(f"cannot reach Redis at {self.url}: {exc}") from exc
        log.info("redis_store_ready", url=self.url, prefix=self.base, instance=self.instance_id)
        return self

    async def close(self) -> None:
        if self._up:
            try:
                # A clean stop hands our records to the reaper at once instead of after TTL.
                await self.redis.delete(self.key("lease", self.instance_id))
            except (*OUTAGE, redis_errors.RedisError):
                pass
        await self.disconnect()

    async def disconnect(self) -> None:
        """Close the connections (a read-only user that never held records, or a failed
        start): the lease is left to expire."""
        await self.redis.aclose()
        await self.redis.connection_pool.disconnect()  # our own pool: aclose leaves it open

    # -- leases, cached view, recovery -----------------------------------------------------------

    async def sync(self) -> None:
        """Periodic work (the balancer's reconcile tick): renew the lease, refresh the cached
        view, and when Redis is back after an outage, replay what was written meanwhile."""
        async with self._sync_lock:
            now = time.monotonic()
            if not self._up:
                if now < self._next_probe:
                    return
                self._next_probe = now + 0.5
                try:
                    await self._recover(now)
                except OUTAGE:
                    return
                return
            try:
                if now - self._lease_renewed >= self.lease_ttl_s / 3:
                    await self._renew_lease(now)
                if now - self._refreshed >= self.refresh_s:
                    await self._refresh(now)
            except OUTAGE as exc:
                self._went_down(exc)

    async def _renew_lease(self, now: float) -> None:
        lease = json.dumps({"host": socket.gethostname(), "pid": os.getpid()})
        pipe = self.redis.pipeline(transaction=False)
        pipe.set(self.key("lease", self.instance_id), lease,
                 px=int(self.lease_ttl_s * 1000), get=True)
        pipe.sadd(self.key("instances"), self.instance_id)
        previous, _ = await pipe.execute(raise_on_error=False)
        self._lease_renewed = now
        if previous is None and self._leased_once:
            # Our lease lapsed (Redis restarted, or we were cut off for a TTL): our records
            # may have been reaped as a dead instance's. Write them back.
            log.warning("redis_lease_lapsed", instance=self.instance_id)
            await self._assert_own()
        self._leased_once = True

    async def _refresh(self, now: float) -> None:
        records = await self._snapshot()
        # Our own writes win over a snapshot that may predate them.
        merged = {(r.room, r.participant): r for r in records}
        merged.update(self._own)
        self.mirror.load_participants(list(merged.values()))
        self._refreshed = now

    async def _assert_own(self) -> int:
        own = list(self._own.values())
        if not own:
            return 0
        pipe = self.redis.pipeline(transaction=False)
        for record in own:
            await self._assert(keys=self._room_keys(record.room),
                               args=[record.participant, self._encode(record), record.room,
                                     self.instance_id, record.tenant or ""], client=pipe)
        results = await pipe.execute(raise_on_error=False)
        for record, result in zip(own, results, strict=True):
            if result != 1:
                # Another instance owns this participant now (it rejoined there).
                self._own.pop((record.room, record.participant), None)
        return sum(1 for r in results if r == 1)

    async def _recover(self, now: float) -> None:
        await self.redis.ping()
        await self._renew_lease(now)
        # Bounded: each pass replays what the previous pass's awaits let through.
        for _pass in range(5):
            removes, self._pending_removes = self._pending_removes, {}
            relays, self._pending_relays = self._pending_relays, {}
            drains, self._pending_drains = self._pending_drains, {}
            for (room, participant), owner in removes.items():
                await self._remove(keys=self._room_keys(room), args=[participant, room, owner])
            for (room, a, b), added in relays.items():
                if added:
                    await self.redis.sadd(self.key("relays", room), relay_member(a, b))
                else:
                    await self.redis.srem(self.key("relays", room), relay_member(a, b))
            for bridge, deadline in drains.items():
                if deadline is None:
                    await self.redis.hdel(self.key("drains"), bridge)
                else:
                    await self.redis.hset(self.key("drains"), bridge, str(deadline + self.offset))
            asserted = await self._assert_own()
            await self._refresh(now)
            if not (self._pending_removes or self._pending_relays or self._pending_drains):
                break
        # No await between the last check and going up: nothing written to the cached view
        # is left behind.
        self._up = True
        self.up_since = self.recovered_at = time.monotonic()
        log.warning("redis_recovered", url=self.url, reasserted=asserted,
                    removed=len(removes), relays=len(relays))

    async def dead_instances(self) -> list[str]:
        """Instances whose lease expired. Empty until Redis has been reachable for a whole
        TTL, so that every live instance has renewed its lease after an outage."""
        if not self._up or time.monotonic() - self.up_since < self.lease_ttl_s:
            return []
        try:
            ids = sorted(text(i) for i in await self._smembers(self.key("instances")))
            others = [i for i in ids if i != self.instance_id]
            if not others:
                return []
            pipe = self.redis.pipeline(transaction=False)
            for instance in others:
                pipe.exists(self.key("lease", instance))
            alive = await pipe.execute()
        except OUTAGE as exc:
            self._went_down(exc)
            return []
        return [i for i, n in zip(others, alive, strict=True) if not n]

    async def reap(self, instance: str) -> list[ParticipantRecord]:
        """Compare-and-delete a dead instance's records (only those it still owns: a
        participant that rejoined elsewhere is kept). Returns the records removed."""
        removed: list[ParticipantRecord] = []
        try:
            theirs = [r for r in await self._snapshot() if r.instance == instance]
            for record in theirs:
                raw = await self._remove(keys=self._room_keys(record.room),
                                         args=[record.participant, record.room, instance])
                if raw is not None:
                    removed.append(record)
                    await self.mirror.remove_participant(record.room, record.participant)
            if not [r for r in await self._snapshot() if r.instance == instance]:
                await self.redis.srem(self.key("instances"), instance)
        except OUTAGE as exc:
            self._went_down(exc)
        if removed:
            log.warning("reaped_dead_instance", instance=instance, participants=len(removed))
        return removed
