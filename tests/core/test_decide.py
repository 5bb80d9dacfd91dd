import numpy as np

from sfu_balancer.core import (
    BridgeInfo,
    BridgeState,
    Capacity,
    CostTable,
    FleetSnapshot,
    JoinRequest,
    LoadReport,
    PendingLedger,
    Reason,
    RoutingConfig,
    Tier,
    build_view,
    decide_join,
)


def _snapshot(cpu: list[float], states: list[BridgeState] | None = None) -> FleetSnapshot:
    states = states or [BridgeState.SERVING] * len(cpu)
    bridges = tuple(
        BridgeInfo(f"b{i}", "host", region="eu" if i % 2 == 0 else "us",
                   capacity=Capacity(1.0, 100.0, 100.0), state=state,
                   drain_deadline=50.0 if state is BridgeState.DRAINING else None)
        for i, state in enumerate(states)
    )
    reports = {b.id: LoadReport(b.id, measured_at=9.0, cpu=c)
               for b, c in zip(bridges, cpu, strict=True)}
    return FleetSnapshot(bridges, reports, now=10.0)


def _decide(snapshot: FleetSnapshot, config: RoutingConfig | None = None, *, ledger=None,  # type: ignore[no-untyped-def]
            members=None, tier=Tier.STANDARD, tenant=None, tenant_count=0, region=None):
    config = config or RoutingConfig()
    v = build_view(snapshot, ledger, config)
    request = JoinRequest("room", "p1", region=region, tier=tier, tenant=tenant)
    return decide_join(v, snapshot, request,
                       members or {}, {}, tenant_count, config.build_policy(), config,
                       CostTable(), np.random.default_rng(0))


def test_live_decision_carries_bridge_reason_and_cost() -> None:
    decision = _decide(_snapshot([0.5, 0.1, 0.3]))
    assert decision.bridge_id == "b1" and decision.reason is Reason.NEW_ROOM
    assert len(decision.detail["cost"]) == 3 and decision.detail["tier"] == "standard"


def test_bridge_without_report_or_failed_is_never_chosen() -> None:
    snapshot = _snapshot([0.5, 0.1, 0.3], [BridgeState.SERVING, BridgeState.FAILED,
                                            BridgeState.SERVING])
    assert _decide(snapshot).bridge_id == "b2"
    unreported = FleetSnapshot(snapshot.bridges, {"b0": snapshot.reports["b0"]}, now=10.0)
    assert _decide(unreported).bridge_id == "b0"


def test_split_decision_names_relay_targets() -> None:
    decision = _decide(_snapshot([0.1, 0.2, 0.3]), RoutingConfig(max_per_bridge=2),
                       members={"b0": 2})
    assert decision.reason is Reason.SPLIT_CAP and decision.relay_to == ("b0",)


def test_region_is_preferred() -> None:
    assert _decide(_snapshot([0.1, 0.4, 0.3]), region="us").bridge_id == "b1"


def test_quota_and_capacity_refusals_carry_reasons() -> None:
    config = RoutingConfig(tenant_quotas={"t": 1})
    refused = _decide(_snapshot([0.1]), config, tenant="t", tenant_count=1)
    assert refused.bridge_id is None and refused.reason is Reason.QUOTA
    full = _snapshot([0.79, 0.79])
    bulk = _decide(full, tier=Tier.BULK)
    assert bulk.reason is Reason.CAPACITY and bulk.detail["tier"] == "bulk"
    assert _decide(full, tier=Tier.CRITICAL).admitted


def test_all_draining_refuses_new_room_with_no_bridge() -> None:
    snapshot = _snapshot([0.1], [BridgeState.DRAINING])
    decision = _decide(snapshot)
    assert decision.bridge_id is None and decision.reason is Reason.NO_BRIDGE


def test_ledger_is_read_when_it_matches_the_fleet() -> None:
    snapshot = _snapshot([0.1, 0.2])
    ledger = PendingLedger(1, 2)
    ledger.add(np.array([0]), np.array([0]), np.array([[0.5, 0, 0]]), now=9.5)
    assert _decide(snapshot, ledger=ledger).bridge_id == "b1"


def test_warm_up_places_its_made_up_join_with_every_policy() -> None:
    from sfu_balancer.core import CostTable, RoutingConfig, policy_names
    from sfu_balancer.core.decide import warm_up

    for name in policy_names():
        config = RoutingConfig.from_mapping({"policy": name})
        decision = warm_up(config.build_policy(), config, CostTable())
        assert decision.bridge_id == "warm-up-0", name  # the room is sticky to its bridge
