"""Redis StateStore: the state shared by several balancer instances (DESIGN.md §4).

Key schema, version 1, under ``<prefix>:v1:`` (documented in docs/operations.md):

  rooms             SET     names of rooms with at least one participant
  room:<room>       HASH    participant -> JSON record {b, t, r, j, i}
  tenants           HASH    tenant -> participants (kept by the same scripts as the records)
  relays:<room>     SET     "a<TAB>b" bridge pairs, a < b
  joins:<room>      ZSET    "bridge<TAB>nonce" scored by wall-clock time (expires)
  ledger            STREAM  field "e" = JSON [bridge, cpu, egress, ingress, placed_at]
  drains            HASH    bridge -> drain deadline (wall clock)
  instances         SET     instance ids that ever held a lease
  lease:<instance>  STRING  JSON {host, pid, started}, with a TTL (PX)

Rules:
- Every change to a room's placement is one Lua script (claim, remove, compare-and-delete,
  re-assert): the room's bridge set is derived from its records inside the script, so no
  instance ever reads it and writes it in two steps (LiveKit's unlocked HGET/HSET).
- Times cross instances as wall-clock seconds (hosts are NTP-synced); the router's
  monotonic times are moved by a fixed offset taken at start.
- Corrupt values or wrongly typed keys under our prefix are logged and skipped, never raised
  as a crash; keys outside the schema are never read (rooms are listed from ``rooms``).
- Redis unreachable: the store answers from its cached view (``mirror``: every record as last
  read, refreshed each ``refresh_s``, plus this instance's own writes), so existing rooms keep
  their bridges and joins to them still work. Writes made meanwhile are replayed when Redis is
  back: this instance's own records are re-asserted (also after Redis restarted empty),
  removals are compare-and-deletes on the owner they had. Liveness never waits on Redis.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any, TypeVar

import structlog
from redis import exceptions as redis_errors
from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from .base import LedgerEntry, ParticipantRecord
from .errors import StoreUnavailable
from .memory import MemoryStore

log = structlog.get_logger(__name__)

SCHEMA = "v1"
JOINS_HORIZON_S = 300.0  # recent-join entries older than this are trimmed
JOINS_TRIM_EVERY_S = 10.0  # trim a room's recent joins (and renew its expiry) this often
LEDGER_READ_S = 0.05  # other instances' ledger charges are read at most this often
OUTAGE = (redis_errors.ConnectionError, redis_errors.TimeoutError, OSError, TimeoutError)
T = TypeVar("T")
__all__ = ["RedisStore", "StoreUnavailable"]


# KEYS: room hash, rooms set, tenants hash.
# ARGV: participant, record JSON, bridge, seen bridges (JSON list), room, tenant or "".
# 1 = recorded; 0 = the room's bridges changed since the decision (nothing changed);
# -1 = the room key is not a hash (corrupt: nothing changed).
CLAIM = """
local ok, flat = pcall(redis.call, 'HGETALL', KEYS[1])
if not ok then return -1 end
local current, n, old = {}, 0, nil
for i = 1, #flat, 2 do
  local good, rec = pcall(cjson.decode, flat[i + 1])
  if good and type(rec) == 'table' and type(rec.b) == 'string' then
    if flat[i] == ARGV[1] then
      old = rec
    elseif not current[rec.b] then
      current[rec.b] = true
      n = n + 1
    end
  end
end
if not current[ARGV[3]] then
  local seen = cjson.decode(ARGV[4])
  if #seen ~= n then return 0 end
  for _, b in ipairs(seen) do
    if not current[b] then return 0 end
  end
end
if old and type(old.t) == 'string' then
  local okd, left = pcall(redis.call, 'HINCRBY', KEYS[3], old.t, -1)
  if okd and left <= 0 then redis.call('HDEL', KEYS[3], old.t) end
