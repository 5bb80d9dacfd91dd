"""Shared state of the balancer: who is in which room on which bridge, relays, drains, ledger.

``memory`` is the default (one process on its own); ``redis`` shares it between instances.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .base import LedgerEntry, ParticipantRecord, StateStore
from .memory import MemoryStore

if TYPE_CHECKING:
    from sfu_balancer.settings import Settings

__all__ = ["LedgerEntry", "MemoryStore", "ParticipantRecord", "StateStore", "make_store"]


async def make_store(settings: Settings) -> StateStore:
    """The memory store without ``[redis] url``; else a connected RedisStore. Raises
    ``StoreUnavailable`` (a clear message naming the URL) when Redis cannot be reached."""
    url = settings.redis.url
    if not url:
        return MemoryStore()
    try:
        from .redis import RedisStore
    except ImportError as exc:  # the [redis] extra is not installed
        from .errors import StoreUnavailable

        raise StoreUnavailable(
            "[redis] url is set but the redis package is missing: "
            "pip install 'sfu-balancer[redis]'") from exc
    r = settings.redis
    return await RedisStore(url, r.prefix, lease_ttl_s=r.lease_ttl_s,
                            timeout_s=r.timeout_s).connect()
