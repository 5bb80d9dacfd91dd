"""Tick engine, vectorised over replicas = seeds × policies; every decision is core's.

Rules:
- Replica rows are policy-major: rows [g·S, (g+1)·S) run policy g on seeds 0..S-1, so every
  policy sees the same workload per seed. Each policy group has its own core ``PendingLedger``
  and random generator, and core's ``place_sequence`` runs on the group's rows only.
- One tick at ``now`` = end of the tick, in this order: provisioned bridges come up, due
  bridges report (noise, delay), the ledger settles on what the balancer sees, scheduled
  failures/drains and autoscaling act, the tick's joins (re-joins first) are admitted and
  placed by one core ``place_sequence`` call per group (``joins.place_tick``: admission tiers,
  room rules and policy, in order within each row), leaves apply, metrics sample the true
  stress, then drains and rebalancing migrate (core ``plan_drain``/``plan_rebalance``).
- All joins of a tick see the same (stale) reports, as live; but core charges each
  placement's forecast cost before the next join of its row, and the tick's placements are
  then added to the group's ledger (``ledger.add``) for the ticks after.
- ``members`` (R, slots, B) counts each room's members per bridge; ``where`` (R, slots, M)
  remembers each session's bridge (-1 = not connected) so leaves and moves hit the right one.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from tqdm import tqdm

from sfu_balancer.core import PendingLedger, RoutingConfig, fleet_utilization, stress
from sfu_balancer.core.policies import FleetView, Policy

from .fleet import DRAINING, FAILED, SERVING, Fleet
from .joins import place_tick
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
    extra: tuple[np.ndarray, np.ndarray, np.ndarray]  # (row, slot, member) re-joins queued
    stateless: bool = True  # the policy keeps no per-row state: it may run on a row subset


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
        b = self.fleet.width
        self.costs = scenario.costs
        self.members = np.zeros((self.replicas, schedule.slots, b), dtype=np.int8)
        self.where = np.full((self.replicas, schedule.slots, schedule.members), -1, np.int16)
        self.split = np.zeros((self.replicas, schedule.slots), dtype=np.bool_)
        self.count = np.zeros((self.replicas, b), dtype=np.int64)  # participants per bridge
        self.true_load = np.zeros((self.replicas, b, 3))
        self.metrics = Metrics(self.replicas, b)
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
                (empty, empty, empty), stateless=type(policy).reset is Policy.reset))
        self.thresholds = self.groups[0].config.thresholds
        self.events = list(scenario.events)
        self.series_every = max(1, int(schedule.ticks // 2000))
        self._rate: tuple[np.ndarray, np.ndarray] | None = None
        self._rate_bucket = -1

    # -- views --------------------------------------------------------------------------------
    def view(self, g: Group, now: float, seen: tuple[np.ndarray, np.ndarray],
             pending: np.ndarray | None = None, recent: np.ndarray | None = None,
             take: np.ndarray | None = None) -> FleetView:
        """The group's FleetView; ``take`` keeps only those group-local rows (rows never
        interact in core, so a stateless policy gives the same answer on a subset)."""
        load, at = seen
        available, open_new = self.fleet.views(at)
        rows: slice | np.ndarray = g.rows if take is None else g.rows.start + take
        pend = g.ledger.pending() if pending is None else pending
        rec = g.ledger.recent_counts(now) if recent is None else recent
        if take is not None:
            pend, rec = pend[take], rec[take]
        return FleetView(
            load=load[rows], pending=pend, capacity=self.fleet.capacity,
            report_age=np.maximum(now - at[rows], 0.0), available=available[rows],
            open_for_new=open_new[rows], region=self.fleet.region, recent_placements=rec,
            thresholds=g.config.thresholds, report_interval_s=self.fleet.interval)

    def room_delta(self, rows: np.ndarray, slots: np.ndarray,
                   change: Callable[[], None]) -> None:
        """Apply ``change`` to rooms (rows, slots) (unique pairs) and update the true load."""
        before = self.costs.room_load(self.members[rows, slots])
        change()
        after = self.costs.room_load(self.members[rows, slots])
        np.add.at(self.true_load, rows, after - before)

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
        seen = fleet.report(now, self.true_load, self.noise_rng)
        for g in self.groups:
            g.ledger.settle(seen[1][g.rows], now)
        while self.events and self.events[0].at_s <= now:
            self.fleet_event(self.events.pop(0), now)
        if self.scenario.autoscale.enabled:
            util = np.concatenate([fleet_utilization(self.view(g, now, seen))
                                   for g in self.groups])
            fleet.autoscale(self.scenario, now, util, self.true_load)
        joins = sched.joins.tick(k)
        for g_index, g in enumerate(self.groups):
            place_tick(self, g, g_index, now, seen, joins)
        self.leave(sched.leaves.tick(k))
        np.maximum(self.true_load, 0.0, out=self.true_load)  # float drift of +/- updates
        true_stress = stress(self.true_load, fleet.capacity, self.thresholds)
        if now > sim.warmup_s:
            self.metrics.sample(true_stress, fleet.live, fleet.up, self.count, sched.tick_s)
            if k % self.series_every == 0:
                self.record(now, true_stress, seen)
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
        seed, slot, member = leaves.seed[chunk], leaves.slot[chunk], leaves.member[chunk]
        groups = len(self.groups)
        rows = (seed[None, :] + self.seeds * np.arange(groups)[:, None]).ravel()
        slot, member = np.tile(slot, groups), np.tile(member, groups)
        bridge = self.where[rows, slot, member].astype(np.int64)
        ok = bridge >= 0
        rows, slot, member, bridge = rows[ok], slot[ok], member[ok], bridge[ok]
        if rows.size == 0:
            return
        key = np.unique(rows.astype(np.int64) * self.schedule.slots + slot)
        u_rows, u_slots = key // self.schedule.slots, key % self.schedule.slots

        def change() -> None:
            np.add.at(self.members, (rows, slot, bridge), -1)
        self.room_delta(u_rows, u_slots, change)
        np.add.at(self.count, (rows, bridge), -1)
        self.where[rows, slot, member] = -1

    def record(self, now: float, true_stress: np.ndarray,
               seen: tuple[np.ndarray, np.ndarray]) -> None:
        live = self.fleet.live
        shown = np.where(live, true_stress, 0.0)
        util = np.concatenate([fleet_utilization(self.view(g, now, seen)) for g in self.groups])
        self.metrics.series_t.append(now)
        self.metrics.series.append(np.stack([
            self.count.sum(axis=1).astype(np.float64),
            self.fleet.up.sum(axis=1).astype(np.float64),
            shown.max(axis=1), shown.sum(axis=1) / np.maximum(live.sum(axis=1), 1),
            ((true_stress >= 1.0) & live).sum(axis=1).astype(np.float64),
            self.metrics.rejected.astype(np.float64), util], axis=1))
        # Per-bridge true stress of seed 0 of each policy (NaN = not live), for the plot.
        self.metrics.bridge_series.append(np.where(live, true_stress, np.nan)[::self.seeds])

    # -- join-rate cap state: joins per (room, bridge) in this and the previous minute --------
    def _roll(self, now: float) -> tuple[np.ndarray, np.ndarray]:
        bucket = int(now // 60.0)
        if self._rate is None or bucket != self._rate_bucket:
            shape = self.members.shape
            cur = np.zeros(shape, dtype=np.int16)
            prev = (self._rate[0] if self._rate is not None and bucket == self._rate_bucket + 1
                    else np.zeros(shape, dtype=np.int16))
            self._rate, self._rate_bucket = (cur, prev), bucket
        return self._rate

    def room_rate(self, rows: np.ndarray, slots: np.ndarray, now: float) -> np.ndarray:
        """Joins of each room to each bridge in the last one to two minutes (a slight
        over-count, which only makes the cap stricter)."""
        cur, prev = self._roll(now)
        result: np.ndarray = cur[rows, slots].astype(np.int64) + prev[rows, slots]
        return result

    def note_rate(self, rows: np.ndarray, slots: np.ndarray, bridges: np.ndarray,
                  now: float) -> None:
        np.add.at(self._roll(now)[0], (rows, slots, bridges), 1)
