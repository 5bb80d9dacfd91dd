import numpy as np
import pytest

from sfu_balancer.core import PendingLedger


def _ledger() -> PendingLedger:
    return PendingLedger(replicas=2, bridges=3, rampup_s=20.0, recent_window_s=20.0)


def test_charge_counts_at_once_on_the_chosen_bridge_and_row() -> None:
    ledger = _ledger()
    ledger.add(np.array([0, 1]), np.array([2, 0]), np.array([[0.1, 5, 1], [0.2, 1, 1]]), now=100)
    pending = ledger.pending()
    assert pending.shape == (2, 3, 3)
    assert pending[0, 2].tolist() == [0.1, 5, 1]
    assert pending[1, 0].tolist() == [0.2, 1, 1]
    assert pending.sum() == pytest.approx(0.1 + 5 + 1 + 0.2 + 1 + 1)


def test_charge_stays_until_a_report_measured_after_rampup() -> None:
    ledger = _ledger()
    ledger.add(np.array([0]), np.array([1]), np.array([[0.1, 0, 0]]), now=100)
    measured = np.full((2, 3), 119.9)
    ledger.settle(measured, now=121)  # measured before placement + rampup: still pending
    assert ledger.pending()[0, 1, 0] == pytest.approx(0.1)
    measured[0, 0] = 130  # a late report from another bridge settles nothing
    ledger.settle(measured, now=131)
    assert ledger.pending()[0, 1, 0] == pytest.approx(0.1)
    measured[0, 1] = 120.0
    ledger.settle(measured, now=131)
    assert ledger.pending()[0, 1, 0] == 0.0
    assert len(ledger) == 0  # settled and older than the recent window: dropped


def test_recent_counts_outlive_settlement_within_window() -> None:
    ledger = PendingLedger(1, 2, rampup_s=0.0, recent_window_s=20.0)
    ledger.add(np.array([0, 0]), np.array([1, 1]), np.zeros((2, 3)), now=10)
    ledger.settle(np.full((1, 2), 11.0), now=11)
    assert ledger.pending().sum() == 0
    assert ledger.recent_counts(now=15)[0].tolist() == [0, 2]
    assert ledger.recent_counts(now=31)[0].tolist() == [0, 0]


def test_ignores_no_bridge_and_rejects_out_of_range() -> None:
    ledger = _ledger()
    ledger.add(np.array([0]), np.array([-1]), np.ones((1, 3)), now=0)
    assert len(ledger) == 0
    with pytest.raises(ValueError, match="out of range"):
        ledger.add(np.array([0]), np.array([3]), np.ones((1, 3)), now=0)
    with pytest.raises(ValueError, match="same length"):
        ledger.add(np.array([0, 1]), np.array([0]), np.ones((1, 3)), now=0)


def test_forget_bridge_and_resize() -> None:
    ledger = _ledger()
    ledger.add(np.array([0, 0]), np.array([0, 1]), np.ones((2, 3)), now=0)
    ledger.forget_bridge(0)
    assert ledger.pending()[0, 0].sum() == 0 and ledger.pending()[0, 1].sum() == 3
    ledger.resize(5)
    assert ledger.pending().shape == (2, 5, 3)
    with pytest.raises(ValueError, match="only grow"):
        ledger.resize(4)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"replicas": 0}, "replicas"), ({"bridges": -1}, "bridges"), ({"rampup_s": -1}, "rampup_s")],
)
def test_bad_parameters(kwargs: dict[str, float], message: str) -> None:
    args = {"replicas": 1, "bridges": 1} | kwargs
    with pytest.raises(ValueError, match=message):
        PendingLedger(**args)  # type: ignore[arg-type]


def test_precharged_add_needs_a_pending_array_read_since_the_last_change() -> None:
    ledger = _ledger()
    with pytest.raises(ValueError, match="precharged"):
        ledger.add(np.array([0]), np.array([1]), np.ones((1, 3)), 1.0, precharged=True)
