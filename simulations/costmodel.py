"""True load of rooms on bridges, built on core's stream counting and ``CostTable``.

Rules:
- Stream costs (CPU per packet, kbps, last-N) come from core's ``CostTable``: the forecast the
  balancer charges to its ledger and the load the simulator treats as the truth use the same
  numbers, so a calibration changes both at once.
- A room on one bridge costs exactly core's ``room_streams``. A room split over k bridges
  (relay, DESIGN §3): each of its n_b local members receives min(N-1, last_n) streams, each
  local publisher is forwarded once to every other bridge of the room (n_b·(k-1) relay egress),
  and the bridge receives every remote publisher once (min(N-n_b, last_n) relay ingress).
- Calibration JSON (written by bench/bridge_forwarding.py): an object whose keys are
  ``CostTable`` field names, at the top level or under ``"cost_table"``. Unknown keys are
  logged at INFO and ignored, so the benchmark may add fields without breaking the simulator.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from sfu_balancer.core import CostTable
from sfu_balancer.core.load import FloatArray, room_streams

from .rooms import rooms_load

log = logging.getLogger(__name__)
COST_KEYS = tuple(f.name for f in fields(CostTable))


def load_calibration(path: str | Path) -> dict[str, Any]:
    """The CostTable fields found in a calibration JSON; unknown keys are logged and dropped."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"calibration {str(path)!r}: cannot read a JSON object: {exc}") from None
    if isinstance(data, dict) and isinstance(data.get("cost_table"), dict):
        data = data["cost_table"]
    if not isinstance(data, dict):
        raise ValueError(f"calibration {str(path)!r} must hold a JSON object with CostTable "
                         f"keys {list(COST_KEYS)}")
    unknown = sorted(set(data) - set(COST_KEYS))
    if unknown:
        log.info("calibration %s: ignoring keys %s (known: %s)", path, unknown, list(COST_KEYS))
    return {k: v for k, v in data.items() if k in COST_KEYS}


@dataclass(frozen=True)
class CostModel:
    table: CostTable
    # single_load[n] = room_load of a room of n members on one bridge, n = 0..128 (fast path).
    single_load: FloatArray = field(init=False, repr=False, compare=False)
    # (last_n, cpu per egress stream, cpu per ingress stream, Mbps per stream): the compiled
    # passes' copy of the table (``rooms.room_load``).
    params: FloatArray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        egress, ingress = room_streams(np.arange(129), self.table.last_n)
        object.__setattr__(self, "single_load", self.table.streams_to_load(egress, ingress))
        object.__setattr__(self, "params", self.table.kernel_params())

    @classmethod
    def from_scenario(cls, raw: dict[str, Any], base: Path | None = None) -> CostModel:
        """``[costs]``: CostTable keys, plus ``calibration`` (a JSON path relative to ``base``).
        Keys written in the scenario win over the calibration's."""
        values = dict(raw)
        calibration = values.pop("calibration", None)
        merged: dict[str, Any] = {}
        if calibration is not None:
            if not isinstance(calibration, str):
                raise ValueError(f"costs.calibration must be a path string, got {calibration!r}")
            merged.update(load_calibration((base or Path.cwd()) / calibration))
        merged.update(values)
        if "last_n" in merged and isinstance(merged["last_n"], float) \
                and merged["last_n"].is_integer():
            merged["last_n"] = int(merged["last_n"])
        return cls(CostTable.from_mapping(merged))

    def room_load(self, members: np.ndarray) -> FloatArray:
        """True load (..., B, 3) of rooms with ``members`` (..., B) on each bridge
        (``rooms.room_load``, the engine's own rule)."""
        n = np.asarray(members, dtype=np.float64)
        flat = np.ascontiguousarray(n.reshape(-1, n.shape[-1]))
        result: FloatArray = rooms_load(flat, self.params).reshape(*n.shape, 3)
        return result
