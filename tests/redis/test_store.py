"""RedisStore against a real redis-server: the StateStore contract (the same checks as the
memory store's), atomic placement under races, corrupt keys, outage fallback, leases."""

from __future__ import annotations

import asyncio
import time

import pytest
from redis.asyncio import Redis

from sfu_balancer.settings import Settings
from sfu_balancer.state import LedgerEntry, MemoryStore, ParticipantRecord, make_store
from sfu_balancer.state.errors import StoreUnavailable

from .conftest import RedisServer, StoreFactory, free_port


def rec(room: str, participant: str, bridge: str, **extra: object) -> ParticipantRecord:
    return ParticipantRecord(room, participant, bridge, **extra)  # type: ignore[arg-type]


async def test_claim_placement_refuses_a_second_bridge_the_decision_did_not_see(
        stores: StoreFactory) -> None:
    store = await stores()
    assert await store.claim_placement(rec("r", "a", "b1"), frozenset())
    assert not await store.claim_placement(rec("r", "b", "b2"), frozenset())
    assert await store.room_members("r") == {"b1": 1}
    assert await store.claim_placement(rec("r", "b", "b1"), frozenset())
    assert await store.claim_placement(rec("r", "c", "b2"), frozenset({"b1"}))
    assert await store.room_members("r") == {"b1": 2, "b2": 1}
    # a participant's own old record does not count as the room's bridge (a rejoin)
    assert await store.claim_placement(rec("s", "a", "b1"), frozenset())
    assert await store.claim_placement(rec("s", "a", "b2"), frozenset())
    assert await store.room_members("s") == {"b2": 1}
    record = await store.get_participant("r", "a")
    assert record is not None and record.instance == store.instance_id


async def test_records_relays_ledger_and_drains(stores: StoreFactory) -> None:
    store = await stores(ledger_horizon_s=10, ledger_read_s=0.0)
    now = time.monotonic()
    await store.claim_placement(rec("r", "a", "b1", tenant="t"), frozenset())
    assert await store.tenant_count("t") == 1
    assert [r.participant for r in await store.participants_on("b1")] == ["a"]
    assert await store.add_relay("r", "b2", "b1") and not await store.add_relay("r", "b1", "b2")
    assert await store.relays("r") == [("b1", "b2")]
    assert await store.remove_relay("r", "b1", "b2") and await store.relays("r") == []
    await store.ledger_add(LedgerEntry("b1", (0.1, 1.0, 1.0), placed_at=now - 20))
    await store.ledger_add(LedgerEntry("b1", (0.1, 1.0, 1.0), placed_at=now - 5))
    entries = await store.ledger_entries(now)
    assert len(entries) == 1 and abs(entries[0].placed_at - (now - 5)) < 1e-3
    await store.record_join("r", "b1", now - 70)
    await store.record_join("r", "b1", now - 10)
    assert await store.recent_joins("r", now=now, window_s=60.0) == {"b1": 1}
    await store.set_drain("b1", now + 99.0)
    drains = await store.drains()
    assert list(drains) == ["b1"] and abs(drains["b1"] - (now + 99.0)) < 1e-3
    await store.set_drain("b1", None)
    assert await store.drains() == {}
    removed = await store.remove_participant("r", "a")
    assert removed is not None and removed.tenant == "t"
    assert await store.rooms() == {} and await store.tenant_count("t") == 0


async def test_memory_store_keeps_the_same_owner_rules() -> None:
    store = MemoryStore()
    assert store.instance_id == ""
    await store.claim_placement(rec("r", "a", "b1"), frozenset())
    record = await store.get_participant("r", "a")
    assert record is not None and record.instance == store.instance_id


async def test_racing_instances_never_open_one_room_on_two_bridges(
        stores: StoreFactory) -> None:
    """Many instances decide on the same empty rooms at once, each for its own bridge: every
    room ends on exactly one bridge (the losers are told to decide again)."""
    instances = [await stores() for _ in range(4)]

    async def join(i: int, room: str) -> bool:
        store = instances[i % len(instances)]
        return await store.claim_placement(rec(room, f"p{i}", f"b{i % 4}"), frozenset())

    for round_ in range(25):
        room = f"race{round_}"
        results = await asyncio.gather(*(join(i, room) for i in range(12)))
        members = await instances[0].room_members(room)
        assert len(members) == 1, members
        (bridge,) = members
        assert sum(results) == members[bridge]


async def test_ledger_is_shared_between_instances(stores: StoreFactory) -> None:
    a, b = await stores(ledger_read_s=0.0), await stores(ledger_read_s=0.0)
    now = time.monotonic()
    for i in range(5):
        await a.ledger_add(LedgerEntry("b1", (0.1, 1.0, 1.0), now))
        await b.ledger_add(LedgerEntry(f"b{i % 2}", (0.1, 1.0, 1.0), now))
    assert len(await a.ledger_entries(now)) == 10
    assert len(await b.ledger_entries(now)) == 10
    await a.ledger_add(LedgerEntry("b2", (0.1, 1.0, 1.0), now))
    assert len(await b.ledger_entries(now)) == 11  # read incrementally, nothing twice


