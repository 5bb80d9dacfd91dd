"""Failures and migrations applied to the engine's room state; the plans are core's.

Rules:
- A failed bridge loses every session at once; those participants are queued as re-joins of
  the same tick, and core's placement handles them (``replace_failed`` or sticky to the room's
  surviving bridges).
- Migrations come from core's ``drain_moves`` (draining bridges past their deadline) and
  ``rebalance_moves`` (hot bridges, every ``rebalance_every_s``), the array forms of
  ``plan_drain`` and ``plan_rebalance``, called per replica row of the group's view; for a
  policy never asked from Python, every due row's rebalancing plan comes from one
  ``rebalance_moves_rows`` call (the same plans, the same draws, without a Python call per
  row).
  Jicofo's load redistributor is off by default, so policies that never split (the
  ``jicofo_single`` baseline) are not rebalanced; drains apply to everyone.
- A moved portion is charged to the target in the core ledger with core's room cost
  (``room_streams`` + ``CostTable``), as the live balancer charges a migration.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from sfu_balancer.core.load import room_streams
from sfu_balancer.core.migration import (
    RowPortions,
    asked_from_python,
    drain_moves,
    rebalance_due,
    rebalance_moves,
    rebalance_moves_rows,
)

from . import kernels, rooms
from .fleet import DRAINING
from .kernels import TAG

if TYPE_CHECKING:
    from sfu_balancer.core.policies import FleetView

    from .engine import Engine, Group


def apply_failure(e: Engine, bridge: int) -> None:
    rooms.fail_bridge(e.members, bridge, e.costs.params, e.true_load)
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


def migrate(e: Engine, now: float, seen: tuple[np.ndarray, np.ndarray], drain: bool) -> None:
    for g in e.groups:
        if not drain and not g.policy.splits:
            continue
        view = e.view(g, now, seen)
        if not drain and not asked_from_python(g.policy):
            rebalance_rows(e, g, view, now)
            continue
        if drain:
            due = ((e.fleet.state[g.rows] == DRAINING)
                   & (e.fleet.drain_deadline[g.rows] <= now) & (e.count[g.rows] > 0))
        else:
            due = rebalance_due(view, g.last_rebalanced, now, g.config)
        charged: list[tuple[np.ndarray, ...]] = []  # (rows, targets, sizes) of the moves
        for r in np.flatnonzero(due.any(axis=1)).tolist():
            gr = g.rows.start + r
            # the portions on the due bridges, as core's plans take them (row r of the view)
            slot, bridge, size, hosts = rooms.portions(e.members[gr], due[r])
            if drain:
                moved, targets = drain_moves(view, r, bridge, size, hosts,
                                             e.fleet.drain_deadline[gr], now, g.policy,
                                             e.costs.table, g.rng)
                placed = targets >= 0  # the others are stranded: they stay
                moved, targets = moved[placed], targets[placed]
            else:
                moved, targets, shed = rebalance_moves(view, r, bridge, size, hosts,
                                                       g.last_rebalanced[r], now, g.policy,
                                                       g.config, e.costs.table, g.rng)
                g.last_rebalanced[r, shed] = now
            if moved.size:
                sizes = kernels.move_rooms(gr, slot[moved], bridge[moved], targets, e.members,
                                           e.where, e.tag, e.count,
                                           e.metrics.migrations, e.metrics.migrated,
                                           e.costs.params, e.true_load)
                charged.append((np.full(moved.size, r), targets, sizes))
        charge_moves(e, g, charged, now)


def rebalance_rows(e: Engine, g: Group, view: FleetView, now: float) -> None:
    """``migrate``'s rebalancing for a policy never asked from Python: every due row's plan
    in one core call (``rebalance_moves_rows``), the same plans as row by row."""
    due = rebalance_due(view, g.last_rebalanced, now, g.config)
    rows = np.flatnonzero(due.any(axis=1))
    if rows.size == 0:
        return
    slot, bridge, size, hosts, starts = rooms.portions_rows(e.members, g.rows.start, rows, due)
    portion, target, moves, shed, shed_count = rebalance_moves_rows(
        view, RowPortions(rows, starts, bridge, size, hosts), g.last_rebalanced[rows], now,
        g.policy, g.config, e.costs.table, g.rng)
    charged: list[tuple[np.ndarray, ...]] = []
    for k, r in enumerate(rows.tolist()):
        g.last_rebalanced[r, shed[k, :shed_count[k]]] = now
        if moves[k] == 0:
            continue
        lo = starts[k]
        moved, targets = lo + portion[lo:lo + moves[k]], target[lo:lo + moves[k]]
        sizes = kernels.move_rooms(g.rows.start + r, slot[moved], bridge[moved], targets,
                                   e.members, e.where, e.tag, e.count, e.metrics.migrations,
                                   e.metrics.migrated, e.costs.params, e.true_load)
        charged.append((np.full(moves[k], r), targets, sizes))
    charge_moves(e, g, charged, now)


def charge_moves(e: Engine, g: Group, charged: list[tuple[np.ndarray, ...]],
                 now: float) -> None:
    """The moves of a pass, (rows, targets, sizes) per row, charged in one ledger call, in
    move order: every plan of the pass read the view taken before it, so charging at the
    end changes nothing it saw."""
    if charged:
        rows, dsts, sizes = (np.concatenate(c) for c in zip(*charged, strict=True))
        egress, ingress = room_streams(sizes, e.costs.table.last_n)
        g.ledger.add(rows, dsts, e.costs.table.streams_to_load(egress, ingress), now)
