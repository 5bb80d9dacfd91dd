"""Decision records: one live decision with every input it saw, as plain JSON-able data.

Rules:
- A record holds the fleet view arrays exactly as the policy saw them, the bridges, the
  request, the room's state, the routing table, the cost table, the policy's own state and
  the seed of the rng the decision used. ``replay`` feeds the same inputs to the same core
  code, so an identical outcome is the expected result, and any difference is a bug or a
  changed policy.
- Floats survive JSON exactly (repr round-trips), infinities as JSON's Infinity.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict
from typing import Any

import numpy as np

from .config import RoutingConfig
from .decide import FleetSnapshot, decide_join, decide_move
from .load import CostTable, Thresholds
from .model import BridgeInfo, BridgeState, Capacity, Decision, JoinRequest, Reason, Tier
from .policies.base import FleetView, Policy

RECORD_VERSION = 1

_VIEW_ARRAYS = ("load", "pending", "capacity", "report_age", "available", "open_for_new",
                "region", "recent_placements")


def decision_record(
    *,
    view: FleetView,
    snapshot: FleetSnapshot,
    request: JoinRequest,
    room_members: Mapping[str, int],
    recent_joins: Mapping[str, int],
    tenant_participants: int,
    policy: Policy,
    routing: Mapping[str, Any],
    costs: CostTable,
    seed: int,
    decision: Decision,
    policy_state: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """``policy_state`` is the policy's state *before* the decision (``policy.state()``)."""
    return {
        "v": RECORD_VERSION,
        "now": snapshot.now,
        "bridges": [
            {"id": b.id, "host": b.host, "region": b.region, "version": b.version,
             "capacity": list(b.capacity.as_tuple()), "state": b.state.value,
             "drain_deadline": b.drain_deadline}
            for b in snapshot.bridges
        ],
        "view": {name: np.asarray(getattr(view, name)).tolist() for name in _VIEW_ARRAYS}
        | {"thresholds": [view.thresholds.cpu, view.thresholds.bandwidth],
           "report_interval_s": view.report_interval_s},
        "request": {"room": request.room, "participant": request.participant,
                    "region": request.region, "tier": request.tier.value,
                    "tenant": request.tenant},
        "room_members": dict(room_members),
        "recent_joins": dict(recent_joins),
        "tenant_participants": tenant_participants,
        "routing": dict(routing),
        "costs": asdict(costs),
        "policy_state": policy_state if policy_state is not None else policy.state(),
        "seed": seed,
        "decision": {"bridge": decision.bridge_id, "reason": decision.reason.value,
                     "relay_to": list(decision.relay_to)},
    }


def move_record(*, now: float, request: JoinRequest, room_members: Mapping[str, int],
                source: str, linked: Sequence[str], costs: CostTable,
                decision: Decision) -> dict[str, Any]:
    """The record of a planned move carried out (``decide_move``), replayable like a join."""
    return {
        "v": RECORD_VERSION, "kind": "move", "now": now,
        "request": {"room": request.room, "participant": request.participant,
                    "region": request.region, "tier": request.tier.value,
                    "tenant": request.tenant},
        "room_members": dict(room_members), "source": source, "linked": list(linked),
        "costs": asdict(costs),
        "decision": {"bridge": decision.bridge_id, "reason": decision.reason.value,
                     "relay_to": list(decision.relay_to), "cost": decision.detail["cost"]},
    }


def _replay_move(record: Mapping[str, Any]) -> Decision:
    r = record["request"]
    request = JoinRequest(r["room"], r["participant"], r["region"], Tier(r["tier"]),
                          r["tenant"])
    return decide_move(request, record["room_members"], record["source"],
                       record["decision"]["bridge"], Reason(record["decision"]["reason"]),
                       record["linked"], CostTable.from_mapping(record["costs"]))


def replay(record: Mapping[str, Any]) -> tuple[Decision, bool]:
    """Recompute a recorded decision; returns it and whether it matches the record."""
    if record.get("v") != RECORD_VERSION:
        raise ValueError(f"decision record version {record.get('v')!r} is not {RECORD_VERSION}")
    if record.get("kind") == "move":
        try:
            moved = _replay_move(record)
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"malformed move record: {exc!r}") from None
        expected = record["decision"]
        same = (list(moved.relay_to) == list(expected["relay_to"])
                and moved.detail["cost"] == expected["cost"])
        return moved, same
    try:
        bridges = tuple(
            BridgeInfo(b["id"], b["host"], b["region"], b["version"], Capacity(*b["capacity"]),
                       BridgeState(b["state"]), b["drain_deadline"])
            for b in record["bridges"]
        )
        snapshot = FleetSnapshot(bridges, {}, record["now"],
                                 record["view"]["report_interval_s"])
        v = record["view"]
        view = FleetView(
            load=np.array(v["load"], dtype=np.float64).reshape(1, len(bridges), 3),
            pending=np.array(v["pending"], dtype=np.float64).reshape(1, len(bridges), 3),
            capacity=np.array(v["capacity"], dtype=np.float64).reshape(len(bridges), 3),
            report_age=np.array(v["report_age"], dtype=np.float64).reshape(1, len(bridges)),
            available=np.array(v["available"], dtype=bool).reshape(1, len(bridges)),
            open_for_new=np.array(v["open_for_new"], dtype=bool).reshape(1, len(bridges)),
            region=np.array(v["region"], dtype=np.int64).reshape(len(bridges)),
            recent_placements=np.array(v["recent_placements"],
                                       dtype=np.float64).reshape(1, len(bridges)),
            thresholds=Thresholds(*v["thresholds"]),
            report_interval_s=v["report_interval_s"],
        )
        r = record["request"]
        request = JoinRequest(r["room"], r["participant"], r["region"], Tier(r["tier"]),
                              r["tenant"])
        config = RoutingConfig.from_mapping(record["routing"])
        policy = config.build_policy()
        policy.restore(record["policy_state"])
        decision = decide_join(
            view, snapshot, request, record["room_members"], record["recent_joins"],
            record["tenant_participants"], policy, config,
            CostTable.from_mapping(record["costs"]), np.random.default_rng(record["seed"]),
        )
    except (KeyError, TypeError) as exc:
        raise ValueError(f"malformed decision record: {exc!r}") from None
    expected = record["decision"]
    same = (decision.bridge_id == expected["bridge"]
            and decision.reason is Reason(expected["reason"])
            and list(decision.relay_to) == list(expected["relay_to"]))
    return decision, same