async def test_corrupt_and_foreign_keys_are_logged_and_skipped(
        stores: StoreFactory, redis_server: RedisServer) -> None:
    store = await stores()
    await store.claim_placement(rec("good", "a", "b1"), frozenset())
    raw = Redis.from_url(redis_server.url)
    try:
        await raw.hset(store.key("room", "good"), "junk", "{not json")
        await raw.hset(store.key("room", "good"), "typed", '{"b": 7}')
        await raw.set(store.key("room", "stringy"), "not a hash")
        await raw.sadd(store.key("rooms"), "stringy", "missing")
        await raw.set(store.key("relays", "good"), "x")
        await raw.set(store.key("joins", "good"), "x")
        await raw.hset(store.key("drains"), "b9", "soon")
        await raw.hset(store.key("tenants"), "t", "many")
        await raw.xadd(store.key("ledger"), {"e": "[1,2"})
        await raw.set(store.base + "foreign:key", "whatever")
        await raw.set(store.key("unknown"), "x")
    finally:
        await raw.aclose()
    assert await store.rooms() == {"good": {"b1": 1}}
    assert await store.room_members("good") == {"b1": 1}
    assert await store.relays("good") == []
    assert await store.recent_joins("good", time.monotonic(), 60) == {}
    assert await store.drains() == {}
    assert await store.tenant_count("t") == 0
    assert await store.ledger_entries(time.monotonic()) == []
    # a join to the corrupt room is refused, not a crash; other rooms still work
    assert not await store.claim_placement(rec("stringy", "b", "b1"), frozenset())
    assert await store.claim_placement(rec("good", "b", "b1"), frozenset())
    assert await store.remove_participant("stringy", "b") is None
    assert not await store.add_relay("good", "b1", "b2")
    await store.sync()
    assert store.available


async def test_outage_serves_the_cached_view_and_replays_it(own_redis: RedisServer) -> None:
    from sfu_balancer.state.redis import RedisStore

    a = await RedisStore(own_redis.url, "o", lease_ttl_s=2.0, timeout_s=0.3).connect()
    b = await RedisStore(own_redis.url, "o", lease_ttl_s=2.0, timeout_s=0.3).connect()
    try:
        await a.claim_placement(rec("old", "a1", "b1"), frozenset())
        await b.claim_placement(rec("old", "b1", "b1"), frozenset())
        await a.sync()  # a's cached view learns b's record
        await asyncio.sleep(0)
        a._refreshed = float("-inf")
        await a.sync()
        own_redis.kill()
        # joins to the existing room go where the room is; a new room is decided locally
        assert await a.room_members("old") == {"b1": 2}
        assert await a.claim_placement(rec("old", "a2", "b1"), frozenset())
        assert not a.available
        assert await a.claim_placement(rec("new", "a3", "b2"), frozenset())
        assert await b.claim_placement(rec("new", "b3", "b1"), frozenset())
        assert await a.remove_participant("old", "a1") is not None
        own_redis.start()  # empty: nothing was saved
        for store in (a, b):
            store._next_probe = 0.0
            await store.sync()
            assert store.available
        rooms = await a.rooms()
        assert rooms == {"old": {"b1": 2}, "new": {"b1": 1, "b2": 1}}, rooms
    finally:
        await a.close()
        await b.close()


async def test_dead_instance_is_reaped_by_compare_and_delete(stores: StoreFactory) -> None:
    live = await stores(lease_ttl_s=0.5)
    dead = await stores(lease_ttl_s=0.5)
    await dead.claim_placement(rec("r", "x", "b1"), frozenset())
    await dead.claim_placement(rec("r", "y", "b1"), frozenset())
    await dead.redis.delete(dead.key("lease", dead.instance_id))  # as if its TTL ran out
    # y rejoined through the live instance: it is no longer the dead one's to remove
    await live.claim_placement(rec("r", "y", "b1"), frozenset({"b1"}))
    live.up_since -= 1.0  # past the post-connect grace
    assert await live.dead_instances() == [dead.instance_id]
    removed = await live.reap(dead.instance_id)
    assert [r.participant for r in removed] == ["x"]
    assert await live.room_members("r") == {"b1": 1}
    assert await live.dead_instances() == []


async def test_make_store_memory_redis_and_unreachable(redis_server: RedisServer) -> None:
    assert isinstance(await make_store(Settings()), MemoryStore)
    store = await make_store(Settings(redis={"url": redis_server.url, "prefix": "mk"}))
    try:
        assert store.instance_id
    finally:
        await store.close()
    with pytest.raises(StoreUnavailable, match="cannot reach Redis"):
        await make_store(Settings(redis={"url": f"redis://127.0.0.1:{free_port()}/0",
                                         "timeout_s": 0.5}))
