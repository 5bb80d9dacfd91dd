"""The joins of one tick for one policy group: core admission + core placement, in one call.

Rules:
- Every join of the tick, in every replica row of the group, goes to core's placement kernel
  (``_place.place_limited``, the kernel behind ``place_sequence``) at once, in order within
  each row; re-joins of participants whose bridge failed go first.
- Every join sees the same reports (those of this tick) plus the ledger charges of all earlier
  joins of the tick (core charges them between joins) and the earlier joins of its own room;
  the placements are then recorded in the group's core ledger (``ledger.add``).
- Refused joins (admission ``capacity`` or ``no_bridge``) leave the participant unconnected;
  their later leave is then a no-op.
- The kernel's inputs are those ``place_sequence`` gives it for a built-in policy (the
  policy's parameters and state, core's ``kernel_config``, the tier reserve, the limits and the
  uniforms drawn from the group's generator, ``U_SAMPLE + draws()`` per join in join order),
  built once per group (``KernelInputs``) instead of once per tick; gather, placement and apply
  run as one compiled call (``join_tick``). A registered policy without a kernel goes through
  ``place_sequence`` itself (``place_tick_by_choose``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from sfu_balancer.core import JoinSequence, place_sequence
from sfu_balancer.core._jit import U_SAMPLE, jit, limits
from sfu_balancer.core._place import place_limited
from sfu_balancer.core.admission import TIER_INDEX, tier_reserves
from sfu_balancer.core.load import GROWTH_TABLE, CostTable
from sfu_balancer.core.model import REASON_INDEX, Reason, Tier
from sfu_balancer.core.placement import kernel_config
from sfu_balancer.core.policies import Policy
from sfu_balancer.core.policies.kernels import EXTERNAL

from . import kernels

if TYPE_CHECKING:
    from sfu_balancer.core import RoutingConfig

    from .engine import Engine, Group

STANDARD = TIER_INDEX[Tier.STANDARD]
NEW_ROOM = REASON_INDEX[Reason.NEW_ROOM]
IS_SPLIT = np.zeros(len(REASON_INDEX), dtype=np.bool_)
IS_SPLIT[[REASON_INDEX[r] for r in (Reason.SPLIT_OVERLOAD, Reason.SPLIT_CAP,
                                    Reason.SPLIT_JOIN_RATE)]] = True


_NO_RATE = np.zeros((1, 1, 1), dtype=np.int16)  # stands for the rate arrays when uncapped


@dataclass(frozen=True)
class KernelInputs:
    """What core's placement kernel reads of a group besides the tick's joins and view."""

    kind: int
    params: np.ndarray
    state: np.ndarray  # the policy's per-row state (round_robin's cursor), updated in place
    cfg: np.ndarray
    limit: np.ndarray
    inverse: np.ndarray
    reserve: float  # the standard tier's (every simulated join is standard)
    draws: int  # uniforms per join

    @classmethod
    def build(cls, policy: Policy, config: RoutingConfig, costs: CostTable, rows: int,
              capacity: np.ndarray) -> KernelInputs:
        limit, inverse = limits(np.ascontiguousarray(capacity, np.float64),
                                config.thresholds.as_array())
        return cls(policy.kind, policy.kernel_params(), policy.kernel_state(rows),
                   kernel_config(policy, config, costs), limit, inverse,
                   float(tier_reserves(config)[STANDARD]), U_SAMPLE + policy.draws())


@jit
def join_tick(x_rows: Any, x_slots: Any, x_sessions: Any, x_members: Any, seed: Any,
              slot: Any, session: Any, member: Any, lo: int, hi: int, row0: int,
              members: Any, rate_cur: Any, rate_prev: Any, use_rate: bool, head: Any,
              rng_cell: Any, draws: int, limit: Any, inv: Any, kind: int, p: Any, cursor: Any,
              load: Any, pend: Any, recent: Any, cap: Any, age: Any, interval: float,
              avail: Any, open_new: Any, region: Any, reserve: float, cfg: Any, table: Any,
              where: Any, tag: Any, count: Any, true_load: Any, split: Any, cp: Any,
              reasons_m: Any, joins_m: Any, rejected_m: Any,
              splits_m: Any) -> tuple[Any, Any, Any]:
    """Gather (``kernels.gather_joins``), place with core's kernel, charging ``pend`` and
    ``recent`` in place, and apply (``kernels.apply_joins``) the re-joins and joins
    ``lo:hi``; returns (rows, bridges, costs) for the group ledger's ``add``."""
    n = x_rows.shape[0] + hi - lo
    bridges = members.shape[2]
    rows, slots, sess, mems = (np.empty(n, np.int64), np.empty(n, np.int64),
                               np.empty(n, np.int64), np.empty(n, np.int64))
    rejoin = np.empty(n, np.bool_)
    room, rates = np.empty((n, bridges), np.int64), np.empty((n, bridges), np.int64)
    prev = np.empty(n, np.int64)
    kernels.gather_joins(x_rows, x_slots, x_sessions, x_members, seed, slot, session, member,
                         lo, row0, members, rate_cur, rate_prev, use_rate, head,
                         np.empty(n, np.int64), rows, slots, sess, mems, rejoin, room, rates,
                         prev, where, tag)
    # numpy's rng.random((n, draws)) of the group's generator: the same stream, row-major
    rng = rng_cell[0]
    u = np.empty((n, draws))
    for j in range(n):
        for k in range(draws):
            u[j, k] = rng.random()
    bridge, reason = np.empty(n, np.int64), np.empty(n, np.int64)
    cost = np.empty((n, 3))
    place_limited(limit, inv, kind, p, cursor, u, load, pend, recent, cap, age, interval,
                  avail, open_new, region, rows, room, rates, prev, np.full(n, -1),
                  np.full(n, reserve), np.ones(n, np.bool_), np.empty(0, np.int64), cfg,
                  table, True, bridge, reason, cost, np.empty(n), np.empty(n),
                  np.empty(n, np.bool_))
    kernels.apply_joins(row0, rows, slots, sess, mems, rejoin, bridge, reason, NEW_ROOM,
                        IS_SPLIT, members, where, tag, count, true_load, split, cp,
                        reasons_m, joins_m, rejected_m, splits_m, use_rate, rate_cur)
    return rows, bridge, cost


