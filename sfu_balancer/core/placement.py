"""Room rules for one join per replica row: sticky rooms, splits, caps and the join-rate cap.

Rules, in the order they are applied to a join:
1. A room with members on an available bridge is sticky: the join goes to the room's bridge
   with the least projected stress, provided that bridge stays below stress 1, holds fewer
   than ``max_per_bridge`` of the room's members and is under the join-rate cap.
2. Otherwise the room splits: the policy chooses an added bridge among bridges open for new
   rooms that do not host the room yet, and the added bridge opens relay links to every
   available bridge of the room (``relay_to``).
3. A policy that does not split (``jicofo_single``) keeps the room on its bridge regardless.
4. When no added bridge exists, the join stays on the room's least stressed available bridge
   (``sticky_overloaded``): caps give way only when there is no alternative.
5. A new room, or one whose bridges have all failed, is placed by the policy among bridges open
   for new rooms (draining bridges take no new rooms).
6. No eligible bridge at all: ``no_bridge`` and bridge -1.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .config import RoutingConfig
from .load import CostTable, FloatArray, IntArray, join_cost
from .model import REASON_INDEX, Reason
from .policies.base import NO_BRIDGE, BoolArray, FleetView, PlacementRequest, Policy, pick_min


@dataclass(frozen=True)
class JoinBatch:
    """One join per replica row, described by the room's current state."""

    room_members: IntArray  # (R, B) members of the joining room on each bridge
    room_recent_joins: IntArray  # (R, B) joins of this room to each bridge in the last minute
    region: IntArray  # (R,) participant region code, -1 unknown
    active: BoolArray  # (R,) rows that carry a join at all


@dataclass(frozen=True)
class JoinOutcome:
    bridge: IntArray  # (R,) chosen bridge or -1
    reason: IntArray  # (R,) index into model.REASON_CODES
    relay_to: BoolArray  # (R, B) bridges the chosen bridge must open relays to (splits only)
    cost: FloatArray  # (R, 3) forecast load charged to the chosen bridge (zero when refused)


_R = {reason: np.int64(code) for reason, code in REASON_INDEX.items()}


def place_joins(
    view: FleetView,
    batch: JoinBatch,
    policy: Policy,
    config: RoutingConfig,
    costs: CostTable,
    rng: np.random.Generator,
) -> JoinOutcome:
    # Lean on purpose: this runs once per live join (target p99 <= 50 us at 1,000 bridges) and
    # once per replica batch in the simulator; the policy runs only for rows that need it.
    members = batch.room_members
    replicas = members.shape[0]
    on_room = members > 0
    total = members.sum(axis=1)
    cost = join_cost(members, total[:, None], on_room.sum(axis=1)[:, None], costs)
    projected = np.max((view.expected_load + cost) * view.inverse_limit, axis=-1)

    hosting = on_room & view.available & batch.active[:, None]
    if policy.splits:
        under_cap = hosting & (members < config.max_per_bridge)
        under_rate = (under_cap & (batch.room_recent_joins < config.join_rate_per_min)
                      if config.join_rate_per_min else under_cap)
        sticky_ok = under_rate & (projected < 1.0)
    else:
        # A non-splitting policy keeps the room where it is whatever the load (Jicofo's default).
        sticky_ok = hosting
    bridge = pick_min(projected, sticky_ok, rng)
    reason = np.full(replicas, _R[Reason.STICKY])
    relay_to = np.zeros_like(on_room)

    needs = batch.active & (bridge == NO_BRIDGE)
    if needs.any():
        has_host = hosting.any(axis=1)
        request = PlacementRequest(
            eligible=view.open_for_new & ~on_room & needs[:, None],
            cost=cost,
            region=batch.region,
            room_members=members,
            new_room=total == 0,
            costs=costs,
        )
        chosen = policy.choose(view, request, rng)
        found = needs & (chosen != NO_BRIDGE)
        bridge[found] = chosen[found]
        fresh = found & ~has_host
        reason[fresh] = np.where(total[fresh] == 0, _R[Reason.NEW_ROOM], _R[Reason.REPLACE_FAILED])
        split = found & has_host
        if split.any():
            reason[split] = np.where(
                under_rate[split].any(axis=1), _R[Reason.SPLIT_OVERLOAD],
                np.where(under_cap[split].any(axis=1), _R[Reason.SPLIT_JOIN_RATE],
                         _R[Reason.SPLIT_CAP]))
            relay_to = hosting & split[:, None]
        stuck = needs & ~found
        if stuck.any():  # caps give way only when there is no alternative
            fallback = pick_min(projected, hosting & stuck[:, None], rng)
            bridge[stuck] = fallback[stuck]
            reason[stuck] = np.where(fallback[stuck] == NO_BRIDGE, _R[Reason.NO_BRIDGE],
                                     _R[Reason.STICKY_OVERLOADED])
    inactive = ~batch.active
    bridge[inactive] = NO_BRIDGE
    reason[inactive] = _R[Reason.NO_BRIDGE]
    placed = bridge != NO_BRIDGE
    charged = cost[np.arange(replicas), np.maximum(bridge, 0)] * placed[:, None]
    return JoinOutcome(bridge=bridge, reason=reason, relay_to=relay_to, cost=charged)
