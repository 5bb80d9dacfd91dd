"""RoomLocks: mutual exclusion per room, and no entry left once nobody holds or waits."""

from __future__ import annotations

import asyncio
import contextlib

from media_clients import wait_for

from sfu_balancer.service.room_locks import RoomLocks

from .test_fleet_scenarios import connected


async def test_one_holder_per_room_and_nothing_kept_after() -> None:
    locks = RoomLocks()
    inside: dict[str, int] = {"a": 0, "b": 0}
    most: dict[str, int] = {"a": 0, "b": 0}
    entered = asyncio.Event()

    async def work(room: str) -> None:
        async with locks.hold(room):
            inside[room] += 1
            most[room] = max(most[room], inside[room])
            entered.set()
            await asyncio.sleep(0.01)  # hand the loop to the other tasks while holding it
            inside[room] -= 1

    tasks = [asyncio.create_task(work(room)) for room in "ababab"]
    await entered.wait()
    assert len(locks) == 2  # the waiters share their room's entry
    await asyncio.gather(*tasks)
    assert most == {"a": 1, "b": 1}
    assert len(locks) == 0


async def test_a_holder_that_fails_still_lets_go() -> None:
    locks = RoomLocks()

    async def fail() -> None:
        async with locks.hold("r"):
            raise RuntimeError("boom")

    for _ in range(3):
        with contextlib.suppress(RuntimeError):
            await fail()
    assert len(locks) == 0
    async with locks.hold("r"):  # not left locked
        assert len(locks) == 1


async def test_the_router_keeps_no_lock_for_rooms_gone(cluster_factory) -> None:  # type: ignore[no-untyped-def]
    cluster = await cluster_factory(bridges=0)
    await cluster.add_fake_bridge("f1")
    members = [await connected(cluster.url, f"room-{i}") for i in range(20)]
    for m in members:
        await m.close()
    router = cluster.router
    await wait_for(lambda: not router.sessions, 10, "every participant to have left")
    assert len(router._locks) == 0

