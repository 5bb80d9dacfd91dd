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

The rules are compiled once (``_place.place_kernel``) and run for both callers: the live
balancer (one join: ``decide_join`` calls ``_place.place_one``, the kernel on a one-join
sequence, built-in policies only) and the simulator, which passes every join of a tick in one call
(``place_sequence``; joins of the same room see each other, and each placement's forecast cost
is charged before the next join). ``place_joins`` is one join per replica row.

A registered policy without a compiled kernel (``kind = EXTERNAL``) runs through the same
kernel: ``place_sequence`` takes the joins in rounds (round k = the k-th join of every row, so
at most one join per row), lets the kernel apply admission and the room rules, asks the
policy's ``choose`` for the rows that need a bridge, then lets the kernel place and charge
them. Rows never interact, so this gives the decisions of one-join-at-a-time processing.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from . import _place
from ._jit import uniforms
from .admission import tier_reserves
from .config import RoutingConfig
from .load import GROWTH_TABLE, CostTable, FloatArray, IntArray
from .policies.base import NO_BRIDGE, BoolArray, FleetView, PlacementRequest, Policy, f64, i64
from .policies.kernels import EXTERNAL, GIVEN


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


@dataclass(frozen=True)
class JoinSequence:
    """Joins placed in order; several may belong to one row and one room."""

    rows: IntArray  # (J,) replica row of each join
    room_members: IntArray  # (J, B) members of the join's room per bridge, at the call's start
    room_recent_joins: IntArray  # (J, B) joins of that room per bridge in the last minute
    prev: IntArray  # (J,) earlier join of the same room (and row) in this call, or -1
    region: IntArray  # (J,) participant region code, -1 unknown
    tiers: IntArray  # (J,) admission tier (index into model.TIER_ORDER)

    @staticmethod
    def link(keys: IntArray) -> IntArray:
        """``prev`` from one room key per join: the latest earlier join with the same key."""
        keys = np.asarray(keys, dtype=np.int64)
        order = np.argsort(keys, kind="stable")
        prev = np.full(keys.size, -1, dtype=np.int64)
        same = keys[order[1:]] == keys[order[:-1]]
        prev[order[1:][same]] = order[:-1][same]
        return prev


@dataclass(frozen=True)
class SequenceOutcome:
    bridge: IntArray  # (J,) chosen bridge or -1
    reason: IntArray  # (J,) index into model.REASON_CODES (``capacity`` when not admitted)
    cost: FloatArray  # (J, 3) forecast load charged to the chosen bridge
    utilization: FloatArray  # (J,) fleet utilization admission saw (NaN: not evaluated)
    stress: FloatArray  # (J,) expected stress of the chosen bridge before the join (NaN: none)
    split: BoolArray  # (J,) the join split its room (relay links to its other bridges)
    pending: FloatArray  # (R, B, 3) the view's ledger plus every charge of this call
    recent: FloatArray  # (R, B) the view's recent placements plus this call's


def kernel_config(policy: Policy, config: RoutingConfig, costs: CostTable) -> FloatArray:
    """The kernel's ``cfg`` array (layout: ``_place.C_*``)."""
    return np.array([config.max_per_bridge, config.join_rate_per_min, float(policy.splits),
                     costs.last_n, costs.cpu_per_stream_out, costs.cpu_per_stream_in,
                     costs.mbps_per_stream], dtype=np.float64)


def _ledger_arrays(view: FleetView, charge: bool, in_place: bool
                   ) -> tuple[FloatArray, FloatArray]:
    """The (pending, recent) arrays a call charges: copies of the view's, or with
    ``in_place`` the view's own, which must then already be C-contiguous float64 (a converted
    copy would take the charges the caller expects in its arrays)."""
    pending, recent = f64(view.pending), f64(view.recent_placements)
    if in_place:
        if pending is not view.pending or recent is not view.recent_placements:
            raise ValueError("place_sequence(in_place=True): the view's pending and "
                             "recent_placements must be C-contiguous float64 arrays")
    elif charge:
        pending, recent = pending.copy(), recent.copy()
    return pending, recent


def _run(view: FleetView, joins: JoinSequence, policy: Policy, config: RoutingConfig,
         costs: CostTable, u: FloatArray, reserve: FloatArray, active: BoolArray,
         charge: bool, kind: int, given: IntArray,
         ledger: tuple[FloatArray, FloatArray] | None = None,
         in_place: bool = False) -> SequenceOutcome:
    """One kernel call. ``ledger`` = (pending, recent) arrays to read (and, with ``charge``,
    charge in place) instead of the view's, which are then copied before any charge unless
    ``in_place`` (``_ledger_arrays``)."""
    count = joins.rows.size
    pending, recent = _ledger_arrays(view, charge, in_place) if ledger is None else ledger
    out = SequenceOutcome(
        bridge=np.empty(count, np.int64), reason=np.empty(count, np.int64),
        cost=np.empty((count, 3)), utilization=np.empty(count), stress=np.empty(count),
        split=np.empty(count, np.bool_), pending=pending, recent=recent)
    _place.place_kernel(
        kind, policy.kernel_params(), policy.kernel_state(view.replicas), u, f64(view.load),
        pending, recent, f64(view.capacity), view.thresholds.as_array(),
        f64(view.report_age), float(view.report_interval_s),
        np.ascontiguousarray(view.available, np.bool_),
        np.ascontiguousarray(view.open_for_new, np.bool_), i64(view.region), i64(joins.rows),
        i64(joins.room_members), i64(joins.room_recent_joins), i64(joins.prev),
        i64(joins.region), reserve, active, given, kernel_config(policy, config, costs),
        GROWTH_TABLE, charge, out.bridge, out.reason, out.cost, out.utilization, out.stress,
        out.split)
    return out


