"""The bridges this balancer instance knows, their links, reports and states.

Rules:
- Bridges keep their position once seen, so the core's bridge indices (and the ledger's)
  stay stable; a bridge that leaves or fails stays listed as ``failed`` until it returns.
- A report's ``measured_at`` is on the bridge's monotonic clock. It is moved onto ours with
  the smallest (received - measured) offset seen on the link: on a link with variable delay
  the smallest offset is the one closest to the true clock difference.
- Failure: the link drops, or no report for ``failed_after_s``. A failed bridge comes back as
  ``serving`` only by dialing in again with a new hello.
- ``table`` (core's FleetTable) mirrors every info and report change at once, so snapshots and
  views come from arrays kept current per report rather than from a pass over the bridges per
  join. ``fresh_reports`` collects the report times not yet given to the ledger.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from sfu_balancer import wire
from sfu_balancer.core import (
    BridgeInfo,
    BridgeState,
    Capacity,
    FleetSnapshot,
    FleetTable,
    FleetView,
    LedgerRows,
    LoadReport,
    RoutingConfig,
    Thresholds,
    stress,
)

from .bridge_link import BridgeLink, report_fields


@dataclass
class BridgeEntry:
    info: BridgeInfo
    pid: int
    link: BridgeLink | None = None
    report: LoadReport | None = None
    clock_offset: float | None = None
    last_report_at: float = float("-inf")

    @property
    def alive(self) -> bool:
        return self.link is not None and self.info.state is not BridgeState.FAILED


class Fleet:
    def __init__(self, report_interval_s: float, failed_after_s: float) -> None:
        self.report_interval_s = report_interval_s
        self.failed_after_s = failed_after_s
        self.entries: dict[str, BridgeEntry] = {}  # insertion order = core index order
        self.reserved: set[str] = set()  # ids of accepted hellos not attached yet
        self.table = FleetTable(report_interval_s)
        self.fresh_reports: dict[str, float] = {}  # bridge -> measured_at, for LiveLedger.settle

    def connected(self, bridge_id: str) -> bool:
        """A link holds this id, or a hello for it is being attached (``reserve``)."""
        if bridge_id in self.reserved:
            return True
        entry = self.entries.get(bridge_id)
        return entry is not None and entry.link is not None and not entry.link.closed.is_set()

    def reserve(self, bridge_id: str) -> bool:
        """Claim ``bridge_id`` for a hello before any await; False if it is connected. The
        claim ends at ``attach`` or ``unreserve``."""
        if self.connected(bridge_id):
            return False
        self.reserved.add(bridge_id)
        return True

    def unreserve(self, bridge_id: str) -> None:
        self.reserved.discard(bridge_id)

    def attach(self, link: BridgeLink, drain_deadline: float | None) -> BridgeEntry:
        hello = link.hello
        capacity = Capacity(hello.capacity.cpu, hello.capacity.egress_mbps,
                            hello.capacity.ingress_mbps)
        state = BridgeState.DRAINING if drain_deadline is not None else BridgeState.SERVING
        info = BridgeInfo(hello.id, hello.host, hello.region, hello.version, capacity, state,
                          drain_deadline)
        entry = BridgeEntry(info=info, pid=hello.pid, link=link)
        self.entries[hello.id] = entry
        self.table.put_bridge(info, drop_report=True)  # the new entry has no report yet
        self.reserved.discard(hello.id)
        return entry

    def detach(self, link: BridgeLink) -> bool:
        """The link closed. True if it was the bridge's current link (so the bridge is lost)."""
        entry = self.entries.get(link.bridge_id)
        if entry is None or entry.link is not link:
            return False
        entry.link = None
        return True

    def mark_failed(self, bridge_id: str) -> bool:
        entry = self.entries[bridge_id]
        if entry.info.state is BridgeState.FAILED:
            return False
        entry.info = replace(entry.info, state=BridgeState.FAILED, drain_deadline=None)
        self.table.put_bridge(entry.info)
        return True

    def set_drain(self, bridge_id: str, deadline: float | None) -> None:
        entry = self.entries[bridge_id]
        if entry.info.state is BridgeState.FAILED:
            return
        state = BridgeState.SERVING if deadline is None else BridgeState.DRAINING
        entry.info = replace(entry.info, state=state, drain_deadline=deadline)
        self.table.put_bridge(entry.info)

    def on_report(self, bridge_id: str, report: wire.Report, now: float) -> LoadReport:
        entry = self.entries[bridge_id]
        offset = now - report.measured_at
        if entry.clock_offset is None or offset < entry.clock_offset:
            entry.clock_offset = offset
        measured = min(report.measured_at + entry.clock_offset, now)
        entry.report = LoadReport(bridge_id, measured, **report_fields(report))
        entry.last_report_at = now
        self.table.put_report(entry.report)
        self.fresh_reports[bridge_id] = measured
        return entry.report

    def stress(self, bridge_id: str, thresholds: Thresholds) -> float | None:
        """The core's stress of the bridge's latest report (None before its first)."""
        entry = self.entries[bridge_id]
        if entry.report is None:
            return None
        return float(stress(np.array(entry.report.load_vector()),
                            np.array(entry.info.capacity.as_tuple()), thresholds))

    def silent(self, now: float) -> list[str]:
        """Live bridges whose reports stopped for ``failed_after_s``."""
        return [b for b, e in self.entries.items()
                if e.alive and now - e.last_report_at > self.failed_after_s]

    def take_fresh_reports(self) -> dict[str, float]:
        """Report times (bridge -> measured_at) received since the last call, for the ledger."""
        fresh, self.fresh_reports = self.fresh_reports, {}
        return fresh

    def refresh_all_reports(self) -> None:
        """Every bridge's latest report counts as fresh again (a new ledger has seen none)."""
        self.fresh_reports = {b: e.report.measured_at for b, e in self.entries.items()
                              if e.report is not None}

    def snapshot(self, now: float) -> FleetSnapshot:
        return self.table.snapshot(now)

    def view(self, now: float, ledger: LedgerRows | None, config: RoutingConfig) -> FleetView:
        """core's ``build_view(self.snapshot(now), ledger, config)``, from the table."""
        return self.table.view(now, ledger, config)

    def link(self, bridge_id: str) -> BridgeLink | None:
        entry = self.entries.get(bridge_id)
        return entry.link if entry is not None and entry.alive else None

    def serving(self) -> list[str]:
        return [b for b, e in self.entries.items()
                if e.alive and e.info.state is BridgeState.SERVING]
