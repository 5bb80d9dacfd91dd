"""Baseline policies: the reference points every comparison needs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..load import FloatArray, IntArray
from . import kernels
from .base import Policy
from .registry import register_policy


def _check_bool(name: str, value: object) -> None:
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be true or false, got {value!r}")


@register_policy
@dataclass
class LeastLoaded(Policy):
    """The eligible bridge with the least stress in its last report (ties at random).

    With stale reports every join of an interval lands on the same bridge: the herding that
    Mitzenmacher (2000) describes. ``use_ledger`` adds pending placements to the reports.
    """

    name = "least_loaded"
    kind = kernels.LEAST_LOADED
    use_ledger: bool = False

    def __post_init__(self) -> None:
        _check_bool("use_ledger", self.use_ledger)

    def kernel_params(self) -> FloatArray:
        return np.array([float(self.use_ledger)])


@register_policy
@dataclass
class PowerOfD(Policy):
    """Best of ``d`` eligible bridges sampled uniformly (Azar et al.; LiveKit's `twochoice`)."""

    name = "power_of_d"
    kind = kernels.POWER_OF_D
    d: int = 2
    use_ledger: bool = False

    def __post_init__(self) -> None:
        if not (isinstance(self.d, int) and not isinstance(self.d, bool) and self.d >= 1):
            raise ValueError(f"power_of_d: d must be an integer >= 1, got {self.d!r}")
        _check_bool("use_ledger", self.use_ledger)

    def kernel_params(self) -> FloatArray:
        return np.array([float(self.d), float(self.use_ledger)])

    def draws(self) -> int:
        return self.d


@register_policy
@dataclass
class RegionAware(Policy):
    """Least expected stress within the participant's region, anywhere when the region is full."""

    name = "region_aware"
    kind = kernels.REGION_AWARE
    use_ledger: bool = True

    def __post_init__(self) -> None:
        _check_bool("use_ledger", self.use_ledger)

    def kernel_params(self) -> FloatArray:
        return np.array([float(self.use_ledger)])


@register_policy
@dataclass
class FillFirst(Policy):
    """Pack: the most loaded bridge that still fits the join below ``fill_limit`` stress.

    Uses the fewest bridges (bridge-hours), at the price of running bridges hot.
    """

    name = "fill_first"
    kind = kernels.FILL_FIRST
    fill_limit: float = 0.9

    def __post_init__(self) -> None:
        if not (isinstance(self.fill_limit, int | float) and 0 < self.fill_limit <= 1):
            raise ValueError(f"fill_first: fill_limit must be in (0, 1], got {self.fill_limit!r}")

    def kernel_params(self) -> FloatArray:
        return np.array([float(self.fill_limit)])


@register_policy
@dataclass
class RoundRobin(Policy):
    """The next eligible bridge after the previous choice, cycling; ignores load.

    Each row starts at a uniformly random eligible bridge (drawn from the call's ``rng``), not
    at bridge 0, so starts are never decided by bridge index; the cycle then follows. The
    cursor (-1 = no pick yet) is per row and part of ``state()`` for replays.
    """

    name = "round_robin"
    kind = kernels.ROUND_ROBIN
    _cursor: IntArray = field(default_factory=lambda: np.zeros(0, dtype=np.int64), repr=False)

    def reset(self, replicas: int) -> None:
        self._cursor = np.full(replicas, -1, dtype=np.int64)

    def state(self) -> dict[str, Any]:
        return {"cursor": self._cursor.tolist()}

    def restore(self, state: dict[str, Any]) -> None:
        self._cursor = np.asarray(state.get("cursor", []), dtype=np.int64)

    def kernel_state(self, replicas: int) -> IntArray:
        """The cursor, updated in place by the kernel; rows are indexed by replica, so a call
        on a subset of rows (the simulator's joins) moves only those rows' cursors."""
        if self._cursor.shape != (replicas,):
            self.reset(replicas)
        return self._cursor


@register_policy
@dataclass
class Random(Policy):
    """Uniform over eligible bridges (LiveKit's default `any` + `random`); ignores load."""

    name = "random"
    kind = kernels.RANDOM
