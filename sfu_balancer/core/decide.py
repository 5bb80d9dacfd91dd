"""Live decisions (R = 1): from bridges, reports and a room's placement to one Decision.

The service calls ``decide_join`` with everything it knows, and the decision log records the
same inputs, so ``sfu-sim replay`` can call it again and compare. Nothing here reads a clock or
mutates shared state: the caller charges the ledger with ``decision.detail["cost"]``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from .admission import TIER_INDEX, admit_tiers, fleet_utilization, within_quota
from .config import RoutingConfig
from .ledger import PendingLedger
from .load import CostTable
from .model import REASON_CODES, BridgeInfo, BridgeState, Decision, JoinRequest, LoadReport, Reason
from .placement import JoinBatch, place_joins
from .policies.base import FleetView, Policy


@dataclass(frozen=True)
class FleetSnapshot:
    """The fleet as one balancer sees it at ``now``: bridges and their latest reports."""

    bridges: tuple[BridgeInfo, ...]
    reports: Mapping[str, LoadReport]
    now: float
    report_interval_s: float = 1.0

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(b.id for b in self.bridges)

    def index(self) -> dict[str, int]:
        return {b.id: i for i, b in enumerate(self.bridges)}


def region_codes(bridges: Sequence[BridgeInfo]) -> dict[str, int]:
    return {name: i for i, name in enumerate(sorted({b.region for b in bridges}))}


def build_view(
    snapshot: FleetSnapshot, ledger: PendingLedger | None, config: RoutingConfig
) -> FleetView:
    """A one-row FleetView. A bridge without any report yet is not available."""
    count = len(snapshot.bridges)
    load = np.zeros((1, count, 3))
    age = np.full((1, count), np.inf)
    for i, bridge in enumerate(snapshot.bridges):
        report = snapshot.reports.get(bridge.id)
        if report is not None:
            load[0, i] = report.load_vector()
            age[0, i] = max(snapshot.now - report.measured_at, 0.0)
    states = [b.state for b in snapshot.bridges]
    reported = np.isfinite(age)
    available = reported & np.array([[s is not BridgeState.FAILED for s in states]], bool)
    open_for_new = available & np.array([[s is BridgeState.SERVING for s in states]], bool)
    regions = region_codes(snapshot.bridges)
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
    admitted, _ = admit_tiers(view, np.array([TIER_INDEX[tier]]), config)
    utilization = float(fleet_utilization(view)[0])
    if not admitted[0]:
        return refuse(Reason.CAPACITY, tier=tier.value, utilization=round(utilization, 4))

    regions = region_codes(snapshot.bridges)
    batch = JoinBatch(
        room_members=np.array([[room_members.get(b, 0) for b in ids]], dtype=np.int64),
        room_recent_joins=np.array([[recent_joins.get(b, 0) for b in ids]], dtype=np.int64),
        region=np.array([regions.get(request.region or "", -1)], dtype=np.int64),
        active=np.ones(1, dtype=bool),
    )
    outcome = place_joins(view, batch, policy, config, costs, rng)
    reason = REASON_CODES[int(outcome.reason[0])]
    index = int(outcome.bridge[0])
    if index < 0:
        return refuse(reason, tier=tier.value, utilization=round(utilization, 4))
    return Decision(
        request.room,
        request.participant,
        ids[index],
        reason,
        relay_to=tuple(ids[i] for i in np.flatnonzero(outcome.relay_to[0])),
        detail={
            "tier": tier.value,
            "cost": [float(x) for x in outcome.cost[0]],
            "stress": round(float(view.expected_stress[0, index]), 4),
            "utilization": round(utilization, 4),
        },
    )
