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

from . import kernels

if TYPE_CHECKING:
    from .engine import Engine, Group

STANDARD = TIER_INDEX[Tier.STANDARD]
NEW_ROOM = REASON_INDEX[Reason.NEW_ROOM]
IS_SPLIT = np.zeros(len(REASON_INDEX), dtype=np.bool_)
IS_SPLIT[[REASON_INDEX[r] for r in (Reason.SPLIT_OVERLOAD, Reason.SPLIT_CAP,
                                    Reason.SPLIT_JOIN_RATE)]] = True


_NO_RATE = np.zeros((1, 1, 1), dtype=np.int16)  # stands for the rate arrays when uncapped


def place_tick(e: Engine, g: Group, g_index: int, now: float,
               seen: tuple[np.ndarray, np.ndarray], chunk: slice) -> None:
    """Admit and place the group's re-joins and the joins ``chunk`` in one core call."""
    joins = e.schedule.joins
    x_rows, x_slots, x_sessions, x_members = g.extra
    count = x_rows.size + chunk.stop - chunk.start
    if count == 0:
        return
    empty = np.zeros(0, dtype=np.int64)
    g.extra = (empty, empty, empty, empty)
    bridges = e.fleet.width
    rows, slots, sessions, members = (np.empty(count, np.int64) for _ in range(4))
    rejoin = np.empty(count, np.bool_)
    room, recent_joins = np.empty((count, bridges), np.int64), np.empty((count, bridges),
                                                                       np.int64)
    prev = np.empty(count, np.int64)
    use_rate = bool(g.config.join_rate_per_min)
    cur, old = e.rates(now) if use_rate else (_NO_RATE, _NO_RATE)
    kernels.gather_joins(x_rows, x_slots, x_sessions, x_members, joins.seed, joins.slot,
                         joins.session, joins.member, chunk.start, g.rows.start, e.members, cur,
                         old, use_rate, e.head, np.empty(count, np.int64), rows, slots,
                         sessions, members, rejoin, room, recent_joins, prev)
    seq = JoinSequence(rows=rows, room_members=room, room_recent_joins=recent_joins, prev=prev,
                       region=np.full(count, -1, dtype=np.int64),
                       tiers=np.full(count, STANDARD, dtype=np.int64))
    # The view's ledger arrays are charged in place (no copy): its pending total is the
    # group ledger's own, which ``add(precharged=True)`` then records as charged; its recent
    # counts are made for this view alone.
    out = place_sequence(e.view(g, now, seen), seq, g.policy, g.config, e.costs.table, g.rng,
                         in_place=True)
    m = e.metrics
    kernels.apply_joins(g.rows.start, rows, slots, sessions, members, rejoin, out.bridge,
                        out.reason, NEW_ROOM, IS_SPLIT, e.members, e.where, e.tag, e.count,
                        e.true_load, e.split,
                        e.costs.params, e.head, m.reasons, m.joins, m.rejected, m.splits,
                        use_rate, cur)
    g.ledger.add(rows, out.bridge, out.cost, now,  # the ledger skips refused joins (-1)
                 precharged=True)
