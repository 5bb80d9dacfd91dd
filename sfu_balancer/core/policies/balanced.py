"""``balanced``: the default policy.

How it scores an eligible bridge for one join:
1. expected load = last report + pending ledger + this join's forecast cost, over CPU and
   bandwidth (stress is the max of both, so a full NIC counts);
2. age-aware reading (Dahlin 2000): a report older than ``stale_after_intervals`` report
   intervals adds ``age_penalty`` stress per further interval, so a silent bridge looks riskier
   rather than idle;
3. headroom: ``headroom`` × the forecast load of the room's expected growth is reserved, so a
   room likely to grow is not squeezed onto an almost full bridge;
4. candidates: bridges that fit with headroom, else bridges that fit, else any eligible; the
   participant's region first;
5. on fleets larger than ``sample_above``, only ``d`` random candidates are compared: with
   stale reports, d-choice avoids the herd (Mitzenmacher 2000);
6. the lowest score wins, ties at random.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..load import FloatArray
from . import kernels
from .base import Policy
from .registry import register_policy


@register_policy
@dataclass
class Balanced(Policy):
    name = "balanced"
    kind = kernels.BALANCED
    headroom: float = 0.5
    d: int = 3
    sample_above: int = 64
    stale_after_intervals: float = 2.0
    age_penalty: float = 0.05

    def __post_init__(self) -> None:
        checks = {
            "headroom": isinstance(self.headroom, int | float) and 0 <= self.headroom <= 1,
            "d": isinstance(self.d, int) and not isinstance(self.d, bool) and self.d >= 1,
            "sample_above": isinstance(self.sample_above, int) and self.sample_above >= 1,
            "stale_after_intervals": isinstance(self.stale_after_intervals, int | float)
            and self.stale_after_intervals >= 0,
            "age_penalty": isinstance(self.age_penalty, int | float) and self.age_penalty >= 0,
        }
        forms = {
            "headroom": "a number in [0, 1]",
            "d": "an integer >= 1",
            "sample_above": "an integer >= 1",
            "stale_after_intervals": "a number >= 0",
            "age_penalty": "a number >= 0",
        }
        for key, ok in checks.items():
            if not ok:
                raise ValueError(
                    f"balanced: {key} must be {forms[key]}, got {getattr(self, key)!r}"
                )

    def kernel_params(self) -> FloatArray:
        return np.array([self.headroom, self.d, self.sample_above, self.stale_after_intervals,
                         self.age_penalty], dtype=np.float64)

    def draws(self) -> int:
        return self.d
