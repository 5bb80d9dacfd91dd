"""End to end with aiortc clients: real bridge processes, real media, the real balancer."""

from __future__ import annotations

import asyncio
import time
from itertools import combinations

import pytest
from media_clients import wait_for

pytestmark = [pytest.mark.slow]

FRAMES = 8  # decoded frames that prove a stream flows (10 fps sources)


def everyone_receives_everyone(participants) -> bool:  # type: ignore[no-untyped-def]
    return all(a.frames_from(b) >= FRAMES and b.frames_from(a) >= FRAMES
               for a, b in combinations(participants, 2))


async def test_three_rooms_of_four_over_two_bridges(cluster_factory) -> None:  # type: ignore[no-untyped-def]
    cluster = await cluster_factory(bridges=0)
    # NICs small enough that a room's forecast cost outweighs CPU noise between idle bridges,
    # so the ledger (not chance) must spread the rooms over both bridges
    for name in ("b1", "b2"):
        await cluster.add_bridge(name, "--egress-mbps", "40", "--ingress-mbps", "40")
    rooms = {name: [await cluster.participant(name) for _ in range(4)]
             for name in ("alpha", "beta", "gamma")}
    for members in rooms.values():
        await wait_for(lambda m=members: everyone_receives_everyone(m), 90,
                       "every member of the room to decode every other member")
    placements = await cluster.router.store.rooms()
    assert {name: sum(p.values()) for name, p in placements.items()} == \
        {"alpha": 4, "beta": 4, "gamma": 4}
    # each room on one bridge (sticky), and the fleet shares the rooms
    assert all(len(p) == 1 for p in placements.values())
    assert {b for p in placements.values() for b in p} == {"b1", "b2"}
    # nobody receives a member of another room
    for name, members in rooms.items():
        others = [p for n, ms in rooms.items() if n != name for p in ms]
        assert all(m.frames_from(o) == 0 for m in members for o in others)


async def test_split_room_relays_between_bridges(cluster_factory) -> None:  # type: ignore[no-untyped-def]
    cluster = await cluster_factory(bridges=2, routing={"max_per_bridge": 2})
    members = [await cluster.participant("big") for _ in range(3)]
    await wait_for(lambda: all(m.bridge for m in members), 30, "all three to join")
    assert {m.bridge for m in members} == {"b1", "b2"}
    await wait_for(lambda: everyone_receives_everyone(members), 90,
                   "members on both bridges to decode each other through the relay")
    assert await cluster.router.store.relays("big") == [("b1", "b2")]


async def test_bridge_killed_participants_rejoin_elsewhere(cluster_factory) -> None:  # type: ignore[no-untyped-def]
    cluster = await cluster_factory(bridges=2)
    members = [await cluster.participant("ward") for _ in range(2)]
    await wait_for(lambda: everyone_receives_everyone(members), 60, "media before the kill")
    victim = members[0].bridge
    assert victim is not None and members[1].bridge == victim
    survivor = ({"b1", "b2"} - {victim}).pop()
    before = [m.frames_from(members[1 - i]) for i, m in enumerate(members)]
    assert all(n >= FRAMES for n in before), before  # media flowed on the victim
    old_subscribers = [m.subscriber for m in members]
    killed_at = time.monotonic()
    cluster.kill_bridge(victim)
    await wait_for(lambda: all(m.bridge == survivor for m in members), 30,
                   "both participants to be placed on the surviving bridge")
    assert all(reason == "bridge_failed" for m in members for _, reason in m.rejoins)
    await wait_for(lambda: everyone_receives_everyone(members), 60, "media after failover")
    recovered = time.monotonic() - killed_at
    assert recovered < 60
    # the frames counted now are new media: each participant decodes on a new subscribe
    # connection (its count started at 0 at the rejoin), not the old one's frames
    assert all(m.subscriber is not old for m, old in zip(members, old_subscribers, strict=True))
    assert all(m.frames_from(members[1 - i]) >= FRAMES for i, m in enumerate(members))
    entry = cluster.router.fleet.entries[victim]
    assert entry.info.state.value == "failed"


async def test_drain_moves_everyone_and_takes_no_new_rooms(cluster_factory) -> None:  # type: ignore[no-untyped-def]
    cluster = await cluster_factory(bridges=2)
    members = [await cluster.participant("class") for _ in range(2)]
    await wait_for(lambda: everyone_receives_everyone(members), 60, "media before drain")
    source = members[0].bridge
    target = ({"b1", "b2"} - {source}).pop()
    await cluster.router.drain(source, 0.0)
    await wait_for(lambda: all(m.bridge == target for m in members), 30, "the move off drain")
    await wait_for(lambda: everyone_receives_everyone(members) and all(
        m.frames_from(members[1 - i]) >= FRAMES for i, m in enumerate(members)), 60,
        "media after the move")
    newcomer = await cluster.participant("newroom")
    await wait_for(lambda: newcomer.bridge is not None, 30, "a new room to be placed")
    assert newcomer.bridge == target
    await cluster.router.undrain(source)
    assert source in cluster.router.fleet.serving()
    await asyncio.sleep(0)  # let the loop settle before teardown


async def test_silent_bridge_fails_and_returns_after_dialing_in_again(cluster_factory) -> None:  # type: ignore[no-untyped-def]
    import os
    import signal

    cluster = await cluster_factory(bridges=2)
    members = [await cluster.participant("quiet") for _ in range(2)]
    await wait_for(lambda: everyone_receives_everyone(members), 60, "media before the freeze")
    frozen = members[0].bridge
    survivor = ({"b1", "b2"} - {frozen}).pop()
    process = cluster.bridges[frozen]
    os.killpg(process.pid, signal.SIGSTOP)  # alive, link open, but no more reports
    try:
        await wait_for(lambda: all(m.bridge == survivor for m in members), 30,
                       "participants to leave the silent bridge")
        assert cluster.router.fleet.entries[frozen].info.state.value == "failed"
        assert all(reason == "bridge_failed" for m in members for _, reason in m.rejoins)
        await wait_for(lambda: all(m.frames_from(members[1 - i]) >= FRAMES
                                   for i, m in enumerate(members)), 60, "media after failover")
    finally:
        os.killpg(process.pid, signal.SIGCONT)
    await wait_for(lambda: frozen in cluster.router.fleet.serving(), 30,
                   "the woken bridge to dial in again and serve")
