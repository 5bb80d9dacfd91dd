from sfu_balancer.state import LedgerEntry, MemoryStore, ParticipantRecord


def rec(room: str, participant: str, bridge: str) -> ParticipantRecord:
    return ParticipantRecord(room, participant, bridge)


async def test_claim_placement_refuses_a_second_bridge_the_decision_did_not_see() -> None:
    store = MemoryStore()
    assert await store.claim_placement(rec("r", "a", "b1"), frozenset())
    # another instance decided on an empty room and chose b2: refused, nothing changes
    assert not await store.claim_placement(rec("r", "b", "b2"), frozenset())
    assert await store.room_members("r") == {"b1": 1}
    # deciding again on what is there now succeeds, on the room's bridge or as a seen split
    assert await store.claim_placement(rec("r", "b", "b1"), frozenset())
    assert await store.claim_placement(rec("r", "c", "b2"), frozenset({"b1"}))
    assert await store.room_members("r") == {"b1": 2, "b2": 1}


async def test_records_relays_ledger_and_drains() -> None:
    store = MemoryStore(ledger_horizon_s=10)
    await store.claim_placement(ParticipantRecord("r", "a", "b1", tenant="t"), frozenset())
    assert await store.tenant_count("t") == 1
    assert [r.participant for r in await store.participants_on("b1")] == ["a"]
    assert await store.add_relay("r", "b2", "b1") and not await store.add_relay("r", "b1", "b2")
    assert await store.relays("r") == [("b1", "b2")]
    assert await store.remove_relay("r", "b1", "b2") and await store.relays("r") == []
    await store.ledger_add(LedgerEntry("b1", (0.1, 1.0, 1.0), placed_at=0.0))
    await store.ledger_add(LedgerEntry("b1", (0.1, 1.0, 1.0), placed_at=5.0))
    assert len(await store.ledger_entries(now=12.0)) == 1
    await store.record_join("r", "b1", 0.0)
    await store.record_join("r", "b1", 50.0)
    assert await store.recent_joins("r", now=61.0, window_s=60.0) == {"b1": 1}
    await store.set_drain("b1", 99.0)
    assert await store.drains() == {"b1": 99.0}
    await store.set_drain("b1", None)
    assert await store.drains() == {}
    assert (await store.remove_participant("r", "a")) is not None
    assert await store.rooms() == {}


async def test_owner_and_cache_helpers() -> None:
    """The memory store owns every record (instance ""), and can serve as a cached view:
    ``put_participant`` records unconditionally, ``load_participants`` replaces all."""
    store = MemoryStore()
    assert store.instance_id == ""
    await store.claim_placement(rec("r", "a", "b1"), frozenset())
    record = await store.get_participant("r", "a")
    assert record is not None and record.instance == store.instance_id
    store.put_participant(rec("r", "b", "b2"))  # no placement check: a mirror of the truth
    assert await store.room_members("r") == {"b1": 1, "b2": 1}
    store.load_participants([rec("s", "c", "b3")])
    assert await store.rooms() == {"s": {"b3": 1}}
