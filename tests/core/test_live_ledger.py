"""LiveLedger (incremental, keyed by bridge id) against PendingLedger rebuilt from scratch.

The live balancer used to rebuild a PendingLedger from every stored entry on each decision;
LiveLedger must give the same pending load and recent counts on any history where report
times only move forward, and drop what the stores would drop.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sfu_balancer.core import LiveLedger, PendingLedger

BRIDGES = ("a", "b", "c")
RAMPUP, RECENT, HORIZON = 20.0, 20.0, 120.0


def rebuilt(entries: list[tuple[str, np.ndarray, float]], measured: dict[str, float],
            now: float) -> tuple[np.ndarray, np.ndarray]:
    """What the balancer computed before: every entry within the horizon, settled anew."""
    ledger = PendingLedger(1, len(BRIDGES), RAMPUP, RECENT)
    kept = [e for e in entries if e[2] >= now - HORIZON]
    if kept:
        ledger.add(np.zeros(len(kept), np.int64),
                   np.array([BRIDGES.index(b) for b, _, _ in kept]),
                   np.array([c for _, c, _ in kept]), np.array([t for _, _, t in kept]))
    ledger.settle(np.array([[measured.get(b, -np.inf) for b in BRIDGES]]), now)
    return ledger.pending(), ledger.recent_counts(now)


steps = st.lists(st.tuples(
    st.sampled_from(["charge", "report", "tick"]), st.sampled_from(BRIDGES),
    st.floats(0.0, 30.0), st.floats(0.0, 2.0), st.floats(-3.0, 0.0)), min_size=1, max_size=80)


@settings(max_examples=200, deadline=None)
@given(steps)
def test_same_pending_and_recent_counts_as_a_rebuilt_ledger(history) -> None:  # type: ignore[no-untyped-def]
    live = LiveLedger(RAMPUP, RECENT, HORIZON)
    entries: list[tuple[str, np.ndarray, float]] = []
    measured: dict[str, float] = {}
    now = 0.0
    for kind, bridge, dt, size, skew in history:
        now += dt
        if kind == "charge":  # placed slightly in the past: another instance's late entry
            cost = np.array([0.01, 1.0, 0.5]) * (1.0 + size)
            entries.append((bridge, cost, now + skew))
            live.charge(bridge, cost, now + skew)
        elif kind == "report":  # report times only move forward, and lag a little
            measured[bridge] = max(measured.get(bridge, -np.inf), now + skew)
            live.settle(bridge, measured[bridge])
        live.expire(now)
        pending, recent = rebuilt(entries, measured, now)
        rows = live.rows(BRIDGES)
        np.testing.assert_allclose(rows.pending(), pending, atol=1e-9)
        np.testing.assert_array_equal(rows.recent_counts(now), recent)


def test_charges_leave_once_settled_and_old_and_the_view_follows_the_columns() -> None:
    live = LiveLedger(rampup_s=5.0, recent_window_s=10.0, horizon_s=60.0)
    live.charge("a", (0.1, 1.0, 1.0), placed_at=0.0)
    live.charge("b", (0.2, 2.0, 2.0), placed_at=1.0)
    assert live.rows(["b", "a", "new"]).pending()[0, :, 0].tolist() == [0.2, 0.1, 0.0]
    live.settle("a", 4.9)  # measured before the ramp-up ended: still pending
    assert live.rows(["a"]).pending()[0, 0, 0] == pytest.approx(0.1)
    live.settle("a", 5.0)
    assert live.rows(["a"]).pending()[0, 0, 0] == 0.0
    assert live.rows(["a"]).recent_counts(9.0)[0, 0] == 1.0  # settled, still recent
    live.expire(10.0)
    assert len(live) == 1  # a's charge is settled and 10 s old; b's is pending
    live.expire(61.5)
    assert len(live) == 0  # past the horizon even unsettled (the stores drop it too)


def test_bad_parameters_are_refused() -> None:
    with pytest.raises(ValueError, match="rampup_s"):
        LiveLedger(rampup_s=-1.0)


def test_a_report_seen_before_any_charge_still_settles_a_late_older_charge() -> None:
    """The service tells the ledger of each report once; a charge that arrives later (another
    instance's entry) but was placed long before that report is already visible in it."""
    live = LiveLedger(rampup_s=5.0, recent_window_s=10.0, horizon_s=60.0)
    live.settle("a", 100.0)  # no charge on a yet
    live.charge("a", (0.1, 1.0, 1.0), placed_at=90.0)  # placed 10 s before that report
    live.charge("a", (0.2, 2.0, 2.0), placed_at=99.0)  # within its ramp-up: pending
    assert live.rows(["a"]).pending()[0, 0].tolist() == [0.2, 2.0, 2.0]
    live.expire(101.0)
    live.settle("a", 100.0)  # the same report again changes nothing
    assert live.rows(["a"]).pending()[0, 0].tolist() == [0.2, 2.0, 2.0]