end
if ARGV[6] ~= '' then pcall(redis.call, 'HINCRBY', KEYS[3], ARGV[6], 1) end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
pcall(redis.call, 'SADD', KEYS[2], ARGV[5])
return 1
"""

# KEYS: room hash, rooms set, tenants hash. ARGV: participant, room, owner or "".
# Removes the record (only if its owner is ARGV[3], when given: compare-and-delete) and
# returns its old value; nil when absent or owned by someone else.
REMOVE = """
local ok, v = pcall(redis.call, 'HGET', KEYS[1], ARGV[1])
if not ok or not v then return false end
local good, rec = pcall(cjson.decode, v)
local parsed = good and type(rec) == 'table'
if ARGV[3] ~= '' and not (parsed and rec.i == ARGV[3]) then return false end
redis.call('HDEL', KEYS[1], ARGV[1])
if parsed and type(rec.t) == 'string' then
  local okd, left = pcall(redis.call, 'HINCRBY', KEYS[3], rec.t, -1)
  if okd and left <= 0 then redis.call('HDEL', KEYS[3], rec.t) end
end
if redis.call('EXISTS', KEYS[1]) == 0 then pcall(redis.call, 'SREM', KEYS[2], ARGV[2]) end
return v
"""

# KEYS: room hash, rooms set, tenants hash.
# ARGV: participant, record JSON, room, instance, tenant or "".
# Writes this instance's record back unless another instance owns that participant now
# (it rejoined there): 1 written, 0 someone else's, -1 corrupt key.
ASSERT = """
local ok, v = pcall(redis.call, 'HGET', KEYS[1], ARGV[1])
if not ok then return -1 end
if v then
  local good, rec = pcall(cjson.decode, v)
  if good and type(rec) == 'table' then
    if rec.i ~= ARGV[4] then return 0 end
    if type(rec.t) == 'string' then
      local okd, left = pcall(redis.call, 'HINCRBY', KEYS[3], rec.t, -1)
      if okd and left <= 0 then redis.call('HDEL', KEYS[3], rec.t) end
    end
  end
