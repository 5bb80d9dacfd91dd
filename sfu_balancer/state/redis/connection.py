"""The base of RedisStore: the client, this instance's state, and the switch to the cached view.

``RedisConnection`` holds every attribute of the store (set in ``__init__`` and documented
there), so each part of RedisStore (participants, rooms, ledger, recovery) is a set of methods
over one state. It also holds what those parts share: key names, record decoding that logs and
skips corrupt values, ``_run`` (Redis, or the cached view when Redis is unreachable), and the
full snapshot of records.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import structlog
from redis import exceptions as redis_errors
from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from sfu_balancer.state.base import LedgerEntry, ParticipantRecord
from sfu_balancer.state.memory import MemoryStore
from sfu_balancer.state.redis.keys import (
    SCHEMA,
    decode_ledger,
    decode_record,
    encode_record,
    text,
)
from sfu_balancer.state.redis.scripts import ASSERT, CLAIM, REMOVE

log = structlog.get_logger(__name__)

LEDGER_READ_S = 0.05  # other instances' ledger charges are read at most this often
OUTAGE = (redis_errors.ConnectionError, redis_errors.TimeoutError, OSError, TimeoutError)
T = TypeVar("T")


class RedisConnection:
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
        self._ledger_dropped = 0  # entries trimmed off the front of _ledger (ledger_since)
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
        return encode_record(record, self.offset)

    def _decode(self, room: str, participant: str, raw: bytes | str) -> ParticipantRecord | None:
        try:
            return decode_record(room, participant, raw, self.offset)
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("redis_corrupt_value", key=self.key("room", room), field=participant,
                        error=str(exc))
            return None

    def _decode_hash(self, room: str, flat: dict[Any, Any]) -> list[ParticipantRecord]:
        records = [self._decode(room, text(p), v) for p, v in flat.items()]
        return [r for r in records if r is not None]

    def _decode_ledger(self, fields: dict[Any, Any]) -> LedgerEntry | None:
        try:
            return decode_ledger(fields, self.offset)
        except (ValueError, TypeError) as exc:
            log.warning("redis_corrupt_value", key=self.key("ledger"), error=str(exc))
            return None

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

    # -- reads shared by several parts ---------------------------------------------------------

    async def _snapshot(self) -> list[ParticipantRecord]:
        names = sorted(text(n) for n in await self._smembers(self.key("rooms")))
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


async def nothing() -> None:
    """The fallback of an operation whose cached-view side is already done, or that has none."""
    return None
