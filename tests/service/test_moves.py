"""Planned moves: SIGTERM on a bridge drains it; the core's rebalancing moves rooms off a
hot bridge. Both end with media flowing on the other bridge."""

from __future__ import annotations

import asyncio
import os
import signal

import pytest
from media_clients import wait_for

from .test_e2e_media import FRAMES, everyone_receives_everyone

pytestmark = [pytest.mark.slow]


async def test_sigterm_on_a_bridge_moves_its_participants(cluster_factory) -> None:  # type: ignore[no-untyped-def]
    cluster = await cluster_factory(bridges=2)
    members = [await cluster.participant("lesson") for _ in range(2)]
    await wait_for(lambda: everyone_receives_everyone(members), 60, "media before SIGTERM")
    source = members[0].bridge
    target = ({"b1", "b2"} - {source}).pop()
    process = cluster.bridges[source]
    os.kill(process.pid, signal.SIGTERM)
    await wait_for(lambda: all(m.bridge == target for m in members), 30,
                   "participants to move off the terminating bridge")
    assert all(reason == "drain" for m in members for _, reason in m.rejoins)
    await wait_for(lambda: all(m.frames_from(members[1 - i]) >= FRAMES
                               for i, m in enumerate(members)), 60, "media after the move")
    assert await asyncio.wait_for(process.wait(), 30) == 0  # drained, said bye, exited cleanly


async def test_rebalancing_moves_a_room_off_a_hot_bridge(cluster_factory) -> None:  # type: ignore[no-untyped-def]
    # forecasts tiny, so admission lets the room onto the small bridge; real reports show it hot
    cluster = await cluster_factory(bridges=0, rebalance_interval_s=1.0,
                                    routing={"hot_stress": 0.3, "move_cooldown_s": 1.0},
                                    costs={"video_kbps": 5.0, "audio_kbps": 1.0})
    # a bridge whose NIC is tiny gets hot from one small room's real traffic
    await cluster.add_bridge("small", "--egress-mbps", "0.3", "--ingress-mbps", "0.3")
    members = [await cluster.participant("hot") for _ in range(2)]
    await wait_for(lambda: all(m.bridge == "small" for m in members), 30, "placement on small")
    await wait_for(lambda: everyone_receives_everyone(members), 60, "media on the small bridge")
    await cluster.add_bridge("big")
    await wait_for(lambda: all(m.bridge == "big" for m in members), 60,
                   "the core's rebalancing to move the room to the big bridge")
    assert all(reason == "migrate" for m in members for _, reason in m.rejoins)
    await wait_for(lambda: all(m.frames_from(members[1 - i]) >= FRAMES
                               for i, m in enumerate(members)), 60, "media after the move")
    moves = cluster.router.metrics.rejoins.labels("migrate")._value.get()
    assert moves == 2