end
if ARGV[5] ~= '' then pcall(redis.call, 'HINCRBY', KEYS[3], ARGV[5], 1) end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
pcall(redis.call, 'SADD', KEYS[2], ARGV[3])
return 1
"""


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class RedisStore:
    def __init__(self, url: str, prefix: str = "sfub", *, instance_id: str | None = None,
                 lease_ttl_s: float = 10.0, timeout_s: float = 1.0, refresh_s: float = 1.0,
                 ledger_horizon_s: float = 120.0, max_connections: int = 32,
                 pool_wait_s: float = 10.0, ledger_read_s: float = LEDGER_READ_S) -> None:
        self.url = url
        self.base = f"{prefix}:{SCHEMA}:"
        self.instance_id = instance_id or uuid.uuid4().hex[:12]
        self.lease_ttl_s = lease_ttl_s
        self.refresh_s = refresh_s
        self.ledger_horizon_s = ledger_horizon_s
        # wall = monotonic + offset: the router's clock is time.monotonic
        self.offset = time.time() - time.monotonic()
        # No retries inside redis-py: an outage must switch to the cached view at once.
        # A bounded pool that queues callers (the default pool raises once 100 are busy, which
        # a burst of joins reaches); a caller waiting longer than ``pool_wait_s`` gives up.
        pool = BlockingConnectionPool.from_url(
            url, max_connections=max_connections, timeout=pool_wait_s,
            socket_timeout=timeout_s, socket_connect_timeout=timeout_s,
            retry=Retry(NoBackoff(), 0), health_check_interval=0, protocol=2)
        self.redis = Redis(connection_pool=pool)
        self._claim = self.redis.register_script(CLAIM)
        self._remove = self.redis.register_script(REMOVE)
        self._assert = self.redis.register_script(ASSERT)
        self.mirror = MemoryStore(ledger_horizon_s)
        self._own: dict[tuple[str, str], ParticipantRecord] = {}
        self._ledger: deque[LedgerEntry] = deque()
        self._ledger_last = "-"
        self._ledger_read_at = float("-inf")
        self.ledger_read_s = ledger_read_s
        self._own_ledger_ids: set[str] = set()
        self._joins_trimmed: dict[str, float] = {}
        # room -> (read at, window start, [(bridge, wall time)]): see recent_joins
        self._recent: dict[str, tuple[float, float, list[tuple[str, float]]]] = {}
        self._up = False
        self.up_since = 0.0
        self.recovered_at = 0.0
        self._next_probe = 0.0
        self._lease_renewed = float("-inf")
        self._refreshed = float("-inf")
        self._leased_once = False
        # Writes made while Redis was unreachable, replayed on recovery.
        self._pending_removes: dict[tuple[str, str], str] = {}  # -> owner it had
        self._pending_relays: dict[tuple[str, str, str], bool] = {}  # -> added (or removed)
        self._pending_drains: dict[str, float | None] = {}
        self._sync_lock = asyncio.Lock()

    # -- keys and encoding -----------------------------------------------------------------

    def key(self, *parts: str) -> str:
        return self.base + ":".join(parts)

    def _room_keys(self, room: str) -> list[str]:
        return [self.key("room", room), self.key("rooms"), self.key("tenants")]

    def _encode(self, record: ParticipantRecord) -> str:
        return json.dumps({"b": record.bridge, "t": record.tenant, "r": record.tier,
                           "j": record.joined_at + self.offset, "i": record.instance},
                          separators=(",", ":"))

    def _decode(self, room: str, participant: str, raw: bytes | str) -> ParticipantRecord | None:
        try:
            data = json.loads(raw)
            bridge, tenant = data["b"], data.get("t")
            if not isinstance(bridge, str) or not (tenant is None or isinstance(tenant, str)):
                raise ValueError("bridge/tenant types")
            return ParticipantRecord(room, participant, bridge, tenant, str(data.get("r", "")),
                                     float(data.get("j", 0.0)) - self.offset,
                                     str(data.get("i", "")))
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("redis_corrupt_value", key=self.key("room", room), field=participant,
                        error=str(exc))
            return None

    def _decode_hash(self, room: str, flat: dict[Any, Any]) -> list[ParticipantRecord]:
        records = [self._decode(room, _text(p), v) for p, v in flat.items()]
        return [r for r in records if r is not None]

    # -- availability ----------------------------------------------------------------------

    @property
    def available(self) -> bool:
        return self._up

    def _went_down(self, exc: BaseException) -> None:
        if self._up:
            log.warning("redis_unreachable", url=self.url, error=repr(exc),
                        note="serving from the cached view until Redis is back")
        self._up = False
        self._next_probe = time.monotonic() + 0.2

    async def _run(self, op: Callable[[], Awaitable[T]], fallback: Callable[[], Awaitable[T]],
                   corrupt: Callable[[], T] | None = None, what: str = "") -> T:
        """``op`` on Redis; ``fallback`` (the cached view) when Redis is unreachable."""
        if self._up:
            try:
                return await op()
            except OUTAGE as exc:
                self._went_down(exc)
            except redis_errors.ResponseError as exc:
                # A wrongly typed key under our prefix: log and skip, never crash.
                log.warning("redis_corrupt_key", op=what, error=str(exc))
                if corrupt is not None:
                    return corrupt()
        return await fallback()

    async def connect(self) -> RedisStore:
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

    # -- participants ----------------------------------------------------------------------

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

    async def _snapshot(self) -> list[ParticipantRecord]:
        names = sorted(_text(n) for n in await self._smembers(self.key("rooms")))
        if not names:
            return []
        pipe = self.redis.pipeline(transaction=False)
        for name in names:
            pipe.hgetall(self.key("room", name))
        results = await pipe.execute(raise_on_error=False)
        records: list[ParticipantRecord] = []
        for name, flat in zip(names, results, strict=True):
            if isinstance(flat, Exception):
                log.warning("redis_corrupt_key", key=self.key("room", name), error=str(flat))
                continue
            records += self._decode_hash(name, flat)
        return records

    async def _smembers(self, key: str) -> set[Any]:
        try:
            return set(await self.redis.smembers(key))
        except redis_errors.ResponseError as exc:
            log.warning("redis_corrupt_key", key=key, error=str(exc))
            return set()

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

        await self._run(op, _nothing, lambda: None, "record_join")

    async def recent_joins(self, room: str, now: float, window_s: float) -> dict[str, int]:
        since = now + self.offset - window_s

        async def op() -> dict[str, int]:
            # A room's joins are read at most every ``ledger_read_s`` (a burst into one room
            # shares the read); this instance's own joins are added to the copy at once.
            clock = time.monotonic()
            cached = self._recent.get(room)
            if cached is None or clock - cached[0] >= self.ledger_read_s or cached[1] > since:
                rows = await self.redis.zrangebyscore(self.key("joins", room), f"({since}",
                                                      "+inf", withscores=True)
                if len(self._recent) > 10_000:
                    self._recent.clear()  # bounded
                cached = self._recent[room] = (
                    clock, since, [(_text(m).partition("\t")[0], float(w)) for m, w in rows])
            counts: dict[str, int] = {}
            for bridge, wall in cached[2]:
                if wall > since:
                    counts[bridge] = counts.get(bridge, 0) + 1
            return counts

        return await self._run(op, lambda: self.mirror.recent_joins(room, now, window_s),
                               dict, "recent_joins")

    # -- relays ------------------------------------------------------------------------------

    @staticmethod
    def _pair(a: str, b: str) -> str:
        x, y = sorted((a, b))
        return f"{x}\t{y}"

    async def add_relay(self, room: str, a: str, b: str) -> bool:
        async def op() -> bool:
            added = await self.redis.sadd(self.key("relays", room), self._pair(a, b)) == 1
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
                x, sep, y = _text(member).partition("\t")
                if sep and x and y:
                    pairs.append((x, y))
            return sorted(pairs)

        return await self._run(op, lambda: self.mirror.relays(room), list, "relays")

    async def remove_relay(self, room: str, a: str, b: str) -> bool:
        async def op() -> bool:
            await self.mirror.remove_relay(room, a, b)
            return await self.redis.srem(self.key("relays", room), self._pair(a, b)) == 1

        async def fallback() -> bool:
            removed = await self.mirror.remove_relay(room, a, b)
            self._pending_relays[(room, *sorted((a, b)))] = False  # type: ignore[index]
            return removed

        return await self._run(op, fallback, lambda: False, "remove_relay")

    # -- ledger --------------------------------------------------------------------------------

    async def ledger_add(self, entry: LedgerEntry) -> None:
        wall = entry.placed_at + self.offset

        async def op() -> None:
            # Every instance reads every placement back (ledger_entries): a burst spread over
            # instances is charged once everywhere, so none of them herds.
            value = json.dumps([entry.bridge, *entry.cost, wall], separators=(",", ":"))
            min_id = int((wall - self.ledger_horizon_s) * 1000)
            entry_id = await self.redis.xadd(self.key("ledger"), {"e": value},
                                             minid=max(min_id, 0), approximate=True)
            self._own_ledger_ids.add(_text(entry_id))

        # Our own charge counts here at once; its copy read back from the stream is skipped.
        self._ledger.append(entry)
        await self._run(op, _nothing, lambda: None, "ledger_add")

    async def ledger_entries(self, now: float) -> list[LedgerEntry]:
        async def op() -> None:
            start = "-" if self._ledger_last == "-" else f"({self._ledger_last}"
            for entry_id, fields in await self.redis.xrange(self.key("ledger"), start, "+"):
                self._ledger_last = _text(entry_id)
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
            await self._run(op, _nothing, lambda: None, "ledger_entries")
        horizon = now - self.ledger_horizon_s
        while self._ledger and self._ledger[0].placed_at < horizon:
            self._ledger.popleft()
        return [e for e in self._ledger if e.placed_at >= horizon]

    def _decode_ledger(self, fields: dict[Any, Any]) -> LedgerEntry | None:
        try:
            bridge, cpu, egress, ingress, wall = json.loads(fields.get(b"e", fields.get("e")))
            return LedgerEntry(str(bridge), (float(cpu), float(egress), float(ingress)),
                               float(wall) - self.offset)
        except (ValueError, TypeError) as exc:
            log.warning("redis_corrupt_value", key=self.key("ledger"), error=str(exc))
            return None

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
                    result[_text(bridge)] = float(raw) - self.offset
                except ValueError:
                    log.warning("redis_corrupt_value", key=self.key("drains"),
                                field=_text(bridge))
            return result

        return await self._run(op, self.mirror.drains, dict, "drains")

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
                    await self.redis.sadd(self.key("relays", room), self._pair(a, b))
                else:
                    await self.redis.srem(self.key("relays", room), self._pair(a, b))
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
            ids = sorted(_text(i) for i in await self._smembers(self.key("instances")))
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


async def _nothing() -> None:
    return None
