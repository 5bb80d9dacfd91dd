"""Randomness of live decisions: a logged decision is seeded on its own (its line replays
alone, tests/service/test_signaling_and_admin.py); unlogged ones share one generator and leave
the seed stream alone."""

from __future__ import annotations

import json

from sfu_balancer.core.record import replay

from .test_fleet_scenarios import connected


def _state(generator: object) -> str:
    return json.dumps(generator.bit_generator.state, sort_keys=True)  # type: ignore[attr-defined]


async def test_unlogged_joins_draw_from_the_shared_generator_only(cluster_factory) -> None:  # type: ignore[no-untyped-def]
    cluster = await cluster_factory(bridges=0)
    await cluster.add_fake_bridge("f1")
    await cluster.add_fake_bridge("f2")
    router = cluster.router
    seeds, shared = _state(router.rng), _state(router.decide_rng)
    members = [await connected(cluster.url, room) for room in ("a", "b", "a")]
    try:
        assert _state(router.rng) == seeds  # no seed drawn: nothing to replay
        assert _state(router.decide_rng) != shared
    finally:
        for m in members:
            await m.close()


async def test_logged_joins_draw_a_seed_each_and_replay(cluster_factory, tmp_path) -> None:  # type: ignore[no-untyped-def]
    log_path = tmp_path / "decisions.jsonl"
    cluster = await cluster_factory(bridges=0, decision_log=log_path)
    await cluster.add_fake_bridge("f1")
    await cluster.add_fake_bridge("f2")
    router = cluster.router
    seeds, shared = _state(router.rng), _state(router.decide_rng)
    members = [await connected(cluster.url, room) for room in ("a", "b")]
    try:
        assert _state(router.rng) != seeds
        assert _state(router.decide_rng) == shared
        records = [json.loads(line) for line in log_path.read_text().splitlines()]
        assert len({r["seed"] for r in records}) == len(records) == 2
        assert all(replay(r)[1] for r in records)
    finally:
        for m in members:
            await m.close()
