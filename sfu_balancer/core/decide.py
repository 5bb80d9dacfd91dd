"""Live decisions (R = 1): from bridges, reports and a room's placement to one Decision.

The service calls ``decide_join`` with everything it knows, and the decision log records the
same inputs, so ``sfu-sim replay`` can call it again and compare. Nothing here reads a clock or
mutates shared state: the caller charges the ledger with ``decision.detail["cost"]``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from ._jit import uniforms
from ._place import place_one
from .admission import TIER_INDEX, tier_reserves, within_quota
from .config import RoutingConfig
from .ledger import LedgerRows
from .load import GROWTH_TABLE, CostTable, FloatArray, join_cost
from .migration import warm_up_plans
from .model import REASON_CODES, BridgeInfo, BridgeState, Decision, JoinRequest, LoadReport, Reason
from .placement import JoinSequence, kernel_config, place_sequence
from .policies.base import FleetView, Policy, f64, i64
from .policies.kernels import EXTERNAL


@dataclass(frozen=True)
class FleetLayout:
    """What a fleet's columns are: its bridges in order, and the lookups derived from them.
    Shared by every snapshot of an unchanged bridge list (``FleetTable``), so a join does not
    rebuild them."""

    bridges: tuple[BridgeInfo, ...]

    @cached_property
    def ids(self) -> tuple[str, ...]:
        return tuple(b.id for b in self.bridges)

    @cached_property
    def index(self) -> dict[str, int]:
        return {b.id: i for i, b in enumerate(self.bridges)}

    @cached_property
    def regions(self) -> dict[str, int]:
        return region_codes(self.bridges)


@dataclass(frozen=True)
class FleetSnapshot:
    """The fleet as one balancer sees it at ``now``: bridges and their latest reports.
    ``layout``, when given, must describe ``bridges`` (``FleetTable`` guarantees it)."""

    bridges: tuple[BridgeInfo, ...]
    reports: Mapping[str, LoadReport]
    now: float
    report_interval_s: float = 1.0
    layout: FleetLayout | None = field(default=None, compare=False, repr=False)

    @cached_property
    def _layout(self) -> FleetLayout:
        return self.layout if self.layout is not None else FleetLayout(self.bridges)

    @property
    def ids(self) -> tuple[str, ...]:
        return self._layout.ids

    def index(self) -> dict[str, int]:
        return self._layout.index

    def region_codes(self) -> dict[str, int]:
        return self._layout.regions


def region_codes(bridges: Sequence[BridgeInfo]) -> dict[str, int]:
    return {name: i for i, name in enumerate(sorted({b.region for b in bridges}))}


def build_view(
    snapshot: FleetSnapshot, ledger: LedgerRows | None, config: RoutingConfig
) -> FleetView:
    """A one-row FleetView. A bridge without any report yet is not available."""
    count = len(snapshot.bridges)
    # one pass in Python to lists, then one array each: per-element numpy writes cost ~1 µs
    # each, and the service builds a view for every join
    reports = [snapshot.reports.get(b.id) for b in snapshot.bridges]
    load = np.array([r.load_vector() if r is not None else (0.0, 0.0, 0.0) for r in reports],
                    dtype=np.float64).reshape(1, count, 3)
    now = snapshot.now
    age = np.array([max(now - r.measured_at, 0.0) if r is not None else np.inf
                    for r in reports], dtype=np.float64).reshape(1, count)
    states = [b.state for b in snapshot.bridges]
    reported = np.isfinite(age)
    available = reported & np.array([[s is not BridgeState.FAILED for s in states]], bool)
    open_for_new = available & np.array([[s is BridgeState.SERVING for s in states]], bool)
    regions = snapshot.region_codes()
    if ledger is not None and ledger.bridges == count:
        pending, recent = ledger.pending(), ledger.recent_counts(snapshot.now)
    else:
        pending, recent = np.zeros_like(load), np.zeros((1, count))
    return FleetView(
        load=load,
        pending=pending,
        capacity=np.array([b.capacity.as_tuple() for b in snapshot.bridges]).reshape(count, 3),
        report_age=age,
        available=available,
        open_for_new=open_for_new,
        region=np.array([regions[b.region] for b in snapshot.bridges], dtype=np.int64),
        recent_placements=recent,
        thresholds=config.thresholds,
        report_interval_s=snapshot.report_interval_s,
    )


def decide_join(
    view: FleetView,
    snapshot: FleetSnapshot,
    request: JoinRequest,
    room_members: Mapping[str, int],
    recent_joins: Mapping[str, int],
    tenant_participants: int,
    policy: Policy,
    config: RoutingConfig,
    costs: CostTable,
    rng: np.random.Generator,
) -> Decision:
    """Admit and place one participant. ``room_members``/``recent_joins`` are per bridge id."""
    ids = snapshot.ids

    def refuse(reason: Reason, **detail: object) -> Decision:
        return Decision(request.room, request.participant, None, reason, detail=dict(detail))

    if not within_quota(request.tenant, tenant_participants, config):
        return refuse(Reason.QUOTA, tenant=request.tenant, participants=tenant_participants)
    tier = config.tier_for_room(request.room, request.tier)
    index = snapshot.index()
    count = len(ids)
    members = np.zeros((1, count), dtype=np.int64)
    for bridge_id, n in room_members.items():
        if bridge_id in index:
            members[0, index[bridge_id]] = n
    recent = np.zeros((1, count), dtype=np.int64)
    for bridge_id, n in recent_joins.items():
        if bridge_id in index:
            recent[0, index[bridge_id]] = n
    region = snapshot.region_codes().get(request.region or "", -1)
    tier_index = TIER_INDEX[tier]
    if policy.kind == EXTERNAL:
        joins = JoinSequence(rows=_ZERO, room_members=members, room_recent_joins=recent,
                             prev=_NONE, region=np.array([region], dtype=np.int64),
                             tiers=np.array([tier_index], dtype=np.int64))
        outcome = place_sequence(view, joins, policy, config, costs, rng, charge=False)
        result = (int(outcome.bridge[0]), int(outcome.reason[0]), *outcome.cost[0].tolist(),
                  float(outcome.utilization[0]), float(outcome.stress[0]),
                  bool(outcome.split[0]))
    else:  # the same kernel as place_sequence, on the same uniforms, without its batch shaping
        cfg, reserves = _live_inputs(policy, config, costs)
        result = place_one(
            policy.kind, policy.kernel_params(), policy.kernel_state(1),
            uniforms(rng, 1, policy.draws()), f64(view.load), f64(view.pending),
            f64(view.recent_placements), f64(view.capacity), f64(view.limit),
            f64(view.inverse_limit), f64(view.report_age), float(view.report_interval_s),
            np.ascontiguousarray(view.available, np.bool_),
            np.ascontiguousarray(view.open_for_new, np.bool_), i64(view.region), members,
            recent, region, reserves[tier_index], cfg, GROWTH_TABLE)
    chosen, reason_index, cost_cpu, cost_out, cost_in, used, stress, split = result
    utilization = round(float(used), 4)
    reason = REASON_CODES[int(reason_index)]
    if reason is Reason.CAPACITY:
        return refuse(Reason.CAPACITY, tier=tier.value, utilization=utilization)
    if chosen < 0:
        return refuse(reason, tier=tier.value, utilization=utilization)
    relay_to: tuple[str, ...] = ()
    if split:
        hosting = (members[0] > 0) & view.available[0]
        relay_to = tuple(ids[i] for i in np.flatnonzero(hosting))
    return Decision(
        request.room,
        request.participant,
        ids[chosen],
        reason,
        relay_to=relay_to,
        detail={
            "tier": tier.value,
            "cost": [float(cost_cpu), float(cost_out), float(cost_in)],
            "stress": round(float(stress), 4),
            "utilization": utilization,
        },
    )


def decide_move(
    request: JoinRequest,
    room_members: Mapping[str, int],
    source: str,
    destination: str,
    reason: Reason,
    linked: Sequence[str],
    costs: CostTable,
) -> Decision:
    """Carry out a move that ``plan_rebalance`` or ``plan_drain`` made: the participant
    rejoins on ``destination`` and is charged there like a join, so a mass move cannot herd.

    ``room_members`` excludes the mover; ``linked`` lists the bridges reachable now, in fleet
    order. The whole portion on ``source`` moves, so the destination relays to the room's
    other linked bridges and never back to the source.
    """
    hosting = {b for b, n in room_members.items() if n > 0 and b != source}
    others = tuple(b for b in linked if b in hosting and b != destination)
    total = sum(room_members.values())
    cost = join_cost(np.array(room_members.get(destination, 0)), np.array(total),
                     np.array(len(hosting | {destination})), costs)
    return Decision(request.room, request.participant, destination, reason, relay_to=others,
                    detail={"cost": [float(x) for x in cost], "source": source})


def warm_up(policy: Policy, config: RoutingConfig, costs: CostTable) -> Decision:
    """One throwaway decision on a made-up two-bridge fleet, so that the compiled routing
    rules are compiled (or loaded from the on-disk cache) before a caller serves anyone: a
    cold compile takes tens of seconds, and inside a live event loop it would stall every
    link and lease. ``policy`` is a fresh instance: its state is not kept."""
    bridges = tuple(BridgeInfo(f"warm-up-{i}", "warm-up") for i in range(2))
    reports = {b.id: LoadReport(b.id, 0.0, cpu=0.1 * i) for i, b in enumerate(bridges)}
    snapshot = FleetSnapshot(bridges, reports, 1.0)
    request = JoinRequest("warm-up", "warm-up")
    warm_up_plans(policy, config, costs)  # the migration plans are compiled too
    return decide_join(build_view(snapshot, None, config), snapshot, request, {"warm-up-0": 1},
                       {}, 0, policy, config, costs, np.random.default_rng(0))


def _live_inputs(policy: Policy, config: RoutingConfig,
                 costs: CostTable) -> tuple[FloatArray, FloatArray]:
    """The kernel's per-configuration arrays (``cfg``, tier reserves), built once per (policy
    class, config, costs): all three are frozen, and building the arrays per join cost more
    than the decision's own arithmetic on a small fleet. Config and costs are keyed by
    identity (they hold dicts and arrays), and kept alive by the cache so that an id is never
    reused while its entry exists."""
    key = (type(policy), id(config), id(costs))
    found = _LIVE_INPUTS.get(key)
    if found is None or found[0] is not config or found[1] is not costs:
        if len(_LIVE_INPUTS) >= 64:
            _LIVE_INPUTS.clear()
        found = (config, costs, (kernel_config(policy, config, costs), tier_reserves(config)))
        _LIVE_INPUTS[key] = found
    return found[2]


_LIVE_INPUTS: dict[tuple[type, int, int],
                   tuple[RoutingConfig, CostTable, tuple[FloatArray, FloatArray]]] = {}
_ZERO = np.zeros(1, dtype=np.int64)
_NONE = np.full(1, -1, dtype=np.int64)
