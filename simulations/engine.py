"""Tick engine, vectorised over replicas = seeds × policies; every decision is core's.

Rules:
- Replica rows are policy-major: rows [g·S, (g+1)·S) run policy g on seeds 0..S-1, so every
  policy sees the same workload per seed. Each policy group has its own core ``PendingLedger``
  and random generator, and core's placement kernel runs on the group's rows only.
- One tick at ``now`` = end of the tick, in this order: provisioned bridges come up, due
  bridges report (noise, delay), the ledger settles on what the balancer sees, scheduled
  failures/drains and autoscaling act, the tick's joins (re-joins first) are admitted and
  placed by one call of core's placement kernel per group (``joins.place_tick``: admission tiers,
  room rules and policy, in order within each row), leaves apply, metrics sample the true
  stress, then drains and rebalancing migrate (core ``drain_moves``/``rebalance_moves``, the
  array form of ``plan_drain``/``plan_rebalance``).
- All joins of a tick see the same (stale) reports, as live; but core charges each
  placement's forecast cost before the next join of its row, and the tick's placements are
  then added to the group's ledger (``ledger.add``) for the ticks after.
- ``members`` (R, slots, B) counts each room's members per bridge; ``where`` (R, sessions)
  remembers each session's bridge (-1 = not connected) by session slot, so leaves and moves hit
  the right one, and ``tag`` (R, sessions) its room and member (kernels.py). Both are a few MB:
  the (room slot, member) form of ``where`` was 100 times larger, and every join and leave
  missed the caches on it.
- The loop over ticks is Python; each step within a tick is one compiled pass over every
  replica (``kernels``, ``rooms``, ``joins.join_tick``, core's ledger passes) that touches
  only the tick's events or sweeps the (R, B) fleet once. A seed gives the same run every
  time; the true load is the sum of room loads up to float rounding (``rooms``).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from tqdm import tqdm

from sfu_balancer.core import PendingLedger, RoutingConfig
from sfu_balancer.core._place import utilization_rows
from sfu_balancer.core.load import Thresholds
from sfu_balancer.core.policies import FleetView, Policy

from . import kernels
from .fleet import DRAINING, FAILED, SERVING, Fleet
from .generator_cell import generator_cell
from .joins import KernelInputs, place_tick
from .metrics import Metrics
from .moves import apply_failure, migrate
from .scenario import FleetEvent, Scenario
from .schedule import Schedule


@dataclass
class Group:
    """One policy's rows and the core objects that route them."""

    name: str
    rows: slice
    policy: Policy
    config: RoutingConfig
    ledger: PendingLedger
    rng: np.random.Generator
    last_rebalanced: np.ndarray  # (S, B)
    extra: tuple[np.ndarray, ...]  # (row, slot, session, member) of the re-joins queued
    kernel: KernelInputs  # what core's placement kernel reads of the group (joins.py)
    stateless: bool = True  # the policy keeps no per-row state: it may run on a row subset
    # the config's thresholds, read every tick (views, utilization): built once, not per read
    thresholds: Thresholds = field(init=False)
    threshold_array: np.ndarray = field(init=False)
    rng_cell: Any = field(init=False)  # ``rng`` for the compiled join tick (generator_cell.py)

    def __post_init__(self) -> None:
        self.thresholds = self.config.thresholds
        self.threshold_array = self.thresholds.as_array()
        self.rng_cell = generator_cell(self.rng)


