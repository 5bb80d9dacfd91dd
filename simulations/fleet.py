"""Simulated fleet state: bridge lifecycle, load reports and autoscaling, over (R, B) arrays.

Rules:
- Columns are bridges; the bridge axis is allocated once at its maximum size (initial fleet +
  autoscaling headroom), so indices stay stable and core's ledger never needs to resize.
- Lifecycle per (replica, bridge): OFF -> PROVISIONING -> SERVING -> DRAINING -> OFF, and
  FAILED from any state. Only SERVING and DRAINING bridges that have reported are
  ``available``; only SERVING ones are ``open_for_new`` (core's meaning).
- Reports: each bridge measures its true load every ``report_interval_s`` at its own phase,
  with multiplicative Gaussian noise (one factor per report: ``kernels.report``); the
  balancer sees a report ``delay_s`` after it is measured (rounded to ticks). Report age =
  now - measured_at of the report it sees.
- Autoscaling belongs to the operator, not to routing: above ``scale_up_at`` core's
  ``fleet_utilization`` one bridge is provisioned (ready after ``provisioning_delay_s``);
  below ``scale_down_at`` the serving bridge with the least true load is drained.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import kernels
from .lifecycle import DRAINING, FAILED, OFF, PROVISIONING, SERVING
from .scenario import Scenario

__all__ = ["DRAINING", "FAILED", "OFF", "PROVISIONING", "SERVING", "Fleet"]


class Fleet:
    def __init__(self, scenario: Scenario, replicas: int, seeds: int,
                 rng: np.random.Generator) -> None:
        auto = scenario.autoscale
        initial = scenario.bridges
        width = max(initial, auto.max_bridges) if auto.enabled else initial
        caps, regions, names = [], [], []
        for g in scenario.fleet:
            caps += [(g.cores, g.egress_mbps, g.ingress_mbps)] * g.count
            regions += [g.region] * g.count
        first = scenario.fleet[0]
        caps += [(first.cores, first.egress_mbps, first.ingress_mbps)] * (width - initial)
        regions += [first.region] * (width - initial)
        names = sorted(set(regions))
        self.width = width
        self.capacity = np.array(caps, dtype=np.float64).reshape(width, 3)
        self.region = np.array([names.index(r) for r in regions], dtype=np.int64)
        self.state = np.full((replicas, width), OFF, dtype=np.int8)
        self.state[:, :initial] = SERVING
        self.ready_at = np.full((replicas, width), np.inf)  # inf unless provisioning
        self.next_ready = np.inf  # the earliest ready_at (bring_up has nothing to do before)
        self.drain_deadline = np.full((replicas, width), np.inf)
        self.last_scaled = np.full(replicas, -np.inf)
        self.interval = scenario.stats.report_interval_s
        self.noise = scenario.stats.noise
        # Phase per (seed, bridge), identical for every policy on that seed.
        phase = rng.random((seeds, width)) * self.interval
        self.next_due = np.tile(phase, (replicas // seeds, 1))
        self.reported = np.zeros((replicas, width, 3))
        self.measured_at = np.where(self.state == SERVING, 0.0, -np.inf)
        self.delay_ticks = round(scenario.stats.delay_s / scenario.sim.tick_s)
        self._history: list[tuple[np.ndarray, np.ndarray]] = []
        self._available = np.zeros((replicas, width), dtype=np.bool_)
        self._open = np.zeros((replicas, width), dtype=np.bool_)
        self._age = np.zeros((replicas, width))

    @property
    def up(self) -> np.ndarray:
        """(R, B) bridges that are paid for (provisioning, serving or draining)."""
        result: np.ndarray = (self.state >= PROVISIONING) & (self.state <= DRAINING)
        return result

    @property
    def live(self) -> np.ndarray:
        result: np.ndarray = (self.state == SERVING) | (self.state == DRAINING)
        return result

    def report(self, now: float, true_load: np.ndarray, rng_cell: Any
               ) -> tuple[np.ndarray, np.ndarray]:
        """Bridges due measure their true load, with noise drawn from the generator in
        ``rng_cell`` (``generator_cell``); returns what the balancer sees (load, at)."""
        kernels.report(now, self.next_due, self.state, self.interval, true_load, self.noise,
                       rng_cell, self.reported, self.measured_at)
        if self.delay_ticks == 0:
            return self.reported, self.measured_at
        self._history.append((self.reported.copy(), self.measured_at.copy()))
        if len(self._history) > self.delay_ticks + 1:
            self._history.pop(0)
        return self._history[0]

    def views(self, seen_at: np.ndarray, now: float
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(available, open_for_new, report_age) (R, B): live bridges the balancer has a report
        from. The arrays are the fleet's buffers, rewritten by the next call."""
        kernels.views(self.state, seen_at, now, self._available, self._open, self._age)
        return self._available, self._open, self._age

    def bring_up(self, now: float) -> None:
        if now < self.next_ready:  # most ticks: no (R, B) sweep
            return
        ready = (self.state == PROVISIONING) & (self.ready_at <= now)
        if ready.any():
            self.state[ready] = SERVING
            self.ready_at[ready] = np.inf
            self.reported[ready] = 0.0
            self.measured_at[ready] = now  # first report: an empty bridge
        self.next_ready = float(self.ready_at.min())

    def autoscale(self, scenario: Scenario, now: float, utilization: np.ndarray,
                  true_load: np.ndarray) -> None:
        auto = scenario.autoscale
        if not auto.enabled:
            return
        cooled = now - self.last_scaled >= auto.cooldown_s
        serving = (self.state == SERVING).sum(axis=1)
        busy = ((self.state == PROVISIONING) | (self.state == DRAINING)).any(axis=1)
        headroom = (self.up.sum(axis=1) < auto.max_bridges) & (self.state == OFF).any(axis=1)
        grow = cooled & ~busy & headroom & (utilization > auto.scale_up_at)
        if grow.any():
            rows = np.flatnonzero(grow)
            cols = np.argmax(self.state[rows] == OFF, axis=1)
            self.state[rows, cols] = PROVISIONING
            self.ready_at[rows, cols] = now + auto.provisioning_delay_s
            self.next_ready = min(self.next_ready, now + auto.provisioning_delay_s)
            self.last_scaled[rows] = now
        shrink = cooled & ~busy & ~grow & (serving > auto.min_bridges) \
            & (utilization < auto.scale_down_at)
        if shrink.any():
            rows = np.flatnonzero(shrink)
            weight = np.where(self.state[rows] == SERVING, true_load[rows].sum(axis=-1), np.inf)
            cols = np.argmin(weight, axis=1)
            self.state[rows, cols] = DRAINING
            self.drain_deadline[rows, cols] = now + auto.drain_deadline_s
            self.last_scaled[rows] = now

    def retire_empty(self, participants: np.ndarray) -> None:
        """Draining bridges with nobody left are switched off."""
        empty = (self.state == DRAINING) & (participants == 0)
        if empty.any():
            self.state[empty] = OFF
            self.drain_deadline[empty] = np.inf
            self.measured_at[empty] = -np.inf
