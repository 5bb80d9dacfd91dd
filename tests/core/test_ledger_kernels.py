"""The compiled ledger passes give exactly what the plain numpy formulation of the ledger's
rules gives (the formulation PendingLedger had before its passes were compiled)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sfu_balancer.core import PendingLedger


class NumpyLedger:
    """Reference: the ledger rules as whole-array numpy operations."""

    def __init__(self, replicas: int, bridges: int, rampup_s: float, window_s: float) -> None:
        self.shape = (replicas, bridges)
        self.rampup_s, self.window_s = rampup_s, window_s
        self.row = np.zeros(0, np.int64)
        self.bridge = np.zeros(0, np.int64)
        self.cost = np.zeros((0, 3))
        self.at = np.zeros(0)
        self.settled = np.zeros(0, np.bool_)

    def add(self, rows: np.ndarray, bridges: np.ndarray, costs: np.ndarray, now: float) -> None:
        keep = bridges >= 0
        self.row = np.concatenate([self.row, rows[keep]])
        self.bridge = np.concatenate([self.bridge, bridges[keep]])
        self.cost = np.concatenate([self.cost, costs[keep]])
        self.at = np.concatenate([self.at, np.full(int(keep.sum()), now)])
        self.settled = np.concatenate([self.settled, np.zeros(int(keep.sum()), np.bool_)])

    def _keep(self, mask: np.ndarray) -> None:
        self.row, self.bridge, self.cost = self.row[mask], self.bridge[mask], self.cost[mask]
        self.at, self.settled = self.at[mask], self.settled[mask]

    def settle(self, measured_at: np.ndarray, now: float) -> None:
        self.settled |= measured_at[self.row, self.bridge] >= self.at + self.rampup_s
        self._keep(~(self.settled & (self.at <= now - self.window_s)))

    def pending(self) -> np.ndarray:
        total = np.zeros((*self.shape, 3))
        live = ~self.settled
        np.add.at(total, (self.row[live], self.bridge[live]), self.cost[live])
        return total

    def recent_counts(self, now: float) -> np.ndarray:
        counts = np.zeros(self.shape)
        recent = self.at > now - self.window_s
        np.add.at(counts, (self.row[recent], self.bridge[recent]), 1.0)
        return counts


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), replicas=st.integers(1, 5), bridges=st.integers(1, 4),
       rampup=st.sampled_from([0.0, 5.0, 20.0]), window=st.sampled_from([0.0, 10.0, 20.0]))
def test_compiled_ledger_equals_the_numpy_rules(seed: int, replicas: int, bridges: int,
                                                rampup: float, window: float) -> None:
    rng = np.random.default_rng(seed)
    ledger = PendingLedger(replicas, bridges, rampup, window)
    ref = NumpyLedger(replicas, bridges, rampup, window)
    measured = np.full((replicas, bridges), -np.inf)
    for step in range(40):
        now = 5.0 * (step + 1)
        n = int(rng.integers(0, 30))  # past the initial capacity: the arrays must grow
        rows = rng.integers(0, replicas, n)
        picks = rng.integers(-1, bridges, n)  # -1 = refused, ignored
        costs = rng.random((n, 3))
        ledger.add(rows, picks, costs, now)
        ref.add(rows, picks, costs, now)
        # the cached total, charged in place by add, equals the sum over the entries; read
        # or not, settle then sums it again in its own pass or leaves it to the next read
        if rng.random() < 0.7:
            assert np.array_equal(ledger.pending(), ref.pending())
        due = rng.random((replicas, bridges)) < 0.5
        measured[due] = now
        ledger.settle(measured, now)
        ref.settle(measured, now)
        if rng.random() < 0.05:
            gone = int(rng.integers(0, bridges))
            ledger.forget_bridge(gone)
            ref._keep(ref.bridge != gone)
        assert len(ledger) == ref.row.size
        assert np.array_equal(ledger.pending(), ref.pending())  # same order of sums
        assert np.array_equal(ledger.recent_counts(now), ref.recent_counts(now))


def test_out_of_range_add_writes_nothing() -> None:
    ledger = PendingLedger(2, 2)
    ledger.add(np.array([0]), np.array([1]), np.ones((1, 3)), 1.0)
    for rows, picks in (([0, 2], [0, 0]), ([0, 0], [0, 2]), ([-1], [0])):
        with pytest.raises(ValueError, match="out of range"):
            ledger.add(np.array(rows), np.array(picks), np.ones((len(rows), 3)), 2.0)
        assert len(ledger) == 1
