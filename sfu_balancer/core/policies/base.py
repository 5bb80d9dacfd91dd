"""What a policy sees and returns.

Rules:
- Every array has a leading replica axis R (R = 1 live, hundreds in the simulator) and a bridge
  axis B. Rows are independent: a policy never lets one row's data influence another row.
- A policy returns one bridge index per row, or -1 when no eligible bridge exists. It never
  returns a bridge outside ``request.eligible``.
- Ties are broken with ``rng``, never by bridge index, so equal bridges share the load.
- A built-in policy is a ``kind`` of the compiled kernels (``policies/kernels.py``) plus its
  parameters; ``choose`` and core's placement both run that kernel. A registered policy without
  a kernel (``kind = EXTERNAL``) overrides ``choose`` instead, and placement calls it.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from functools import cached_property
from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray

from .._jit import uniforms
from ..load import CostTable, FloatArray, IntArray, Thresholds, growth_load
from .kernels import BALANCED, EXTERNAL, choose_rows

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

    def with_limits(self, limit: FloatArray, inverse_limit: FloatArray) -> FleetView:
        """This view, its ``limit`` and ``inverse_limit`` given instead of computed, by a
        caller that keeps them while capacities and thresholds stay the same (``FleetTable``).
        They are cached properties: a view made from this one by ``dataclasses.replace``
        computes its own again, so a changed capacity can never meet stale limits."""
        self.__dict__["limit"] = limit
        self.__dict__["inverse_limit"] = inverse_limit
        return self

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


@dataclass
class Policy:
    """Base of every policy. Subclasses are dataclasses whose fields are their parameters.

    ``splits`` tells the placement rules whether this policy may spread a room over several
    bridges (Jicofo's default never does).
    """

    name: ClassVar[str] = ""
    splits: ClassVar[bool] = True
    kind: ClassVar[int] = EXTERNAL

    def kernel_params(self) -> FloatArray:
        """The parameters the policy's kernel reads, as floats (see policies/kernels.py)."""
        return np.zeros(1)

    def draws(self) -> int:
        """Uniforms the kernel may draw per join for sampling (``d``)."""
        return 0

    def kernel_state(self, replicas: int) -> IntArray:
        """(R,) per-row state the kernel reads and updates in place (round_robin's cursor)."""
        return np.zeros(replicas, dtype=np.int64)

    def choose(
        self, view: FleetView, request: PlacementRequest, rng: np.random.Generator
    ) -> IntArray:
        if self.kind == EXTERNAL:
            raise NotImplementedError
        replicas = view.replicas
        cost = f64(request.cost)
        growth = f64(request.growth) if self.kind == BALANCED else cost
        result: IntArray = choose_rows(
            self.kind, self.kernel_params(), self.kernel_state(replicas),
            uniforms(rng, replicas, self.draws()), f64(view.load), f64(view.pending),
            f64(view.inverse_limit), f64(view.capacity), f64(view.report_age),
            float(view.report_interval_s), i64(view.region), f64(view.recent_placements),
            np.ascontiguousarray(request.eligible, dtype=np.bool_), cost, growth,
            i64(request.region))
        return result

    def params(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self) if not f.name.startswith("_")}

    def reset(self, replicas: int) -> None:
        """Forget per-replica state (only stateful policies override this)."""

    def state(self) -> dict[str, Any]:
        """Per-replica state a decision depends on besides the view (for the decision log)."""
        return {}

    def restore(self, state: dict[str, Any]) -> None:
        """Set the state that ``state()`` returned (replaying a logged decision)."""


def f64(a: object) -> FloatArray:
    """A C-contiguous float64 array (one compiled signature per kernel)."""
    result: FloatArray = np.ascontiguousarray(a, dtype=np.float64)
    return result


def i64(a: object) -> IntArray:
    result: IntArray = np.ascontiguousarray(a, dtype=np.int64)
    return result