def _take_joins(e: Engine, g: Group, now: float, chunk: slice
                ) -> tuple[tuple[np.ndarray, ...], bool, np.ndarray, np.ndarray] | None:
    """The group's queued re-joins (the queue emptied), whether the join-rate cap applies,
    and its (this minute's, last minute's) counts; None when the tick has no join at all."""
    if g.extra[0].size + chunk.stop - chunk.start == 0:
        return None
    extra = g.extra
    empty = np.zeros(0, dtype=np.int64)
    g.extra = (empty, empty, empty, empty)
    use_rate = bool(g.config.join_rate_per_min)
    cur, old = e.rates(now) if use_rate else (_NO_RATE, _NO_RATE)
    return extra, use_rate, cur, old


def place_tick(e: Engine, g: Group, g_index: int, now: float,
               seen: tuple[np.ndarray, np.ndarray], chunk: slice) -> None:
    """Admit, place and apply the group's re-joins and the joins ``chunk``."""
    if g.kernel.kind == EXTERNAL:
        place_tick_by_choose(e, g, now, seen, chunk)
        return
    taken = _take_joins(e, g, now, chunk)
    if taken is None:
        return
    (x_rows, x_slots, x_sessions, x_members), use_rate, cur, old = taken
    joins = e.schedule.joins
    available, open_new, age = e._views(seen[1], now)
    k, m, rows = g.kernel, e.metrics, g.rows
    # The ledger's own pending total is charged in place (``add(precharged=True)`` then
    # records it as charged); the recent counts are made for this tick alone.
    placed, bridge, cost = join_tick(
        x_rows, x_slots, x_sessions, x_members, joins.seed, joins.slot, joins.session,
        joins.member, chunk.start, chunk.stop, rows.start, e.members, cur, old, use_rate,
        e.head, g.rng_cell, k.draws, k.limit, k.inverse, k.kind, k.params, k.state,
        seen[0][rows], g.ledger.pending(), g.ledger.recent_counts(now), e.fleet.capacity,
        age[rows], e.fleet.interval, available[rows], open_new[rows], e.fleet.region,
        k.reserve, k.cfg, GROWTH_TABLE, e.where, e.tag, e.count, e.true_load, e.split,
        e.costs.params, m.reasons, m.joins, m.rejected, m.splits)
    g.ledger.add(placed, bridge, cost, now, precharged=True)  # skips refused joins (-1)


def place_tick_by_choose(e: Engine, g: Group, now: float,
                         seen: tuple[np.ndarray, np.ndarray], chunk: slice) -> None:
    """``place_tick`` through core's ``place_sequence`` (a policy without a kernel)."""
    taken = _take_joins(e, g, now, chunk)
    if taken is None:
        return
    (x_rows, x_slots, x_sessions, x_members), use_rate, cur, old = taken
    joins = e.schedule.joins
    count = x_rows.size + chunk.stop - chunk.start
    bridges = e.fleet.width
    rows, slots, sessions, members = (np.empty(count, np.int64) for _ in range(4))
    rejoin = np.empty(count, np.bool_)
    room, recent_joins = (np.empty((count, bridges), np.int64),
                          np.empty((count, bridges), np.int64))
    prev = np.empty(count, np.int64)
    kernels.gather_joins(x_rows, x_slots, x_sessions, x_members, joins.seed, joins.slot,
                         joins.session, joins.member, chunk.start, g.rows.start, e.members, cur,
                         old, use_rate, e.head, np.empty(count, np.int64), rows, slots,
                         sessions, members, rejoin, room, recent_joins, prev, e.where, e.tag)
    seq = JoinSequence(rows=rows, room_members=room, room_recent_joins=recent_joins, prev=prev,
                       region=np.full(count, -1, dtype=np.int64),
                       tiers=np.full(count, STANDARD, dtype=np.int64))
    out = place_sequence(e.view(g, now, seen), seq, g.policy, g.config, e.costs.table, g.rng,
                         in_place=True)
    m = e.metrics
    kernels.apply_joins(g.rows.start, rows, slots, sessions, members, rejoin, out.bridge,
                        out.reason, NEW_ROOM, IS_SPLIT, e.members, e.where, e.tag, e.count,
                        e.true_load, e.split,
                        e.costs.params, m.reasons, m.joins, m.rejected, m.splits,
                        use_rate, cur)
    g.ledger.add(rows, out.bridge, out.cost, now, precharged=True)
