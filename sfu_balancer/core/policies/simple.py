"""Baseline policies: the reference points every comparison needs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..load import FloatArray, IntArray
from .base import (
    NO_BRIDGE,
    FleetView,
    PlacementRequest,
    Policy,
    pick_min,
    pick_random,
    prefer_region,
    sample_candidates,
)
from .registry import register_policy


def _check_bool(name: str, value: object) -> None:
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be true or false, got {value!r}")


def _current_stress(view: FleetView, use_ledger: bool) -> FloatArray:
    return view.expected_stress if use_ledger else view.reported_stress


@register_policy
@dataclass
class LeastLoaded(Policy):
    """The eligible bridge with the least stress in its last report (ties at random).

    With stale reports every join of an interval lands on the same bridge: the herding that
    Mitzenmacher (2000) describes. ``use_ledger`` adds pending placements to the reports.
    """

    name = "least_loaded"
    use_ledger: bool = False

    def __post_init__(self) -> None:
        _check_bool("use_ledger", self.use_ledger)

    def choose(
        self, view: FleetView, request: PlacementRequest, rng: np.random.Generator
    ) -> IntArray:
        return pick_min(_current_stress(view, self.use_ledger), request.eligible, rng)


@register_policy
@dataclass
class PowerOfD(Policy):
    """Best of ``d`` eligible bridges sampled uniformly (Azar et al.; LiveKit's `twochoice`)."""

    name = "power_of_d"
    d: int = 2
    use_ledger: bool = False

    def __post_init__(self) -> None:
        if not (isinstance(self.d, int) and not isinstance(self.d, bool) and self.d >= 1):
            raise ValueError(f"power_of_d: d must be an integer >= 1, got {self.d!r}")
        _check_bool("use_ledger", self.use_ledger)

    def choose(
        self, view: FleetView, request: PlacementRequest, rng: np.random.Generator
    ) -> IntArray:
        candidates = sample_candidates(request.eligible, self.d, rng)
        return pick_min(_current_stress(view, self.use_ledger), candidates, rng)


@register_policy
@dataclass
class RegionAware(Policy):
    """Least expected stress within the participant's region, anywhere when the region is full."""

    name = "region_aware"
    use_ledger: bool = True

    def __post_init__(self) -> None:
        _check_bool("use_ledger", self.use_ledger)

    def choose(
        self, view: FleetView, request: PlacementRequest, rng: np.random.Generator
    ) -> IntArray:
        projected = np.max((view.expected_load + request.cost) / view.limit, axis=-1)
        fits = request.eligible & (projected < 1.0)
        in_region = prefer_region(view, request, fits)
        in_region = np.where(in_region.any(axis=1, keepdims=True), in_region,
                             prefer_region(view, request, request.eligible))
        return pick_min(_current_stress(view, self.use_ledger), in_region, rng)


@register_policy
@dataclass
class FillFirst(Policy):
    """Pack: the most loaded bridge that still fits the join below ``fill_limit`` stress.

    Uses the fewest bridges (bridge-hours), at the price of running bridges hot.
    """

    name = "fill_first"
    fill_limit: float = 0.9

    def __post_init__(self) -> None:
        if not (isinstance(self.fill_limit, int | float) and 0 < self.fill_limit <= 1):
            raise ValueError(f"fill_first: fill_limit must be in (0, 1], got {self.fill_limit!r}")

    def choose(
        self, view: FleetView, request: PlacementRequest, rng: np.random.Generator
    ) -> IntArray:
        projected = np.max((view.expected_load + request.cost) / view.limit, axis=-1)
        fits = request.eligible & (projected < self.fill_limit)
        packed = pick_min(-view.expected_stress, fits, rng)
        fallback = pick_min(projected, request.eligible, rng)
        return np.where(packed == NO_BRIDGE, fallback, packed)


@register_policy
@dataclass
class RoundRobin(Policy):
    """The next eligible bridge after the previous choice, cycling; ignores load."""

    name = "round_robin"
    _cursor: IntArray = field(default_factory=lambda: np.zeros(0, dtype=np.int64), repr=False)

    def reset(self, replicas: int) -> None:
        self._cursor = np.zeros(replicas, dtype=np.int64)

    def state(self) -> dict[str, Any]:
        return {"cursor": self._cursor.tolist()}

    def restore(self, state: dict[str, Any]) -> None:
        self._cursor = np.asarray(state.get("cursor", []), dtype=np.int64)

    def choose(
        self, view: FleetView, request: PlacementRequest, rng: np.random.Generator
    ) -> IntArray:
        if self._cursor.shape != (view.replicas,):
            self.reset(view.replicas)
        bridges = view.bridges
        if bridges == 0:
            return np.full(view.replicas, NO_BRIDGE, dtype=np.int64)
        order = (np.arange(bridges)[None, :] - self._cursor[:, None]) % bridges
        score = np.where(request.eligible, order, bridges)
        choice: IntArray = score.argmin(axis=1).astype(np.int64)
        found = request.eligible.any(axis=1)
        choice[~found] = NO_BRIDGE
        self._cursor = np.where(found, (choice + 1) % bridges, self._cursor)
        return choice


@register_policy
@dataclass
class Random(Policy):
    """Uniform over eligible bridges (LiveKit's default `any` + `random`); ignores load."""

    name = "random"

    def choose(
        self, view: FleetView, request: PlacementRequest, rng: np.random.Generator
    ) -> IntArray:
        return pick_random(request.eligible, rng)
