"""A faithful baseline of Jicofo's default SingleBridgeSelectionStrategy (RESEARCH.md, Jitsi).

Its rules, kept on purpose even where they hurt:
- stress is CPU only; bandwidth is ignored. The bridge's ``stress_level`` is whole-host CPU
  divided by ``cpu_divisor`` = 0.9 (jitsi-videobridge since Nov 2024, RESEARCH.md "Load
  signal"). That 0.9 is not the overload threshold: Jicofo calls a bridge overloaded at stress
  >= 0.8 (RESEARCH.md "Corrected stress"; the issue's "overload threshold 0.8"), i.e. at
  0.72 of host CPU. ``SingleBridgeSelectionStrategy`` has no overload filter, so that threshold
  never changes its choice and is not a parameter here; the simulator measures overload with
  the shared ``Thresholds`` (0.8 of capacity) for every policy alike;
- corrected stress = reported + 0.01 × endpoints this selector placed in the last 20 s;
- the least corrected stress in the participant's region wins, anywhere if the region is empty;
- there is no overload filter: an overloaded bridge is still chosen when it is the least bad;
- a room never leaves its first bridge (``splits = False``).
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
class JicofoSingle(Policy):
    name = "jicofo_single"
    splits = False
    kind = kernels.JICOFO
    stress_per_recent_endpoint: float = 0.01
    cpu_divisor: float = 0.9  # stress_level = host CPU / 0.9 (JVB, RESEARCH.md); not the 0.8

    def __post_init__(self) -> None:
        if not (isinstance(self.stress_per_recent_endpoint, int | float)
                and self.stress_per_recent_endpoint >= 0):
            raise ValueError("jicofo_single: stress_per_recent_endpoint must be a number >= 0")
        if not (isinstance(self.cpu_divisor, int | float) and self.cpu_divisor > 0):
            raise ValueError("jicofo_single: cpu_divisor must be a number > 0")

    def kernel_params(self) -> FloatArray:
        return np.array([self.stress_per_recent_endpoint, self.cpu_divisor], dtype=np.float64)
