"""The pending-load ledger: the cure for stale-stats herding.

Rules:
- ``add`` charges a placement's forecast cost to its bridge at once.
- The charge stays until ``settle`` sees a report from that bridge measured at least
  ``rampup_s`` after the placement (media takes that long to ramp up and show in reports).
  Until then, reports alone would hide the placement and every join of the interval would
  herd onto the same "idle" bridge (jicofo#1298: 58 of 92 burst joins on one bridge).
- Entries also remember when they were placed, so ``recent_counts`` can give Jicofo's
  "endpoints placed in the last 20 s" count; an entry is dropped only once it is both settled
  and older than ``recent_window_s``.
- Rows (replicas) never interact. Bridge indices are columns of the fleet view; ``-1`` (no
  bridge) is ignored on ``add``.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from . import _ledger_kernels as _kernels
from .load import FloatArray, IntArray

BoolArray = NDArray[np.bool_]
_NO_TOTAL = np.zeros((0, 0, 3))  # settle's ``out`` when no pending total is kept


class PendingLedger:
    """Entries live in parallel arrays with spare capacity (the first ``_n`` are live, in
    insertion order); the passes over them are compiled in ``_ledger_kernels``."""

    def __init__(
        self,
        replicas: int,
        bridges: int,
        rampup_s: float = 20.0,
        recent_window_s: float = 20.0,
    ) -> None:
        if replicas < 1:
            raise ValueError(f"ledger: replicas must be >= 1, got {replicas}")
        if bridges < 0:
            raise ValueError(f"ledger: bridges must be >= 0, got {bridges}")
        if not rampup_s >= 0:
            raise ValueError(f"ledger: rampup_s must be >= 0, got {rampup_s}")
        if not recent_window_s >= 0:
            raise ValueError(f"ledger: recent_window_s must be >= 0, got {recent_window_s}")
        self.replicas = replicas
        self.bridges = bridges
        self.rampup_s = float(rampup_s)
        self.recent_window_s = float(recent_window_s)
        self._n = 0
        self._row: IntArray = np.zeros(16, np.int64)
        self._bridge: IntArray = np.zeros(16, np.int64)
        self._cost: FloatArray = np.zeros((16, 3))
        self._placed_at: FloatArray = np.zeros(16)
        self._settled: BoolArray = np.zeros(16, np.bool_)
        self._pending_cache: FloatArray | None = None

    def _allocate(self, capacity: int) -> None:
        """Entry arrays of ``capacity``, keeping the live entries."""
        n = self._n
        row, bridge = np.zeros(capacity, np.int64), np.zeros(capacity, np.int64)
        cost, placed_at = np.zeros((capacity, 3)), np.zeros(capacity)
        settled = np.zeros(capacity, np.bool_)
        row[:n], bridge[:n], cost[:n] = self._row[:n], self._bridge[:n], self._cost[:n]
        placed_at[:n], settled[:n] = self._placed_at[:n], self._settled[:n]
        self._row, self._bridge, self._cost = row, bridge, cost
        self._placed_at, self._settled = placed_at, settled

    def _entries(self) -> tuple[IntArray, IntArray, FloatArray, FloatArray, BoolArray]:
        return self._row, self._bridge, self._cost, self._placed_at, self._settled

    def __len__(self) -> int:
        return self._n

    def add(
        self, rows: IntArray, bridges: IntArray, costs: FloatArray, now: float | FloatArray,
        *, precharged: bool = False,
    ) -> None:
        """Charge ``costs`` (N, 3) to ``bridges`` (N,) in ``rows`` (N,), placed at ``now``
        (one time for all, or (N,) times when rebuilding from stored entries).

        ``precharged``: the caller has already added these costs, in this order, to the array
        ``pending()`` returned (``place_sequence(..., in_place=True)`` on a view of it, which
        charges exactly so); the entries are recorded without charging it a second time."""
        if precharged and self._pending_cache is None:
            raise ValueError("ledger.add(precharged=True): pending() was not read since the "
                             "last change, so no array of it can hold the charges")
        rows = np.ascontiguousarray(rows, dtype=np.int64).reshape(-1)
        bridges = np.ascontiguousarray(bridges, dtype=np.int64).reshape(-1)
        costs = np.ascontiguousarray(costs, dtype=np.float64).reshape(-1, 3)
        if not (rows.size == bridges.size == costs.shape[0]):
            raise ValueError("ledger.add: rows, bridges and costs must have the same length")
        placed_at = (np.full(rows.shape, float(now)) if np.ndim(now) == 0 else  # the usual
                     np.ascontiguousarray(np.broadcast_to(np.asarray(now, np.float64),
                                                          rows.shape)))
        if self._n + rows.size > self._row.size:
            self._allocate(max(2 * self._row.size, self._n + rows.size))
        n = _kernels.append(*self._entries(), self._n, rows, bridges, costs, placed_at,
                            self.replicas, self.bridges)
        if n < 0:
            raise ValueError("ledger.add: row or bridge index out of range")
        if n != self._n:
            self._n = n
            if self._pending_cache is not None and not precharged:  # kept, not recomputed:
                _kernels.charge_pending(self._pending_cache, rows, bridges, costs)  # same floats

    def settle(self, measured_at: FloatArray, now: float) -> None:
        """Clear charges that reports measured at ``measured_at`` (R, B) now show. A ledger
        whose ``pending()`` was read has it summed again in the same pass (a simulator reads
        it every tick, and some entry settles in most ticks)."""
        if self._n == 0:
            return
        cache = self._pending_cache
        self._n = _kernels.settle(
            *self._entries(), self._n, np.ascontiguousarray(measured_at, dtype=np.float64),
            float(now), self.rampup_s, self.recent_window_s, cache is not None,
            _NO_TOTAL if cache is None else cache)

    def forget_bridge(self, bridge: int) -> None:
        """Drop every charge on ``bridge`` (it failed or left the fleet)."""
        self._n = _kernels.forget_bridge(*self._entries(), self._n, int(bridge))
        self._pending_cache = None

    def resize(self, bridges: int) -> None:
        """Grow the bridge axis (autoscaling adds columns; indices stay stable)."""
        if bridges < self.bridges:
            raise ValueError("ledger.resize: the bridge axis can only grow")
        self.bridges = bridges
        self._pending_cache = None

    def pending(self) -> FloatArray:
        """(R, B, 3) forecast load not yet visible in reports. The array is the ledger's
        own: ``add`` adds its charges to it in place (a simulator tick would otherwise sum
        every entry again for the next read) and ``settle`` sums it again in place; copy it
        to keep a snapshot."""
        if self._pending_cache is None:
            total = np.empty((self.replicas, self.bridges, 3), dtype=np.float64)
            _kernels.pending(self._row, self._bridge, self._cost, self._settled, self._n, total)
            self._pending_cache = total
        return self._pending_cache

    def recent_counts(self, now: float) -> FloatArray:
        """(R, B) placements made in the last ``recent_window_s`` seconds."""
        counts = np.empty((self.replicas, self.bridges), dtype=np.float64)
        _kernels.recent_counts(self._row, self._bridge, self._placed_at, self._n,
                               float(now) - self.recent_window_s, counts)
        return counts


class LedgerRows(Protocol):
    """What a fleet view reads from a ledger: one row per replica, one column per bridge."""

    @property
    def bridges(self) -> int: ...

    def pending(self) -> FloatArray: ...

    def recent_counts(self, now: float) -> FloatArray: ...


@dataclass
class _BridgeCharges:
    """One bridge's charges sorted by placement time; ``charges[:settled]`` are settled."""

    placed_at: list[float] = field(default_factory=list)
    costs: list[FloatArray] = field(default_factory=list)
    settled: int = 0
    pending: FloatArray = field(default_factory=lambda: np.zeros(3))
    measured_at: float = -np.inf  # newest report time seen; charges at or before it - rampup settle


