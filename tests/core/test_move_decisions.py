"""Planned moves carried out through core: charged like a join, relayed never back to the
source, and replayable from the decision log."""

from __future__ import annotations

import json

import numpy as np
import pytest

from sfu_balancer.core import CostTable, JoinRequest, Reason, decide_move, join_cost
from sfu_balancer.core.record import move_record, replay

COSTS = CostTable()


def test_a_move_costs_what_a_join_on_the_destination_costs() -> None:
    request = JoinRequest("r", "p")
    members = {"src": 2, "dst": 3, "other": 1}  # the mover already left src
    moved = decide_move(request, members, "src", "dst", Reason.MIGRATE_HOT,
                        ["src", "dst", "other"], COSTS)
    assert moved.bridge_id == "dst" and moved.reason is Reason.MIGRATE_HOT
    expected = join_cost(np.array(3), np.array(6), np.array(2), COSTS)  # dst + other host it
    assert moved.detail["cost"] == pytest.approx(expected.tolist())
    assert moved.detail["cost"][0] > 0
    assert moved.relay_to == ("other",)  # never back to src, the whole portion leaves it


def test_unlinked_bridges_get_no_relay() -> None:
    moved = decide_move(JoinRequest("r", "p"), {"a": 1, "b": 1}, "a", "c", Reason.MIGRATE_DRAIN,
                        ["a", "c"], COSTS)
    assert moved.relay_to == ()


def test_a_move_record_replays_identically_and_a_changed_one_does_not() -> None:
    request = JoinRequest("r", "p")
    members = {"src": 1, "dst": 2, "x": 4}
    moved = decide_move(request, members, "src", "dst", Reason.MIGRATE_DRAIN, ["x", "dst"], COSTS)
    record = json.loads(json.dumps(move_record(
        now=5.0, request=request, room_members=members, source="src", linked=["x", "dst"],
        costs=COSTS, decision=moved)))
    again, same = replay(record)
    assert same and again.relay_to == moved.relay_to
    record["linked"] = ["dst"]  # x no longer reachable: the relay would differ
    assert replay(record)[1] is False
    del record["source"]
    with pytest.raises(ValueError, match="malformed move record"):
        replay(record)
