"""FleetTable gives the same views and snapshots as building them from objects (build_view)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from sfu_balancer.core import (
    BridgeInfo,
    BridgeState,
    Capacity,
    FleetSnapshot,
    FleetTable,
    LiveLedger,
    LoadReport,
    RoutingConfig,
    build_view,
)

FIELDS = ("load", "pending", "capacity", "report_age", "available", "open_for_new", "region",
          "recent_placements")


def _info(rng: np.random.Generator, bridge: str) -> BridgeInfo:
    state = (BridgeState.SERVING, BridgeState.DRAINING, BridgeState.FAILED)[
        int(rng.integers(3))]
    return BridgeInfo(bridge, "host", region=("eu", "us", "asia")[int(rng.integers(3))],
                      capacity=Capacity(float(rng.uniform(1, 8)), float(rng.uniform(100, 1e4)),
                                        float(rng.uniform(100, 1e4))),
                      state=state, drain_deadline=5.0 if state is BridgeState.DRAINING else None)


def _assert_same(table: FleetTable, now: float, ledger: LiveLedger | None,
                 config: RoutingConfig) -> None:
    snapshot = table.snapshot(now)
    fresh = FleetSnapshot(snapshot.bridges, dict(snapshot.reports), now,
                          snapshot.report_interval_s)
    assert snapshot.ids == fresh.ids
    assert snapshot.index() == fresh.index()
    assert snapshot.region_codes() == fresh.region_codes()
    rows = ledger.rows(snapshot.ids, snapshot.index()) if ledger is not None else None
    ours = table.view(now, rows, config)
    reference = build_view(fresh, ledger.rows(fresh.ids) if ledger is not None else None,
                           config)
    for name in FIELDS:
        a, b = getattr(ours, name), getattr(reference, name)
        assert a.dtype == b.dtype and a.shape == b.shape, name
        assert np.array_equal(a, b), name
    assert np.array_equal(ours.limit, reference.limit)
    assert np.array_equal(ours.inverse_limit, reference.inverse_limit)
    assert ours.thresholds == reference.thresholds
    assert ours.report_interval_s == reference.report_interval_s


@pytest.mark.parametrize("seed", range(20))
def test_views_equal_build_view_over_random_events(seed: int) -> None:
    rng = np.random.default_rng(seed)
    table = FleetTable(report_interval_s=float(rng.choice([1.0, 5.0])))
    config = RoutingConfig(cpu_threshold=float(rng.uniform(0.5, 1.0)))
    ledger = LiveLedger()
    now = 0.0
    for _ in range(200):
        now += float(rng.exponential(0.5))
        known = table.layout.ids
        event = rng.random()
        if event < 0.15 or not known:  # new or replaced, sometimes reporting afresh
            table.put_bridge(_info(rng, f"b{int(rng.integers(12))}"),
                             drop_report=bool(rng.random() < 0.3))
        elif event < 0.7:
            bridge = known[int(rng.integers(len(known)))]
            table.put_report(LoadReport(bridge, now - float(rng.uniform(0, 3)),
                                        cpu=float(rng.uniform(0, 8)),
                                        bytes_in_per_s=float(rng.uniform(0, 1e8)),
                                        bytes_out_per_s=float(rng.uniform(0, 1e9))))
        else:
            bridge = known[int(rng.integers(len(known)))]
            ledger.charge(bridge, rng.uniform(0, 0.1, 3).tolist(), now)
            ledger.settle(bridge, now - float(rng.uniform(0, 40)))
        _assert_same(table, now, ledger if rng.random() < 0.7 else None, config)


def test_columns_are_stable_and_a_snapshot_does_not_follow_later_reports() -> None:
    table = FleetTable()
    assert table.put_bridge(BridgeInfo("a", "h")) == 0
    assert table.put_bridge(BridgeInfo("b", "h")) == 1
    table.put_report(LoadReport("a", 1.0, cpu=0.5))
    before = table.snapshot(2.0)
    view = table.view(2.0, None, RoutingConfig())
    assert table.put_bridge(BridgeInfo("a", "h", state=BridgeState.FAILED)) == 0
    table.put_report(LoadReport("a", 1.5, cpu=0.9))
    assert before.reports["a"].cpu == 0.5 and before.bridges[0].state is BridgeState.SERVING
    assert view.load[0, 0, 0] == 0.5 and bool(view.available[0, 0])
    after = table.view(2.0, None, RoutingConfig())
    assert after.load[0, 0, 0] == 0.9 and not after.available[0, 0]
    assert not after.available[0, 1]  # no report yet: not available
    assert np.isinf(after.report_age[0, 1])
    table.put_bridge(BridgeInfo("a", "h"), drop_report=True)  # dialed in again
    again = table.view(2.0, None, RoutingConfig())
    assert not again.available[0, 0] and "a" not in table.snapshot(2.0).reports
    assert again.load[0, 0, 0] == 0.0


def test_bad_input_is_refused_with_a_clear_error() -> None:
    with pytest.raises(ValueError, match="unknown bridge 'x'"):
        FleetTable().put_report(LoadReport("x", 1.0))
    with pytest.raises(ValueError, match="report_interval_s must be > 0"):
        FleetTable(report_interval_s=0)


def test_given_limits_do_not_outlive_a_changed_capacity() -> None:
    table = FleetTable()
    table.put_bridge(BridgeInfo("a", "h", capacity=Capacity(2.0, 100.0, 100.0)))
    table.put_report(LoadReport("a", 1.0))
    view = table.view(2.0, None, RoutingConfig())
    assert view.limit[0].tolist() == [1.6, 80.0, 80.0]
    doubled = replace(view, capacity=view.capacity * 2)
    assert doubled.limit[0].tolist() == [3.2, 160.0, 160.0]
    tighter = table.view(2.0, None, RoutingConfig(cpu_threshold=0.5))
    assert tighter.limit[0].tolist() == [1.0, 80.0, 80.0]
