"""Failures and migrations applied to the engine's room state; the plans are core's.

Rules:
- A failed bridge loses every session at once; those participants are queued as re-joins of
  the same tick, and core's placement handles them (``replace_failed`` or sticky to the room's
  surviving bridges).
- Migrations come from core's ``plan_drain`` (draining bridges past their deadline) and
  ``plan_rebalance`` (hot bridges, every ``rebalance_every_s``), called per replica (R = 1).
  Jicofo's load redistributor is off by default, so policies that never split (the
  ``jicofo_single`` baseline) are not rebalanced; drains apply to everyone.
- A moved portion is charged to the target in the core ledger with core's room cost
  (``room_streams`` + ``CostTable``), as the live balancer charges a migration.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from sfu_balancer.core import RoomPortion, plan_drain, plan_rebalance
from sfu_balancer.core.load import room_streams
from sfu_balancer.core.policies import FleetView

from . import rooms
from .fleet import DRAINING
from .kernels import TAG

if TYPE_CHECKING:
    from .engine import Engine


def apply_failure(e: Engine, bridge: int) -> None:
    rooms.fail_bridge(e.members, e.head, bridge, e.costs.params, e.true_load)
    e.true_load[:, bridge] = 0.0
    e.count[:, bridge] = 0
    sr, sq = np.nonzero(e.where == bridge)
    e.where[sr, sq] = -1
    # re-joins in (row, room slot, member) order, as listed by a (row, slot, member) layout
    tags = e.tag[sr, sq].astype(np.int64)
    order = np.lexsort((tags, sr))
    sr, sq, tags = sr[order], sq[order], tags[order]
    ss, sm = tags // TAG, tags % TAG
    np.add.at(e.metrics.rejoins, sr, 1)
    for g in e.groups:
        mine = (sr >= g.rows.start) & (sr < g.rows.stop)
        old = g.extra
        g.extra = (np.concatenate([old[0], sr[mine] - g.rows.start]),
                   np.concatenate([old[1], ss[mine]]), np.concatenate([old[2], sq[mine]]),
                   np.concatenate([old[3], sm[mine]]))


def _row(view: FleetView, r: int) -> FleetView:
    one = slice(r, r + 1)
    return FleetView(load=view.load[one], pending=view.pending[one], capacity=view.capacity,
                     report_age=view.report_age[one], available=view.available[one],
                     open_for_new=view.open_for_new[one], region=view.region,
                     recent_placements=view.recent_placements[one],
                     thresholds=view.thresholds, report_interval_s=view.report_interval_s)


def _portions(members: np.ndarray, bridges: np.ndarray) -> list[RoomPortion]:
    """Room portions on ``bridges`` from one replica's (slots, B) member matrix."""
    out = []
    for b in bridges.tolist():
        for slot in np.flatnonzero(members[:, b]).tolist():
            out.append(RoomPortion(str(slot), b, int(members[slot, b]),
                                   tuple(np.flatnonzero(members[slot]).tolist())))
    return out


def migrate(e: Engine, now: float, seen: tuple[np.ndarray, np.ndarray], drain: bool) -> None:
    ids = [str(b) for b in range(e.fleet.width)]
    for g in e.groups:
        if not drain and not g.policy.splits:
            continue
        view = e.view(g, now, seen)
        if drain:
            due = ((e.fleet.state[g.rows] == DRAINING)
                   & (e.fleet.drain_deadline[g.rows] <= now) & (e.count[g.rows] > 0))
        else:
            cooled = now - g.last_rebalanced >= g.config.move_cooldown_s
            due = view.available & cooled & (view.expected_stress >= g.config.hot_stress)
        charged: list[tuple[int, int, int]] = []  # (row, target, members) of each move
        for r in np.flatnonzero(due.any(axis=1)).tolist():
            gr = g.rows.start + r
            portions = _portions(e.members[gr], np.flatnonzero(due[r]))
            one = _row(view, r)
            if drain:
                plan = plan_drain(one, ids, portions, e.fleet.drain_deadline[gr], now,
                                  g.policy, e.costs.table, g.rng)
            else:
                plan = plan_rebalance(one, ids, portions, g.last_rebalanced[r], now, g.policy,
                                      g.config, e.costs.table, g.rng)
                g.last_rebalanced[r, plan.rebalanced] = now
            for move in plan.moves:
                dst = int(move.to_bridge)
                n = _apply_move(e, gr, int(move.room), int(move.from_bridge), dst)
                charged.append((r, dst, n))
        if charged:
            # One ledger call per group, entries in move order: every plan of this pass read
            # the view taken before it, so charging at the end changes nothing it saw.
            rows, dsts, sizes = (np.array(c, dtype=np.int64) for c in zip(*charged, strict=True))
            egress, ingress = room_streams(sizes, e.costs.table.last_n)
            g.ledger.add(rows, dsts, e.costs.table.streams_to_load(egress, ingress), now)


def _apply_move(e: Engine, gr: int, slot: int, src: int, dst: int) -> int:
    """Move room ``slot``'s members on ``src`` to ``dst`` in engine row ``gr``; returns how
    many moved."""
    n = int(rooms.move_portion(e.members, e.head, gr, slot, src, dst, e.costs.params,
                               e.true_load))
    sessions = e.where[gr]  # a view: the row's sessions, those of room ``slot`` by tag
    sessions[(sessions == src) & (e.tag[gr] // TAG == slot)] = dst
    e.count[gr, src] -= n
    e.count[gr, dst] += n
    e.metrics.migrations[gr] += 1
    e.metrics.migrated[gr] += n
    return n
