"""Redis stopped for real for 30 s under two balancer instances (processes) and two bridges.

During the outage: existing rooms keep running (nobody is released), joins to existing rooms
still land on the room's bridge from either instance (cached view), /healthz answers, and a
new room that the two instances place on two different bridges opens on both. Redis comes
back empty (nothing was saved): every participant is written back by its instance, and the
new room's two bridges are linked by a relay.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest

from sfu_balancer.state.redis import RedisStore

from .cluster import Cluster, wait_async, wait_until
from .conftest import RedisServer

pytestmark = pytest.mark.slow

OUTAGE_S = 30.0


async def test_redis_stopped_for_thirty_seconds(own_redis: RedisServer, tmp_path: Path) -> None:
    cluster = Cluster(own_redis.url, f"o{uuid.uuid4().hex[:8]}", tmp_path, instances=2,
                      bridges=2)
    try:
        await cluster.start()
        a, b = cluster.instances
        existing = [cluster.join(f"old{i}", f"o{i}-{j}", first=j % 2)
                    for i in range(4) for j in range(4)]
        await wait_until(lambda: all(p.joined.is_set() for p in existing), 60, "first joins")
        room_bridge = {p.room: p.bridge for p in existing}
        assert all(p.bridge == room_bridge[p.room] for p in existing)
        # let both instances refresh their cached view (every 1 s) after the last join
        joined_at = time.monotonic()
        await wait_until(lambda: time.monotonic() - joined_at > 1.5, 5, "a view refresh")
        releases_before = sum(br.releases for br in cluster.bridges)

        own_redis.kill()
        stopped = time.monotonic()
        for instance in (a, b):
            async with cluster.session.get(f"{instance.url}/healthz") as response:
                assert response.status == 200  # liveness never waits on Redis

        # joins to existing rooms, through both instances, go to the room's bridge
        late = [cluster.join(f"old{i}", f"late{i}-{j}", first=j) for i in range(4)
                for j in range(2)]
        await wait_until(lambda: all(p.joined.is_set() for p in late), 30, "outage joins")
        assert [p.bridge for p in late] == [room_bridge[p.room] for p in late]

        # a new room: the instances see different loads and place it on different bridges
        b1, b2 = cluster.bridges
        b1.skew[b.url] = 3.9
        b2.skew[a.url] = 3.9
        await wait_until(lambda: b1.reports[b.url] > 2 and b2.reports[a.url] > 2, 10, "skew")
        skew_from = (b1.reports[b.url], b2.reports[a.url])
        await wait_until(lambda: b1.reports[b.url] >= skew_from[0] + 2
                         and b2.reports[a.url] >= skew_from[1] + 2, 10, "skewed reports")
        on_a = cluster.join("fresh", "fa", first=0)
        on_b = cluster.join("fresh", "fb", first=1)
        await wait_until(lambda: on_a.joined.is_set() and on_b.joined.is_set(), 30, "fresh")
        assert (on_a.url, on_b.url) == (a.url, b.url)
        assert {on_a.bridge, on_b.bridge} == {"b1", "b2"}, "the fresh room did not split"
        b1.skew.clear()
        b2.skew.clear()

        for instance in (a, b):
            async with cluster.session.get(f"{instance.url}/healthz") as response:
                assert response.status == 200
        assert sum(br.releases for br in cluster.bridges) == releases_before
        assert len(cluster.allocations()) == len(existing) + len(late) + 2
        await wait_until(lambda: time.monotonic() - stopped >= OUTAGE_S, OUTAGE_S + 5,
                         "the end of the outage", step_s=0.5)

        own_redis.start()  # empty
        back = time.monotonic()
        linked = await wait_until(
            lambda: any(r[0] == "fresh" for r in b1.relay_opens)
            and any(r[0] == "fresh" for r in b2.relay_opens), 30, "the fresh room linked")
        reader = await RedisStore(own_redis.url, cluster.prefix).connect()
        try:
            async def restored() -> bool:
                return len(await reader.all_participants()) == len(cluster.participants)

            await wait_async(restored, 10, "every participant written back")
            records = await reader.all_participants()
            assert sorted((r.room, r.participant, r.bridge) for r in records) == sorted(
                (p.room, p.id, p.bridge) for p in cluster.participants)
            assert await reader.relays("fresh") == [("b1", "b2")]
        finally:
            await reader.disconnect()
        print(f"\noutage {OUTAGE_S:.0f} s: {len(late)} joins to existing rooms and a split "
              f"new room served from the cached view; relay linked {linked:.2f} s after "
              f"Redis came back ({time.monotonic() - back:.2f} s to full state)")
    finally:
        await cluster.close()