def place_sequence(
    view: FleetView,
    joins: JoinSequence,
    policy: Policy,
    config: RoutingConfig,
    costs: CostTable,
    rng: np.random.Generator,
    *,
    charge: bool = True,
    via_choose: bool = False,
    in_place: bool = False,
) -> SequenceOutcome:
    """Admit (tier reserves) and place ``joins`` in order. With ``charge``, each placement's
    cost counts in the view's ledger (and recent placements) for the joins after it; the view's
    own arrays are not modified, unless ``in_place``: then they are charged themselves (no
    copy; they are the outcome's ``pending`` and ``recent``), for a caller that owns them, such
    as the simulator handing over a ``PendingLedger.pending()`` it then records with
    ``add(..., precharged=True)``.

    A policy without a kernel (``kind = EXTERNAL``) is asked through its ``choose``, once per
    round of at most one join per row, with the ledger charged between rounds
    (``place_sequence_by_choose``); ``via_choose`` takes that path for a built-in policy too
    (same rules, same decisions up to how ``rng`` is consumed)."""
    count = joins.rows.size
    reserve = tier_reserves(config)[i64(joins.tiers)]
    active = np.ones(count, dtype=np.bool_)
    if policy.kind == EXTERNAL or via_choose:
        return _by_choose(view, joins, policy, config, costs, rng, reserve, charge, in_place)
    u = uniforms(rng, count, policy.draws())
    return _run(view, joins, policy, config, costs, u, reserve, active, charge, policy.kind,
                np.zeros(0, np.int64), in_place=in_place)


def place_joins(
    view: FleetView,
    batch: JoinBatch,
    policy: Policy,
    config: RoutingConfig,
    costs: CostTable,
    rng: np.random.Generator,
) -> JoinOutcome:
    """One join per replica row (no admission, no ledger charge between rows)."""
    replicas = batch.room_members.shape[0]
    joins = JoinSequence(rows=np.arange(replicas), room_members=batch.room_members,
                         room_recent_joins=batch.room_recent_joins,
                         prev=np.full(replicas, -1, np.int64), region=batch.region,
                         tiers=np.zeros(replicas, np.int64))
    reserve = np.zeros(replicas)
    active = np.ascontiguousarray(batch.active, dtype=np.bool_)
    u = uniforms(rng, replicas, policy.draws())
    given = np.zeros(0, np.int64)
    out = _run(view, joins, policy, config, costs, u, reserve, active, False,
               policy.kind, given)
    if policy.kind == EXTERNAL:  # ask the policy for the rows that need it, then finish
        needs = out.reason == _place.NEEDS_POLICY
        members = i64(batch.room_members)
        request = PlacementRequest(
            eligible=view.open_for_new & (members == 0) & needs[:, None], cost=_fresh(
                members, costs), region=i64(batch.region), room_members=members,
            new_room=members.sum(axis=1) == 0, costs=costs)
        given = np.full(replicas, NO_BRIDGE, np.int64)
        asking = np.flatnonzero(needs)
        given[asking] = checked_choice(policy, policy.choose(view, request, rng),
                                       request.eligible, asking)
        out = _run(view, joins, policy, config, costs, u, reserve, active, False, GIVEN,
                   i64(given))
    relay_to = np.zeros(batch.room_members.shape, dtype=np.bool_)
    if out.split.any():
        relay_to = ((batch.room_members > 0) & view.available & active[:, None]
                    & out.split[:, None])
    return JoinOutcome(bridge=out.bridge, reason=out.reason, relay_to=relay_to, cost=out.cost)


def _fresh(members: IntArray, costs: CostTable) -> FloatArray:
    from .load import join_cost
    total = members.sum(axis=1)[:, None]
    result: FloatArray = join_cost(members, total, (members > 0).sum(axis=1)[:, None], costs)
    return result


def _rank_in_row(rows: IntArray) -> IntArray:
    """Position of each join among the joins of its row (0 = the row's first)."""
    order = np.argsort(rows, kind="stable")
    ordered = rows[order]
    rank = np.empty(rows.size, dtype=np.int64)
    rank[order] = np.arange(rows.size) - np.searchsorted(ordered, ordered, side="left")
    return rank


