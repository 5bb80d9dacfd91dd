"""A drain's moves go through core: charged to the destination's ledger, written to the
decision log, and replayed identically by ``sfu-sim replay``."""

from __future__ import annotations

import asyncio
import json
import sys

import pytest
from media_clients import wait_for

pytestmark = pytest.mark.slow


async def test_drain_moves_are_charged_logged_and_replayed(cluster_factory, tmp_path) -> None:  # type: ignore[no-untyped-def]
    log_path = tmp_path / "decisions.jsonl"
    cluster = await cluster_factory(bridges=2, decision_log=log_path)
    members = [await cluster.participant("moved") for _ in range(2)]
    await wait_for(lambda: all(m.bridge for m in members) and
                   len({m.bridge for m in members}) == 1, 60, "both placed in one room")
    source = members[0].bridge
    target = ({"b1", "b2"} - {source}).pop()
    await cluster.router.drain(source, 0.0)
    await wait_for(lambda: all(m.bridge == target for m in members), 30, "the move off drain")

    records = [json.loads(line) for line in log_path.read_text().splitlines()]
    moves = [r for r in records if r.get("kind") == "move"]
    assert [m["decision"]["bridge"] for m in moves] == [target, target]
    assert all(m["source"] == source and m["decision"]["cost"][0] > 0 for m in moves)
    entries = await cluster.router.store.ledger_entries(cluster.router.clock())
    charged = sorted(list(e.cost) for e in entries if e.bridge == target)
    assert charged == sorted(m["decision"]["cost"] for m in moves)  # the old path charged 0

    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "simulations.cli", "replay", str(log_path),
        stdout=asyncio.subprocess.PIPE)
    out, _ = await process.communicate()
    assert process.returncode == 0, out
    assert f"{len(records)} decisions replayed, {len(records)} identical, 0 differ" in out.decode()
