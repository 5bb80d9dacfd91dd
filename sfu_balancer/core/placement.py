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
from .load import CostTable, FloatArray, IntArray, join_cost, room_streams
from .model import REASON_INDEX, Reason
from .policies.base import NO_BRIDGE, BoolArray, FleetView, PlacementRequest, Policy, pick_min


def _growth_table(alpha: float = 1.43, low: int = 2, high: int = 100) -> FloatArray:
    """table[m] = expected further members of a room that has m members now, for sizes drawn
    from the discrete Pareto P(N >= n) = (n/low)^-alpha on [low, high] (RESEARCH.md)."""
    sizes = np.arange(high + 2, dtype=np.float64)
    survival = np.where(sizes >= low, (np.maximum(sizes, low) / low) ** -alpha, 1.0)
    survival[high + 1] = 0.0
    pmf = survival[:-1] - survival[1:]  # pmf[n] = P(N = n), n = 0..high
    pmf[:low] = 0.0
    tail_mass = np.cumsum(pmf[::-1])[::-1]
    tail_sum = np.cumsum((pmf * sizes[:-1])[::-1])[::-1]
    table = np.zeros(high + 2, dtype=np.float64)
    for m in range(high + 1):
        k = max(m, low)
        table[m] = max(tail_sum[k] / tail_mass[k] - m, 0.0) if tail_mass[k] > 0 else 0.0
    return table


GROWTH_TABLE = _growth_table()


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


def growth_load(room_members: IntArray, costs: CostTable) -> FloatArray:
    """(R, B, 3) forecast load of the room's expected growth if this join lands on each bridge."""
    total_after = room_members.sum(axis=1, keepdims=True) + 1
    extra = GROWTH_TABLE[np.minimum(total_after, GROWTH_TABLE.size - 1)]
    local_after = room_members + 1
    egress_now, ingress_now = room_streams(local_after, costs.last_n)
    egress_later, ingress_later = room_streams(local_after + extra, costs.last_n)
    return costs.streams_to_load(egress_later - egress_now, ingress_later - ingress_now)


_R = {reason: np.int64(code) for reason, code in REASON_INDEX.items()}


def place_joins(
    view: FleetView,
    batch: JoinBatch,
    policy: Policy,
    config: RoutingConfig,
    costs: CostTable,
    rng: np.random.Generator,
) -> JoinOutcome:
    members = batch.room_members
    total = members.sum(axis=1)
    on_room = members > 0
    room_bridges = on_room.sum(axis=1)
    cost = join_cost(members, total[:, None], room_bridges[:, None], costs)
    projected = np.max((view.expected_load + cost) / view.limit, axis=-1)

    hosting = on_room & view.available & batch.active[:, None]
    under_cap = members < config.max_per_bridge
    under_rate = (
        batch.room_recent_joins < config.join_rate_per_min
        if config.join_rate_per_min
        else np.ones_like(under_cap)
    )
    # A non-splitting policy keeps the room where it is whatever the load (Jicofo's default).
    sticky_ok = hosting & under_cap & under_rate & (projected < 1.0) if policy.splits else hosting
    sticky = pick_min(projected, sticky_ok, rng)
    has_host = hosting.any(axis=1)
    needs_bridge = batch.active & (sticky == NO_BRIDGE)
    splitting = needs_bridge & has_host

    eligible = view.open_for_new & needs_bridge[:, None] & ~on_room
    request = PlacementRequest(
        eligible=eligible,
        cost=cost,
        growth=growth_load(members, costs),
        region=batch.region,
        room_members=members,
        new_room=total == 0,
    )
    chosen = policy.choose(view, request, rng)
    fallback = pick_min(projected, hosting, rng)  # caps give way only without an alternative

    bridge = np.where(sticky != NO_BRIDGE, sticky, np.where(chosen != NO_BRIDGE, chosen, fallback))
    bridge = np.where(needs_bridge & ~has_host & (chosen == NO_BRIDGE), NO_BRIDGE, bridge)
    bridge = np.where(batch.active, bridge, NO_BRIDGE)

    split_reason = np.select(
        [(hosting & under_cap & under_rate).any(axis=1), (hosting & under_cap).any(axis=1)],
        [_R[Reason.SPLIT_OVERLOAD], _R[Reason.SPLIT_JOIN_RATE]],
        default=_R[Reason.SPLIT_CAP],
    )
    new_reason = np.where(total == 0, _R[Reason.NEW_ROOM], _R[Reason.REPLACE_FAILED])
    reason = np.select(
        [
            bridge == NO_BRIDGE,
            sticky != NO_BRIDGE,
            splitting & (chosen != NO_BRIDGE),
            splitting,
        ],
        [_R[Reason.NO_BRIDGE], _R[Reason.STICKY], split_reason, _R[Reason.STICKY_OVERLOADED]],
        default=new_reason,
    )
    is_split = splitting & (chosen != NO_BRIDGE)
    relay_to = hosting & is_split[:, None]
    rows = np.arange(members.shape[0])
    charged = np.where((bridge != NO_BRIDGE)[:, None], cost[rows, np.maximum(bridge, 0)], 0.0)
    return JoinOutcome(bridge=bridge, reason=reason, relay_to=relay_to, cost=charged)