class Engine:
    def __init__(self, scenario: Scenario, schedule: Schedule, policies: list[str],
                 seed: int = 0) -> None:
        self.scenario, self.schedule = scenario, schedule
        self.policies = list(policies)
        self.seeds = schedule.seeds
        self.replicas = len(policies) * self.seeds
        root = np.random.default_rng([seed, 0xF1EE7])
        self.fleet = Fleet(scenario, self.replicas, self.seeds, root)
        self.noise_rng = np.random.default_rng([seed, 0x401CE])
        self.noise_cell = generator_cell(self.noise_rng)
        b = self.fleet.width
        self.costs = scenario.costs
        self.members = np.zeros((self.replicas, schedule.slots, b), dtype=np.int8)
        self.where = np.full((self.replicas, schedule.sessions), -1, np.int16)
        self.tag = np.zeros((self.replicas, schedule.sessions), np.int32)
        self.split = np.zeros((self.replicas, schedule.slots), dtype=np.bool_)
        self.count = np.zeros((self.replicas, b), dtype=np.int64)  # participants per bridge
        self.true_load = np.zeros((self.replicas, b, 3))
        # per row, the start of gather_joins's chain of that row's joins, -1 = none between
        # calls (kernels.gather_joins)
        self.head = np.full(self.replicas, -1, dtype=np.int64)
        self.metrics = Metrics(self.replicas, b)
        self.stress = np.zeros((self.replicas, b))  # true stress, as of the last sample
        self.rowstat = np.zeros((self.replicas, 5))  # kernels.sample's per-row series figures
        self.groups: list[Group] = []
        empty = np.zeros(0, dtype=np.int64)
        for g, name in enumerate(self.policies):
            config = scenario.config_for(name)
            policy = config.build_policy()
            policy.reset(self.seeds)
            self.groups.append(Group(
                name, slice(g * self.seeds, (g + 1) * self.seeds), policy, config,
                PendingLedger(self.seeds, b, config.rampup_s, config.recent_window_s),
                np.random.default_rng([seed, g]), np.full((self.seeds, b), -np.inf),
                (empty, empty, empty, empty),
                KernelInputs.build(policy, config, self.costs.table, self.seeds,
                                   self.fleet.capacity),
                stateless=type(policy).reset is Policy.reset))
        self.thresholds = self.groups[0].config.thresholds
        self.limit = self.fleet.capacity * self.thresholds.as_array()  # core's stress denominator
        self.events = list(scenario.events)
        self.series_every = max(1, int(schedule.ticks // 2000))
        self._rate: tuple[np.ndarray, np.ndarray] | None = None
        self._rate_bucket = -1
        self._tick_views: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

    # -- views --------------------------------------------------------------------------------
    def view(self, g: Group, now: float, seen: tuple[np.ndarray, np.ndarray],
             pending: np.ndarray | None = None, recent: np.ndarray | None = None,
             take: np.ndarray | None = None) -> FleetView:
        """The group's FleetView; ``take`` keeps only those group-local rows (rows never
        interact in core, so a stateless policy gives the same answer on a subset)."""
        load, at = seen
        available, open_new, age = self._views(at, now)
        rows: slice | np.ndarray = g.rows if take is None else g.rows.start + take
        pend = g.ledger.pending() if pending is None else pending
        rec = g.ledger.recent_counts(now) if recent is None else recent
        if take is not None:
            pend, rec = pend[take], rec[take]
        return FleetView(
            load=load[rows], pending=pend, capacity=self.fleet.capacity,
            report_age=age[rows], available=available[rows],
            open_for_new=open_new[rows], region=self.fleet.region, recent_placements=rec,
            thresholds=g.thresholds, report_interval_s=self.fleet.interval)

    def _views(self, at: np.ndarray, now: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``fleet.views``, computed once for the tick's joins and its series sample: nothing
        between them (joins, leaves, metrics) changes a bridge's state or reports."""
        if self._tick_views is None:
            return self.fleet.views(at, now)
        return self._tick_views

    def utilization(self, now: float, seen: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
        """(R,) core's fleet utilization of each row (``admission.fleet_utilization`` of the
        group's view, without building the parts of the view it does not read)."""
        load, at = seen
        available = self._views(at, now)[0]
        return np.concatenate([
            utilization_rows(load[g.rows], g.ledger.pending(), self.fleet.capacity,
                             g.threshold_array, available[g.rows])
            for g in self.groups])

    # -- the loop -----------------------------------------------------------------------------
    def run(self, progress: bool | None = None) -> Metrics:
        sched = self.schedule
        show = sys.stderr.isatty() if progress is None else progress
        bar = tqdm(total=sched.ticks, disable=not show, unit="tick", mininterval=0.5,
                   desc=self.scenario.name, leave=False)
        for k in range(sched.ticks):
            self.step(k)
            if k % 256 == 255:
                bar.update(256)
        bar.close()
        return self.metrics

    def step(self, k: int) -> None:
        sched, fleet, sim = self.schedule, self.fleet, self.scenario.sim
        now = (k + 1) * sched.tick_s
        fleet.bring_up(now)
        seen = fleet.report(now, self.true_load, self.noise_cell)
        for g in self.groups:
            g.ledger.settle(seen[1][g.rows], now)
        while self.events and self.events[0].at_s <= now:
            self.fleet_event(self.events.pop(0), now)
        if self.scenario.autoscale.enabled:
            util = self.utilization(now, seen)
            fleet.autoscale(self.scenario, now, util, self.true_load)
        joins = sched.joins.tick(k)
        # states and reports stay as they are now until the drains below (``_views``)
        self._tick_views = fleet.views(seen[1], now)
        for g_index, g in enumerate(self.groups):
            place_tick(self, g, g_index, now, seen, joins)
        self.leave(sched.leaves.tick(k))
        measure = now > sim.warmup_s
        self.metrics.sample(self.true_load, self.limit, fleet.state, self.count, sched.tick_s,
                            measure, self.stress, self.rowstat)
        if measure and k % self.series_every == 0:
            self.record(now, seen)
        self._tick_views = None
        draining = fleet.state == DRAINING
        if draining.any():
            due = draining & (fleet.drain_deadline <= now) & (self.count > 0)
            if due.any():
                migrate(self, now, seen, drain=True)
            fleet.retire_empty(self.count)
        every = sim.rebalance_every_s
        if every > 0 and int(now // every) != int((now - sched.tick_s) // every):
            migrate(self, now, seen, drain=False)

    def fleet_event(self, event: FleetEvent, now: float) -> None:
        b = event.bridge
        if event.action == "fail":
            apply_failure(self, b)
            self.fleet.state[:, b] = FAILED
            for g in self.groups:
                g.ledger.forget_bridge(b)
        else:
            serving = self.fleet.state[:, b] == SERVING
            self.fleet.state[serving, b] = DRAINING
            self.fleet.drain_deadline[serving, b] = now + event.deadline_s

    def leave(self, chunk: slice) -> None:
        leaves = self.schedule.leaves
        if chunk.stop == chunk.start:
            return
        kernels.leave_tick(leaves.seed, leaves.slot, leaves.session, chunk.start, chunk.stop,
                           len(self.groups), self.seeds, self.where, self.members, self.count,
                           self.true_load, self.costs.params)

    def record(self, now: float, seen: tuple[np.ndarray, np.ndarray]) -> None:
        """One series sample from the figures of the tick's ``metrics.sample``."""
        block = np.empty((self.replicas, self.rowstat.shape[1] + 2))
        block[:, :-2] = self.rowstat
        block[:, -2] = self.metrics.rejected
        block[:, -1] = self.utilization(now, seen)
        self.metrics.series_t.append(now)
        self.metrics.series.append(block)
        # Per-bridge true stress of seed 0 of each policy (NaN = not live), for the plot.
        state = self.fleet.state[::self.seeds]
        live = (state == SERVING) | (state == DRAINING)
        self.metrics.bridge_series.append(np.where(live, self.stress[::self.seeds], np.nan))

    # -- join-rate cap state: joins per (room, bridge) in this and the previous minute --------
    def rates(self, now: float) -> tuple[np.ndarray, np.ndarray]:
        """(this minute's, last minute's) joins per (row, slot, bridge); a room's recent joins
        are their sum (one to two minutes: a slight over-count, which only makes the cap
        stricter)."""
        bucket = int(now // 60.0)
        if self._rate is None or bucket != self._rate_bucket:
            shape = self.members.shape
            cur = np.zeros(shape, dtype=np.int16)
            prev = (self._rate[0] if self._rate is not None and bucket == self._rate_bucket + 1
                    else np.zeros(shape, dtype=np.int16))
            self._rate, self._rate_bucket = (cur, prev), bucket
        return self._rate
