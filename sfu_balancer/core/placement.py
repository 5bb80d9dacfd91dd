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
balancer (one join) and the simulator, which passes every join of a tick in one call
(``place_sequence``; joins of the same room see each other, and each placement's forecast cost
is charged before the next join). ``place_joins`` is one join per replica row.
"""

from __future__ import annotations

from dataclasses import dataclass

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


def _cfg(policy: Policy, config: RoutingConfig, costs: CostTable) -> FloatArray:
    return np.array([config.max_per_bridge, config.join_rate_per_min, float(policy.splits),
                     costs.last_n, costs.cpu_per_stream_out, costs.cpu_per_stream_in,
                     costs.mbps_per_stream], dtype=np.float64)


def _run(view: FleetView, joins: JoinSequence, policy: Policy, config: RoutingConfig,
         costs: CostTable, u: FloatArray, reserve: FloatArray, active: BoolArray,
         charge: bool, kind: int, given: IntArray) -> SequenceOutcome:
    count = joins.rows.size
    pending, recent = f64(view.pending), f64(view.recent_placements)
    if charge:
        pending, recent = pending.copy(), recent.copy()
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
        i64(joins.region), reserve, active, given, _cfg(policy, config, costs), GROWTH_TABLE,
        charge, out.bridge, out.reason, out.cost, out.utilization, out.stress, out.split)
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
) -> SequenceOutcome:
    """Admit (tier reserves) and place ``joins`` in order. With ``charge``, each placement's
    cost counts in the view's ledger (and recent placements) for the joins after it; the view's
    own arrays are never modified. A policy without a kernel is asked one join per row at a
    time (``place_joins``)."""
    count = joins.rows.size
    reserve = tier_reserves(config)[i64(joins.tiers)]
    active = np.ones(count, dtype=np.bool_)
    if policy.kind == EXTERNAL:
        return _external_sequence(view, joins, policy, config, costs, rng, reserve, charge)
    u = uniforms(rng, count, policy.draws())
    return _run(view, joins, policy, config, costs, u, reserve, active, charge, policy.kind,
                np.zeros(0, np.int64))


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
        given = np.where(needs, policy.choose(view, request, rng), NO_BRIDGE)
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


def _external_sequence(view: FleetView, joins: JoinSequence, policy: Policy,
                       config: RoutingConfig, costs: CostTable, rng: np.random.Generator,
                       reserve: FloatArray, charge: bool) -> SequenceOutcome:
    raise NotImplementedError("place_sequence needs a policy with a kernel")
