"""The joins of one tick for one policy group: core admission + core placement, step by step.

Rules:
- Step j places the j-th join of every replica row at once (one join per row per call, as
  core's ``place_joins`` expects); re-joins of participants whose bridge failed go first.
- Every step sees the same reports (those of this tick) plus the ledger charges of all
  earlier steps: each placement is charged to the core ledger at once (``ledger.add``), and the
  step's view carries the ledger's pending load, kept in step with those charges.
- Refused joins (admission ``capacity`` or ``no_bridge``) leave the participant unconnected;
  their later leave is then a no-op.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from sfu_balancer.core import JoinBatch, admit_tiers, place_joins
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


def _ranked(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Order of ``rows`` sorted stably, and each entry's rank within its row."""
    order = np.argsort(rows, kind="stable")
    sorted_rows = rows[order]
    rank = np.arange(rows.size) - np.searchsorted(sorted_rows, sorted_rows, side="left")
    return order, rank


def place_tick(e: Engine, g: Group, g_index: int, now: float,
               seen: tuple[np.ndarray, np.ndarray], chunk: slice) -> None:
    joins = e.schedule.joins
    x_rows, x_slots, x_members = g.extra
    if chunk.stop == chunk.start and x_rows.size == 0:
        return
    empty = np.zeros(0, dtype=np.int64)
    g.extra = (empty, empty, empty)
    pending = g.ledger.pending().copy()
    recent = g.ledger.recent_counts(now)
    if x_rows.size:
        order, rank = _ranked(x_rows)
        xr, xs, xm = x_rows[order], x_slots[order], x_members[order]
        for j in range(int(rank.max()) + 1):
            sel = rank == j
            _step(e, g, now, seen, pending, recent, xr[sel], xs[sel], xm[sel], rejoin=True)
    if chunk.stop > chunk.start:
        rank = joins.rank[chunk]
        seeds, slots, members = joins.seed[chunk], joins.slot[chunk], joins.member[chunk]
        for j in range(int(rank.max()) + 1):
            sel = rank == j
            _step(e, g, now, seen, pending, recent, seeds[sel].astype(np.int64),
                  slots[sel].astype(np.int64), members[sel].astype(np.int64), rejoin=False)


def _step(e: Engine, g: Group, now: float, seen: tuple[np.ndarray, np.ndarray],
          pending: np.ndarray, recent: np.ndarray, rows: np.ndarray, slots: np.ndarray,
          members: np.ndarray, rejoin: bool) -> None:
    """Place one join in each of ``rows`` (group-local, unique)."""
    seeds, width = e.seeds, e.fleet.width
    grows = g.rows.start + rows
    # Few joins in this step: run core on those rows only (same result, rows are independent),
    # unless the policy keeps per-row state (round_robin's cursor is shaped by all rows).
    subset = g.stateless and rows.size * 2 < seeds
    n = rows.size if subset else seeds
    local = np.arange(n) if subset else rows
    view = e.view(g, now, seen, pending, recent, take=rows if subset else None)
    room = np.zeros((n, width), dtype=np.int64)
    room[local] = e.members[grows, slots]
    active = np.zeros(n, dtype=np.bool_)
    active[local] = True
    admitted, _ = admit_tiers(view, np.full(n, STANDARD, dtype=np.int64), g.config)
    recent_joins = np.zeros((n, width), dtype=np.int64)
    if g.config.join_rate_per_min:
        recent_joins[local] = e.room_rate(grows, slots, now)
    batch = JoinBatch(room_members=room, room_recent_joins=recent_joins,
                      region=np.full(n, -1, dtype=np.int64), active=active & admitted)
    out = place_joins(view, batch, g.policy, g.config, e.costs.table, g.rng)
    out_bridge, out_reason, out_cost = out.bridge[local], out.reason[local], out.cost[local]
    admitted = admitted[local]
    bridge = out_bridge
    reason = np.where(admitted, out_reason, CAPACITY)
    np.add.at(e.metrics.reasons, (grows, reason), 1)
    if not rejoin:  # re-joins are counted when queued (moves.apply_failure)
        e.metrics.joins[grows] += 1
    placed = bridge >= 0
    e.metrics.rejected[grows[~placed]] += 1
    if not placed.any():
        return
    pr, gr, ps, pm, pb = rows[placed], grows[placed], slots[placed], members[placed], \
        bridge[placed]
    cost = out_cost[placed]
    g.ledger.add(pr, pb, cost, now)
    pending[pr, pb] += cost  # rows are unique within a step: plain fancy += is exact
    recent[pr, pb] += 1.0
    pr_reason = reason[placed]
    fresh = pr_reason == NEW_ROOM
    e.split[gr[fresh], ps[fresh]] = False
    split = IS_SPLIT[pr_reason] & ~e.split[gr, ps]
    e.split[gr[split], ps[split]] = True
    e.metrics.splits[gr[split]] += 1

    # Fast path: a room that stays on one bridge changes that bridge's load only, by a
    # difference of single-bridge room costs (costmodel.single_load, the same formula).
    before = room[local[placed]]
    on_one = (before > 0).sum(axis=1) - (before[np.arange(pr.size), pb] > 0) == 0
    if on_one.all():
        n = before[np.arange(pr.size), pb]
        table = e.costs.single_load
        e.true_load[gr, pb] += table[n + 1] - table[n]
        e.members[gr, ps, pb] += 1
    else:
        def change() -> None:
            e.members[gr, ps, pb] += 1
        e.room_delta(gr, ps, change)
    e.count[gr, pb] += 1
    e.where[gr, ps, pm] = pb
    if g.config.join_rate_per_min:
        e.note_rate(gr, ps, pb, now)
