"""The joins of one tick for one policy group: core admission + core placement, in one call.

Rules:
- Every join of the tick, in every replica row of the group, goes to core's ``place_sequence``
  at once, in order within each row; re-joins of participants whose bridge failed go first.
- Every join sees the same reports (those of this tick) plus the ledger charges of all earlier
  joins of the tick (core charges them between joins) and the earlier joins of its own room;
  the placements are then charged to the group's core ledger (``ledger.add``).
- Refused joins (admission ``capacity`` or ``no_bridge``) leave the participant unconnected;
  their later leave is then a no-op.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from sfu_balancer.core import JoinSequence, place_sequence
from sfu_balancer.core.admission import TIER_INDEX
from sfu_balancer.core.model import REASON_INDEX, Reason, Tier

if TYPE_CHECKING:
    from .engine import Engine, Group

STANDARD = TIER_INDEX[Tier.STANDARD]
CAPACITY = REASON_INDEX[Reason.CAPACITY]
NEW_ROOM = REASON_INDEX[Reason.NEW_ROOM]
IS_SPLIT = np.zeros(len(REASON_INDEX), dtype=np.bool_)
IS_SPLIT[[REASON_INDEX[r] for r in (Reason.SPLIT_OVERLOAD, Reason.SPLIT_CAP,
                                    Reason.SPLIT_JOIN_RATE)]] = True


def place_tick(e: Engine, g: Group, g_index: int, now: float,
               seen: tuple[np.ndarray, np.ndarray], chunk: slice) -> None:
    joins = e.schedule.joins
    x_rows, x_slots, x_members = g.extra
    if chunk.stop == chunk.start and x_rows.size == 0:
        return
    empty = np.zeros(0, dtype=np.int64)
    g.extra = (empty, empty, empty)
    rows = np.concatenate([x_rows, joins.seed[chunk].astype(np.int64)])
    slots = np.concatenate([x_slots, joins.slot[chunk].astype(np.int64)])
    members = np.concatenate([x_members, joins.member[chunk].astype(np.int64)])
    rejoin = np.zeros(rows.size, dtype=np.bool_)
    rejoin[:x_rows.size] = True
    _place(e, g, now, seen, rows, slots, members, rejoin)


def _place(e: Engine, g: Group, now: float, seen: tuple[np.ndarray, np.ndarray],
           rows: np.ndarray, slots: np.ndarray, members: np.ndarray,
           rejoin: np.ndarray) -> None:
    """Admit and place every join of the tick (group-local ``rows``) in one core call."""
    grows = g.rows.start + rows
    view = e.view(g, now, seen)
    room = e.members[grows, slots].astype(np.int64)
    recent_joins = (e.room_rate(grows, slots, now) if g.config.join_rate_per_min
                    else np.zeros_like(room))
    seq = JoinSequence(rows=rows, room_members=room, room_recent_joins=recent_joins,
                       prev=JoinSequence.link(rows * e.schedule.slots + slots),
                       region=np.full(rows.size, -1, dtype=np.int64),
                       tiers=np.full(rows.size, STANDARD, dtype=np.int64))
    out = place_sequence(view, seq, g.policy, g.config, e.costs.table, g.rng)
    bridge, reason = out.bridge, out.reason
    np.add.at(e.metrics.reasons, (grows, reason), 1)
    np.add.at(e.metrics.joins, grows[~rejoin], 1)  # re-joins are counted when queued
    placed = bridge >= 0
    np.add.at(e.metrics.rejected, grows[~placed], 1)
    if not placed.any():
        return
    pr, gr, ps, pm, pb = rows[placed], grows[placed], slots[placed], members[placed], \
        bridge[placed]
    g.ledger.add(pr, pb, out.cost[placed], now)
    pr_reason = reason[placed]
    fresh = pr_reason == NEW_ROOM  # a room's first join comes before any split of it
    e.split[gr[fresh], ps[fresh]] = False
    split = IS_SPLIT[pr_reason]
    if split.any():
        key = np.unique(gr[split] * e.schedule.slots + ps[split])
        k_rows, k_slots = key // e.schedule.slots, key % e.schedule.slots
        first = ~e.split[k_rows, k_slots]
        e.split[k_rows, k_slots] = True
        np.add.at(e.metrics.splits, k_rows[first], 1)
    key = np.unique(gr * e.schedule.slots + ps)

    def change() -> None:
        np.add.at(e.members, (gr, ps, pb), 1)
    e.room_delta(key // e.schedule.slots, key % e.schedule.slots, change)
    np.add.at(e.count, (gr, pb), 1)
    e.where[gr, ps, pm] = pb
    if g.config.join_rate_per_min:
        e.note_rate(gr, ps, pb, now)