def _by_choose(view: FleetView, joins: JoinSequence, policy: Policy, config: RoutingConfig,
               costs: CostTable, rng: np.random.Generator, reserve: FloatArray,
               charge: bool, in_place: bool = False) -> SequenceOutcome:
    """``place_sequence`` through ``policy.choose``.

    Round k holds the k-th join of every row (at most one join per row). For each round the
    kernel first applies admission and the room rules with the ledger as charged so far and
    marks the joins that need the policy (a new room, or a split); ``choose`` answers for
    those rows on a view carrying that ledger; the kernel then places every join of the round,
    the policy's answers given, and charges them. Joins of the same room see the placements of
    their ``prev`` (always an earlier round: ``prev`` is in the same row). Uniforms for the
    kernel's own tie-breaks (sticky, fallback) are drawn up front, one set per join.
    """
    count, replicas, bridges = joins.rows.size, view.replicas, view.bridges
    rows = i64(joins.rows)
    prev = i64(joins.prev)
    linked = prev >= 0
    if np.any(prev >= np.arange(count)) or np.any(rows[prev[linked]] != rows[linked]):
        raise ValueError("place_sequence: prev must point to an earlier join of the same row")
    pending, recent = _ledger_arrays(view, charge, in_place)
    out = SequenceOutcome(
        bridge=np.full(count, NO_BRIDGE, np.int64), reason=np.empty(count, np.int64),
        cost=np.zeros((count, 3)), utilization=np.empty(count), stress=np.empty(count),
        split=np.zeros(count, np.bool_), pending=pending, recent=recent)
    if count == 0:
        return out
    seen = i64(joins.room_members).copy()  # room state each join sees, filled round by round
    seen_rate = i64(joins.room_recent_joins).copy()
    region, tiers = i64(joins.region), i64(joins.tiers)
    u = uniforms(rng, count, 0)
    rank = _rank_in_row(rows)
    order = np.argsort(rank, kind="stable")
    bounds = np.searchsorted(rank[order], np.arange(int(rank.max()) + 2), side="left")
    open_new = np.asarray(view.open_for_new, dtype=np.bool_)
    none = np.full(count, NO_BRIDGE, np.int64)
    for k in range(bounds.size - 1):
        sel = order[bounds[k]:bounds[k + 1]]
        after = sel[prev[sel] >= 0]
        if after.size:
            before = prev[after]
            seen[after], seen_rate[after] = seen[before], seen_rate[before]
            placed = out.bridge[before] >= 0
            seen[after[placed], out.bridge[before[placed]]] += 1
            seen_rate[after[placed], out.bridge[before[placed]]] += 1
        sub = JoinSequence(rows=rows[sel], room_members=seen[sel],
                           room_recent_joins=seen_rate[sel], prev=none[:sel.size],
                           region=region[sel], tiers=tiers[sel])
        sub_u, sub_reserve = u[sel], reserve[sel]
        active = np.ones(sel.size, dtype=np.bool_)
        first = _run(view, sub, policy, config, costs, sub_u, sub_reserve, active, False,
                     EXTERNAL, none[:0], ledger=(pending, recent))
        needs = first.reason == _place.NEEDS_POLICY
        given = none[:sel.size].copy()
        if needs.any():
            asking, members = sub.rows[needs], sub.room_members[needs]
            room = np.zeros((replicas, bridges), np.int64)
            room[asking] = members
            eligible = np.zeros((replicas, bridges), np.bool_)
            eligible[asking] = open_new[asking] & (members == 0)
            cost = np.zeros((replicas, bridges, 3))
            cost[asking] = _fresh(members, costs)
            wanted = np.full(replicas, -1, np.int64)
            wanted[asking] = sub.region[needs]
            request = PlacementRequest(eligible=eligible, cost=cost, region=wanted,
                                       room_members=room, new_room=room.sum(axis=1) == 0,
                                       costs=costs)
            current = replace(view, pending=pending, recent_placements=recent)
            given[needs] = checked_choice(policy, policy.choose(current, request, rng),
                                          eligible, asking)
        final = _run(view, sub, policy, config, costs, sub_u, sub_reserve, active, charge,
                     GIVEN, given, ledger=(pending, recent))
        for name in ("bridge", "reason", "cost", "utilization", "stress", "split"):
            getattr(out, name)[sel] = getattr(final, name)
    return out


def checked_choice(policy: Policy, choice: object, eligible: BoolArray,
                   rows: IntArray) -> IntArray:
    """``policy.choose``'s answers for ``rows``; a bridge outside ``eligible`` is a policy bug (and
    an index outside the fleet would corrupt the compiled kernel's memory)."""
    picks = np.asarray(choice)
    if picks.shape != (eligible.shape[0],) or not np.issubdtype(picks.dtype, np.integer):
        raise ValueError(f"policy {policy.name!r}: choose must return ({eligible.shape[0]},) "
                         f"integers, got {picks.dtype} {picks.shape}")
    picks = picks[rows].astype(np.int64)
    bad = (picks < NO_BRIDGE) | (picks >= eligible.shape[1])
    chosen = (picks >= 0) & ~bad
    bad[chosen] = ~eligible[rows[chosen], picks[chosen]]
    if bad.any():
        raise ValueError(f"policy {policy.name!r} chose bridge {int(picks[bad][0])}, which is "
                         f"not eligible there")
    return picks
