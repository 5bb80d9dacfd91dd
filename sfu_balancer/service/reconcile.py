"""Distributed-mode housekeeping, run from the balancer's periodic loop (``app._periodic``).

With the memory store this does nothing. With a store that is shared (it has ``sync``), each
tick:
1. ``store.sync()``: lease renewal, cached-view refresh, replay after a Redis outage.
2. Drains set through another instance are applied to this instance's fleet view.
3. Dead instances (lease expired) are reaped: their records are compare-and-deleted and the
   bridges told to release those participants (those who rejoined elsewhere are kept).
4. Rooms found on several bridges with no relay between two of them (two instances placed
   one new room on two bridges during an outage, or an instance died between a split and its
   relay) are linked by a relay, the same mechanism as a planned split. ``add_relay`` is the
   atomic gate: of all instances, exactly one opens each relay. A pair must stay unlinked
   for ``LINK_AFTER_S`` first, so a join's own relay (opened right after its claim) wins.
5. Relays this instance opened whose room has left one of their bridges are closed (the
   last leaver may have left through another instance).
Nothing here ever touches liveness: ``/healthz`` and bridge links do not wait on it.
"""

from __future__ import annotations

import itertools
import time
import weakref
from typing import Any

import structlog

from .bridge_link import BridgeCommandError, BridgeUnavailable
from .router import Router

log = structlog.get_logger(__name__)

LINK_AFTER_S = 2.0
SCAN_EVERY_S = 1.0
DRAIN_TOLERANCE_S = 1e-3


class Reconciler:
    def __init__(self, router: Router) -> None:
        self.router = router
        self.unlinked_since: dict[tuple[str, str, str], float] = {}
        self.next_scan = 0.0
        self.relays_opened = 0
        self.reaped = 0

    async def tick(self) -> None:
        store: Any = self.router.store
        if not hasattr(store, "sync"):
            return  # memory store: nothing is shared
        await store.sync()
        if not store.available:
            return  # the cached view serves joins; nothing to reconcile against
        now = time.monotonic()
        if now < self.next_scan:
            return
        self.next_scan = now + SCAN_EVERY_S
        await self._apply_drains()
        for instance in await store.dead_instances():
            for record in await store.reap(instance):
                self.reaped += 1
                await self.router._release_on_bridge(record)
        await self._link_splits(now)
        await self._close_stale_relays()

    async def _apply_drains(self) -> None:
        fleet = self.router.fleet
        drains = await self.router.store.drains()
        for bridge, entry in fleet.entries.items():
            want = drains.get(bridge)
            have = entry.info.drain_deadline
            same = (want is None and have is None) or (
                want is not None and have is not None and abs(want - have) < DRAIN_TOLERANCE_S)
            if not same and entry.alive:
                fleet.set_drain(bridge, want)
                self.router.metrics.bridge_up.labels(bridge).set(0 if want is not None else 1)
                log.info("drain_synced", bridge=bridge, deadline=want)

    async def _link_splits(self, now: float) -> None:
        router = self.router
        store: Any = router.store  # a RedisStore: run checked it has sync
        seen: set[tuple[str, str, str]] = set()
        # The cached view (at most a second old) spares a full read of Redis every scan.
        for room, members in (await store.cached_rooms()).items():
            bridges = sorted(b for b in members if router.fleet.link(b) is not None)
            if len(bridges) < 2:
                continue
            linked = set(await store.relays(room))
            for a, b in itertools.combinations(bridges, 2):
                if (a, b) in linked:
                    continue
                key = (room, a, b)
                seen.add(key)
                first = self.unlinked_since.setdefault(key, now)
                if now - first < LINK_AFTER_S or not await store.add_relay(room, a, b):
                    continue
                try:
                    await router.relays.open(room, a, b)
                except (BridgeUnavailable, BridgeCommandError) as exc:
                    await store.remove_relay(room, a, b)
                    log.warning("split_link_failed", room=room, a=a, b=b, error=str(exc))
                    continue
                self.relays_opened += 1
                log.warning("split_linked", room=room, a=a, b=b,
                            note="room found on two bridges with no relay")
        # forget pairs that got linked or went away
        for key in set(self.unlinked_since) - seen:
            del self.unlinked_since[key]

    async def _close_stale_relays(self) -> None:
        router = self.router
        for relay in list(router.relays.by_id.values()):
            members = await router.store.room_members(relay.room)
            if members.get(relay.a, 0) and members.get(relay.b, 0):
                continue
            await router.store.remove_relay(relay.room, relay.a, relay.b)
            await router.relays.close(relay)


_reconcilers: weakref.WeakKeyDictionary[Router, Reconciler] = weakref.WeakKeyDictionary()


def reconciler(router: Router) -> Reconciler:
    found = _reconcilers.get(router)
    if found is None:
        found = _reconcilers[router] = Reconciler(router)
    return found


async def reconcile(router: Router) -> None:
    """One tick of distributed-mode housekeeping (a no-op with the memory store)."""
    await reconciler(router).tick()
