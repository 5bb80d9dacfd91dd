"""Per-replica accumulators -> summary rows and time series.

Rules:
- ``overload_bridge_s``: sum over bridges of the seconds with TRUE stress >= 1 (DESIGN §5),
  counted per tick × tick_s, after ``warmup_s``.
- ``peak_stress`` and ``p99_stress``: over (bridge, tick) samples of live bridges after warmup;
  p99 comes from a histogram of 0.005-wide bins (exact to one bin), so memory stays O(R).
- ``bridge_hours``: bridges paid for (provisioning, serving or draining) × time.
- ``split_conferences``: rooms that were ever on more than one bridge; ``migrations``: room
  portions moved (rebalance or drain), ``migrated_participants`` the people in them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from sfu_balancer.core.model import REASON_CODES

from . import kernels

BIN = 0.005
BINS = 1000  # 0 .. 5.0, plus an overflow bin
# Ticks of bins queued before they are counted: each flush touches a row's histogram once,
# not once per tick (the (R, BINS) histogram is far larger than the caches).
QUEUE = 64
SUMMARY_COLUMNS = (
    "policy", "seed", "joins", "rejected_joins", "overload_bridge_s", "peak_stress",
    "p99_stress", "split_conferences", "migrations", "bridge_hours", "rejoins",
    "migrated_participants", "mean_participants", "mean_bridge_stress", "max_bridges_up",
)
SERIES_COLUMNS = ("t_s", "policy", "seed", "participants", "bridges_up", "max_stress",
                  "mean_stress", "overloaded_bridges", "rejected_joins", "utilization")


@dataclass
class Metrics:
    replicas: int
    bridges: int
    joins: np.ndarray = field(init=False)
    rejected: np.ndarray = field(init=False)
    rejoins: np.ndarray = field(init=False)
    overload_s: np.ndarray = field(init=False)
    peak: np.ndarray = field(init=False)
    counts: np.ndarray = field(init=False)  # (R, BINS + 1) counted bins; read ``hist``
    queue: np.ndarray = field(init=False)  # (QUEUE, R, B) bins of the last ticks, -1 = none
    queued: int = 0
    splits: np.ndarray = field(init=False)
    migrations: np.ndarray = field(init=False)
    migrated: np.ndarray = field(init=False)
    bridge_s: np.ndarray = field(init=False)
    participant_s: np.ndarray = field(init=False)
    stress_sum: np.ndarray = field(init=False)
    stress_samples: np.ndarray = field(init=False)
    max_up: np.ndarray = field(init=False)
    reasons: np.ndarray = field(init=False)
    measured_s: float = 0.0
    series: list[np.ndarray] = field(default_factory=list)
    series_t: list[float] = field(default_factory=list)
    bridge_series: list[np.ndarray] = field(default_factory=list)

    def __post_init__(self) -> None:
        r = self.replicas
        for name in ("joins", "rejected", "rejoins", "splits", "migrations", "migrated",
                     "max_up"):
            setattr(self, name, np.zeros(r, dtype=np.int64))
        for name in ("overload_s", "bridge_s", "participant_s", "stress_sum",
                     "stress_samples"):
            setattr(self, name, np.zeros(r))
        self.peak = np.zeros(r)
        self.counts = np.zeros((r, BINS + 1), dtype=np.int64)
        self.queue = np.full((QUEUE, r, self.bridges), -1, dtype=np.int16)
        self.reasons = np.zeros((r, len(REASON_CODES)), dtype=np.int64)

    def sample(self, true_load: np.ndarray, limit: np.ndarray, state: np.ndarray,
               participants: np.ndarray, dt: float, measure: bool, stress: np.ndarray,
               rowstat: np.ndarray) -> None:
        """One tick: clamps ``true_load`` (R, B, 3) at 0 and writes its stress into ``stress``
        and the series figures into ``rowstat`` (kernels.sample); with ``measure`` (after
        warmup) accumulates live bridges' stress and bridge-hours over ``dt``."""
        if measure:
            self.measured_s += dt
            if self.queued == QUEUE:
                self.flush()
        kernels.sample(true_load, limit, state, participants, dt, measure, BIN, BINS, stress,
                       rowstat, self.overload_s, self.peak, self.stress_sum,
                       self.stress_samples, self.queue[self.queued % QUEUE], self.bridge_s,
                       self.max_up, self.participant_s)
        self.queued += measure

    def flush(self) -> None:
        """Count the queued bins into ``counts``."""
        kernels.count_bins(self.queue, self.queued, self.counts)
        self.queued = 0

    @property
    def hist(self) -> np.ndarray:
        """(R, BINS + 1) samples of live bridges' true stress per 0.005-wide bin."""
        self.flush()
        return self.counts

    def p99(self) -> np.ndarray:
        cum = np.cumsum(self.hist, axis=1)
        total = cum[:, -1:]
        idx = np.argmax(cum >= np.maximum(np.ceil(0.99 * total), 1), axis=1)
        result: np.ndarray = np.where(total[:, 0] > 0, (idx + 1) * BIN, 0.0)
        return result

    def summary(self, policies: list[str], seeds: int) -> list[dict[str, object]]:
        p99 = self.p99()
        span = max(self.measured_s, 1e-9)
        rows = []
        for r in range(self.replicas):
            rows.append({
                "policy": policies[r // seeds], "seed": r % seeds,
                "joins": int(self.joins[r]), "rejected_joins": int(self.rejected[r]),
                "overload_bridge_s": round(float(self.overload_s[r]), 3),
                "peak_stress": round(float(self.peak[r]), 4),
                "p99_stress": round(float(p99[r]), 4),
                "split_conferences": int(self.splits[r]),
                "migrations": int(self.migrations[r]),
                "bridge_hours": round(float(self.bridge_s[r]) / 3600.0, 3),
                "rejoins": int(self.rejoins[r]),
                "migrated_participants": int(self.migrated[r]),
                "mean_participants": round(float(self.participant_s[r]) / span, 3),
                "mean_bridge_stress": round(float(self.stress_sum[r]
                                                  / max(self.stress_samples[r], 1)), 5),
                "max_bridges_up": int(self.max_up[r]),
            })
        return rows
