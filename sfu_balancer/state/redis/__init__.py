"""Redis StateStore: the state shared by several balancer instances (DESIGN.md §4).

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

Modules:
  keys          the key schema (version 1) and value encoding
  scripts       the Lua scripts that change a room's placement
  connection    RedisConnection: the client, all of the store's state, the outage switch
  participants  participant records: claims, removals, reads
  rooms         per-room side state: recent joins, relays
  ledger        per-bridge shared state: the placement ledger, drain deadlines
  recovery      connect/close, the lease, cached-view refresh, replay after an outage, reaping
  store         RedisStore, assembled from the parts above

This package shares its last name with redis-py: every module here imports absolutely
(``from redis.asyncio import ...`` is always the library, never this package).
"""

from __future__ import annotations

from sfu_balancer.state.errors import StoreUnavailable
from sfu_balancer.state.redis.connection import LEDGER_READ_S as LEDGER_READ_S
from sfu_balancer.state.redis.connection import OUTAGE as OUTAGE
from sfu_balancer.state.redis.keys import SCHEMA as SCHEMA
from sfu_balancer.state.redis.rooms import JOINS_HORIZON_S as JOINS_HORIZON_S
from sfu_balancer.state.redis.rooms import JOINS_TRIM_EVERY_S as JOINS_TRIM_EVERY_S
from sfu_balancer.state.redis.scripts import ASSERT as ASSERT
from sfu_balancer.state.redis.scripts import CLAIM as CLAIM
from sfu_balancer.state.redis.scripts import REMOVE as REMOVE
from sfu_balancer.state.redis.store import RedisStore

__all__ = ["RedisStore", "StoreUnavailable"]
