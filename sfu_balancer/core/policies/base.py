"""What a policy sees and returns.

Rules:
- Every array has a leading replica axis R (R = 1 live, hundreds in the simulator) and a bridge
  axis B. Rows are independent: a policy never lets one row's data influence another row.
- A policy returns one bridge index per row, or -1 when no eligible bridge exists. It never
  returns a bridge outside ``request.eligible``.
- Ties are broken with ``rng``, never by bridge index, so equal bridges share the load.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from functools import cached_property
from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray

from ..load import CostTable, FloatArray, IntArray, Thresholds, growth_load

BoolArray = NDArray[np.bool_]
NO_BRIDGE = -1
DEFAULT_THRESHOLDS = Thresholds()
DEFAULT_COSTS = CostTable()


@dataclass(frozen=True)
class FleetView:
    """The fleet as the balancer sees it at one instant (possibly stale)."""

    load: FloatArray  # (R, B, 3) last reported load vector
    pending: FloatArray  # (R, B, 3) ledger: forecast load of placements reports do not show yet
    capacity: FloatArray  # (B, 3)
    report_age: FloatArray  # (R, B) seconds since each report was measured
    available: BoolArray  # (R, B) may take members of rooms it already hosts
    open_for_new: BoolArray  # (R, B) available and not draining: may take new rooms
    region: IntArray  # (B,) region code per bridge
    recent_placements: FloatArray  # (R, B) endpoints placed in the recent window (Jicofo's count)
    thresholds: Thresholds = DEFAULT_THRESHOLDS
    report_interval_s: float = 1.0

    @property
    def replicas(self) -> int:
        return int(self.load.shape[0])

    @property
    def bridges(self) -> int:
        return int(self.load.shape[1])

    @cached_property
    def limit(self) -> FloatArray:
        """(B, 3) load at which each resource reaches stress 1."""
        result: FloatArray = self.capacity * self.thresholds.as_array()
        return result

    @cached_property
    def inverse_limit(self) -> FloatArray:
        """(B, 3) 1 / limit: stress = max(load * inverse_limit), a multiply being cheaper."""
        result: FloatArray = 1.0 / self.limit
        return result

    @cached_property
    def reported_stress(self) -> FloatArray:
        result: FloatArray = np.max(self.load * self.inverse_limit, axis=-1)
        return result

    @cached_property
    def expected_load(self) -> FloatArray:
        """Reported load plus the ledger: the best estimate of load right now."""
        result: FloatArray = self.load + self.pending
        return result

    @cached_property
    def expected_stress(self) -> FloatArray:
        result: FloatArray = np.max(self.expected_load * self.inverse_limit, axis=-1)
        return result


@dataclass(frozen=True)
class PlacementRequest:
    """One join per replica row, and the bridges the placement rules allow for it."""

    eligible: BoolArray  # (R, B)
    cost: FloatArray  # (R, B, 3) forecast load this join adds to each bridge
    region: IntArray  # (R,) region code of the participant, -1 when unknown
    room_members: IntArray  # (R, B) members of this room per bridge
    new_room: BoolArray  # (R,) the room has no members yet
    costs: CostTable = DEFAULT_COSTS
    # (R, B, 3) forecast load of the room's further growth; None = derive from room_members.
    expected_growth: FloatArray | None = None

    @cached_property
    def growth(self) -> FloatArray:
        """Computed only for policies that reserve headroom (it costs a dozen array ops)."""
        if self.expected_growth is not None:
            return self.expected_growth
        return growth_load(self.room_members, self.costs)


def pick_min(score: FloatArray, mask: BoolArray, rng: np.random.Generator) -> IntArray:
    """Per row, the index of the smallest ``score`` within ``mask``; ties at random; -1 if empty."""
    if mask.shape[1] == 0:
        return np.full(mask.shape[0], NO_BRIDGE, dtype=np.int64)
    masked = np.where(mask, score, np.inf)
    best = masked.min(axis=1, keepdims=True)
    ties = mask & (masked == best)
    if np.all(ties.sum(axis=1) == 1):
        # Exactly one best bridge per row: no tie to break, so no randomness is drawn.
        choice: IntArray = ties.argmax(axis=1).astype(np.int64)
        return choice
    keys = np.where(ties, rng.random(score.shape), 2.0)
    choice = keys.argmin(axis=1).astype(np.int64)
    choice[~mask.any(axis=1)] = NO_BRIDGE
    return choice


def pick_random(mask: BoolArray, rng: np.random.Generator) -> IntArray:
    if mask.shape[1] == 0:
        return np.full(mask.shape[0], NO_BRIDGE, dtype=np.int64)
    keys = np.where(mask, rng.random(mask.shape), 2.0)
    choice: IntArray = keys.argmin(axis=1).astype(np.int64)
    choice[~mask.any(axis=1)] = NO_BRIDGE
    return choice


def sample_candidates(mask: BoolArray, d: int, rng: np.random.Generator) -> BoolArray:
    """Per row, a uniform random subset of at most ``d`` bridges within ``mask``."""
    bridges = mask.shape[1]
    if d >= bridges:
        return mask.copy()
    keys = np.where(mask, rng.random(mask.shape), 2.0)
    picked = np.argpartition(keys, d - 1, axis=1)[:, :d]
    chosen = np.zeros_like(mask)
    np.put_along_axis(chosen, picked, True, axis=1)
    result: BoolArray = chosen & mask
    return result


def prefer_region(view: FleetView, request: PlacementRequest, mask: BoolArray) -> BoolArray:
    """Narrow ``mask`` to the participant's region in rows where that leaves any bridge."""
    in_region = mask & (view.region[None, :] == request.region[:, None])
    has_region = in_region.any(axis=1, keepdims=True)
    result: BoolArray = np.where(has_region, in_region, mask)
    return result


@dataclass
class Policy:
    """Base of every policy. Subclasses are dataclasses whose fields are their parameters.

    ``splits`` tells the placement rules whether this policy may spread a room over several
    bridges (Jicofo's default never does).
    """

    name: ClassVar[str] = ""
    splits: ClassVar[bool] = True

    def choose(
        self, view: FleetView, request: PlacementRequest, rng: np.random.Generator
    ) -> IntArray:
        raise NotImplementedError

    def params(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self) if not f.name.startswith("_")}

    def reset(self, replicas: int) -> None:
        """Forget per-replica state (only stateful policies override this)."""

    def state(self) -> dict[str, Any]:
        """Per-replica state a decision depends on besides the view (for the decision log)."""
        return {}

    def restore(self, state: dict[str, Any]) -> None:
        """Set the state that ``state()`` returned (replaying a logged decision)."""
