"""A live fleet kept as arrays, changed per event, so that a join's view costs a few array
copies instead of a Python pass over every bridge and report.

Rules:
- Column i is the i-th bridge put; bridges keep their column (``put_bridge`` on a known id
  replaces its info in place), as the fleet view's and the ledger's indices must stay stable.
- ``view`` gives exactly what ``build_view`` gives on ``snapshot`` at the same ``now``: the same
  load vectors (``LoadReport.load_vector``), ages, availability, capacities and region codes.
  A test checks this over random sequences of events.
- Snapshots share one ``FleetLayout`` until the bridge list changes; their report mapping is a
  copy, so a snapshot taken before an ``await`` does not change under the caller.
"""

from __future__ import annotations

import numpy as np

from .config import RoutingConfig
from .decide import FleetLayout, FleetSnapshot
from .ledger import LedgerRows
from .load import FloatArray, IntArray, Thresholds
from .model import BridgeInfo, BridgeState, LoadReport
from .policies.base import BoolArray, FleetView


class FleetTable:
    def __init__(self, report_interval_s: float = 1.0) -> None:
        if not report_interval_s > 0:
            raise ValueError(f"fleet table: report_interval_s must be > 0, got "
                             f"{report_interval_s!r}")
        self.report_interval_s = float(report_interval_s)
        self._bridges: list[BridgeInfo] = []
        self._reports: dict[str, LoadReport] = {}
        self._index: dict[str, int] = {}
        self._load = np.zeros((0, 3))
        self._measured_at = np.zeros(0)  # -inf: no report yet (an infinite age, unavailable)
        self._layout: FleetLayout | None = None
        self._static: tuple[FloatArray, IntArray, BoolArray, BoolArray] | None = None
        self._limits: tuple[Thresholds, FloatArray, FloatArray] | None = None

    def __len__(self) -> int:
        return len(self._bridges)

    def put_bridge(self, info: BridgeInfo, *, drop_report: bool = False) -> int:
        """Add ``info``, or replace the info of the bridge with its id; its column. With
        ``drop_report`` the bridge's last report stops counting (one that dialed in again
        reports afresh): it is unavailable until its next report."""
        column = self._index.get(info.id)
        if column is None:
            column = len(self._bridges)
            self._bridges.append(info)
            self._index[info.id] = column
            self._load = np.concatenate([self._load, np.zeros((1, 3))])
            self._measured_at = np.append(self._measured_at, -np.inf)
        else:
            self._bridges[column] = info
        if drop_report:
            self._reports.pop(info.id, None)
            self._load[column] = 0.0
            self._measured_at[column] = -np.inf
        self._layout = self._static = self._limits = None
        return column

    def put_report(self, report: LoadReport) -> None:
        column = self._index.get(report.bridge_id)
        if column is None:
            raise ValueError(f"fleet table: report for unknown bridge {report.bridge_id!r}")
        self._reports[report.bridge_id] = report
        self._load[column] = report.load_vector()
        self._measured_at[column] = report.measured_at

    @property
    def layout(self) -> FleetLayout:
        if self._layout is None:
            self._layout = FleetLayout(tuple(self._bridges))
        return self._layout

    def snapshot(self, now: float) -> FleetSnapshot:
        layout = self.layout
        return FleetSnapshot(layout.bridges, dict(self._reports), now, self.report_interval_s,
                             layout=layout)

    def view(self, now: float, ledger: LedgerRows | None, config: RoutingConfig) -> FleetView:
        """``build_view(self.snapshot(now), ledger, config)``, from the arrays."""
        capacity, region, not_failed, serving = self._static_arrays()
        count = len(self._bridges)
        age = np.maximum(now - self._measured_at, 0.0).reshape(1, count)
        available = np.isfinite(age) & not_failed
        load = self._load.reshape(1, count, 3).copy()
        if ledger is not None and ledger.bridges == count:
            pending, recent = ledger.pending(), ledger.recent_counts(now)
        else:
            pending, recent = np.zeros_like(load), np.zeros((1, count))
        thresholds = config.thresholds
        if self._limits is None or self._limits[0] != thresholds:
            limit = capacity * thresholds.as_array()
            self._limits = (thresholds, limit, 1.0 / limit)
        # copies: a view is a snapshot its holder may keep across later events
        view = FleetView(load=load, pending=pending, capacity=capacity.copy(), report_age=age,
                         available=available, open_for_new=available & serving,
                         region=region.copy(), recent_placements=recent, thresholds=thresholds,
                         report_interval_s=self.report_interval_s)
        return view.with_limits(self._limits[1].copy(), self._limits[2].copy())

    def _static_arrays(self) -> tuple[FloatArray, IntArray, BoolArray, BoolArray]:
        """Arrays that change only with the bridge list: capacity, region codes, and which
        bridges are not failed / serving."""
        if self._static is None:
            count = len(self._bridges)
            regions = self.layout.regions
            self._static = (
                np.array([b.capacity.as_tuple() for b in self._bridges],
                         dtype=np.float64).reshape(count, 3),
                np.array([regions[b.region] for b in self._bridges], dtype=np.int64),
                np.array([[b.state is not BridgeState.FAILED for b in self._bridges]], bool
                         ).reshape(1, count),
                np.array([[b.state is BridgeState.SERVING for b in self._bridges]], bool
                         ).reshape(1, count))
        return self._static