class LiveLedger:
    """The pending ledger of a live balancer (R = 1), keyed by bridge id, kept incrementally.

    Same rule as ``PendingLedger``: a charge counts until a report from its bridge measured at
    least ``rampup_s`` after the placement is seen. Invariants that make each call cheap (no
    pass over every charge of the last minutes, which at 2,000 joins/s is ~10^5 entries):
    - per bridge, charges are kept sorted by ``placed_at`` and the settled ones are a prefix,
      because report times only move forward (``settle`` keeps the newest one seen);
    - ``pending`` per bridge is the running sum of the unsettled suffix;
    - a charge is dropped once settled and older than ``recent_window_s``, or once older than
      ``horizon_s`` (the horizon the stores keep entries for), whichever comes first.
    """

    def __init__(self, rampup_s: float = 20.0, recent_window_s: float = 20.0,
                 horizon_s: float = 120.0) -> None:
        if not (rampup_s >= 0 and recent_window_s >= 0 and horizon_s >= 0):
            raise ValueError("ledger: rampup_s, recent_window_s and horizon_s must be >= 0, "
                             f"got {rampup_s}, {recent_window_s}, {horizon_s}")
        self.rampup_s = float(rampup_s)
        self.recent_window_s = float(recent_window_s)
        self.horizon_s = float(horizon_s)
        self._bridges: dict[str, _BridgeCharges] = {}
        # newest report time per bridge, kept while it holds no charge, so that ``settle``
        # need only be told of each report once (not on every decision)
        self._seen: dict[str, float] = {}

    def __len__(self) -> int:
        return sum(len(c.placed_at) for c in self._bridges.values())

    def charge(self, bridge: str, cost: Sequence[float], placed_at: float) -> None:
        charges = self._bridges.get(bridge)
        if charges is None:
            charges = self._bridges[bridge] = _BridgeCharges(
                measured_at=self._seen.get(bridge, -np.inf))
        vector = np.asarray(cost, dtype=np.float64).reshape(3)
        at = bisect_right(charges.placed_at, placed_at)
        charges.placed_at.insert(at, float(placed_at))
        charges.costs.insert(at, vector)
        if placed_at <= charges.measured_at - self.rampup_s:
            charges.settled += 1  # already visible in a report seen: it sorts into the prefix
        else:
            charges.pending = charges.pending + vector

    def settle(self, bridge: str, measured_at: float) -> None:
        if measured_at > self._seen.get(bridge, -np.inf):
            self._seen[bridge] = measured_at
        charges = self._bridges.get(bridge)
        if charges is None or measured_at <= charges.measured_at:
            return
        charges.measured_at = measured_at
        seen = bisect_right(charges.placed_at, measured_at - self.rampup_s)
        if seen > charges.settled:
            charges.settled = seen
            unsettled = charges.costs[seen:]
            # recomputed, not subtracted: no float drift however long the balancer runs
            charges.pending = np.sum(unsettled, axis=0) if unsettled else np.zeros(3)

    def expire(self, now: float) -> None:
        for bridge, charges in list(self._bridges.items()):
            old = bisect_left(charges.placed_at, now - self.horizon_s)  # stores keep ==
            gone = max(min(charges.settled,
                           bisect_right(charges.placed_at, now - self.recent_window_s)), old)
            if gone:
                del charges.placed_at[:gone]
                del charges.costs[:gone]
                if gone > charges.settled:
                    unsettled = charges.costs
                    charges.pending = np.sum(unsettled, axis=0) if unsettled else np.zeros(3)
                charges.settled = max(charges.settled - gone, 0)
            if not charges.placed_at:
                del self._bridges[bridge]

    def rows(self, bridge_ids: Sequence[str],
             index: Mapping[str, int] | None = None) -> LiveLedgerRows:
        """The ledger as one view row over ``bridge_ids`` (the fleet view's columns);
        ``index`` (id -> column of ``bridge_ids``) saves building it when the caller has it."""
        ids = tuple(bridge_ids)
        return LiveLedgerRows(self, ids, index if index is not None
                              else {b: i for i, b in enumerate(ids)})

    def _recent(self, bridge: str, now: float) -> int:
        charges = self._bridges.get(bridge)
        if charges is None:
            return 0
        return len(charges.placed_at) - bisect_right(charges.placed_at,
                                                     now - self.recent_window_s)


@dataclass(frozen=True)
class LiveLedgerRows:
    ledger: LiveLedger
    ids: tuple[str, ...]
    index: Mapping[str, int]  # id -> column of ``ids``

    @property
    def bridges(self) -> int:
        return len(self.ids)

    def pending(self) -> FloatArray:
        # a pass over the bridges holding charges, not over the fleet: a join on a large fleet
        # must not cost a Python step per bridge
        out = np.zeros((1, len(self.ids), 3))
        for bridge, charges in self.ledger._bridges.items():
            column = self.index.get(bridge)
            if column is not None:
                out[0, column] = charges.pending
        return out

    def recent_counts(self, now: float) -> FloatArray:
        out = np.zeros((1, len(self.ids)))
        for bridge in self.ledger._bridges:
            column = self.index.get(bridge)
            if column is not None:
                out[0, column] = float(self.ledger._recent(bridge, now))
        return out
