"""Scenario -> workloads -> schedule -> engine -> results. The CLI, tests and benches use this."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from .engine import Engine
from .metrics import Metrics
from .scenario import Scenario
from .schedule import Schedule, build_schedule
from .trace import load_trace
from .workload import Sessions, generate


@dataclass
class Result:
    scenario: Scenario
    policies: list[str]
    seeds: int
    schedule: Schedule
    metrics: Metrics

    @property
    def summary(self) -> list[dict[str, Any]]:
        return self.metrics.summary(self.policies, self.seeds)

    def mean(self, policy: str, column: str) -> float:
        values = [row[column] for row in self.summary if row["policy"] == policy]
        return float(np.mean(values))


def iter_workloads(scenario: Scenario, seeds: int, base_seed: int = 0) -> Iterator[Sessions]:
    """One workload per seed, generated as it is consumed (so a schedule of many seeds never
    holds every seed's sessions at once); a trace gives the same sessions to every seed."""
    w = scenario.workload
    if w.trace is not None:
        sessions, _ = load_trace(w.trace, scenario.sim.tick_s)
        for _ in range(seeds):
            yield sessions
        return
    for s in range(seeds):
        yield generate(w, scenario.sim, np.random.default_rng([base_seed, s]))


def workloads(scenario: Scenario, seeds: int, base_seed: int = 0) -> list[Sessions]:
    return list(iter_workloads(scenario, seeds, base_seed))


def prepare(scenario: Scenario, seeds: int | None = None, base_seed: int = 0) -> Schedule:
    n = scenario.sim.seeds if seeds is None else seeds
    return build_schedule(iter_workloads(scenario, n, base_seed), scenario.sim.horizon_s,
                          scenario.sim.tick_s)


def run(scenario: Scenario, policies: list[str] | None = None, seeds: int | None = None,
        base_seed: int = 0, progress: bool | None = None,
        schedule: Schedule | None = None) -> Result:
    names = list(policies or scenario.sim.policies)
    sched = schedule if schedule is not None else prepare(scenario, seeds, base_seed)
    engine = Engine(scenario, sched, names, seed=base_seed)
    metrics = engine.run(progress=progress)
    return Result(scenario, names, sched.seeds, sched, metrics)
