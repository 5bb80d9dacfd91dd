"""A policy registered from outside core (no compiled kernel) runs in the simulator too."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from simulations import runner
from simulations.engine import Engine
from simulations.scenario import load_scenario
from tests.core.custom import LeastProjected, custom_policy  # noqa: F401 (the fixture)

SCENARIOS = Path(__file__).parents[2] / "simulations" / "scenarios"


@pytest.mark.usefixtures("custom_policy")
def test_registered_policy_runs_a_short_simulation() -> None:
    # stale-reports: 24 one-core bridges, two-person calls, 1 s reports: placement matters.
    sc = load_scenario(SCENARIOS / "stale-reports.toml", hours=0.5, seeds=1, warmup_s=900,
                       policies=[LeastProjected.name, "random"])
    engine = Engine(sc, runner.prepare(sc), list(sc.sim.policies))
    for k in range(engine.schedule.ticks):
        engine.step(k)
    policy = engine.groups[0].policy
    assert isinstance(policy, LeastProjected) and policy.calls > 1000
    assert np.array_equal(engine.count, engine.members.sum(axis=1))  # state stays consistent
    ours, rand = engine.metrics.summary(engine.policies, 1)
    assert ours["policy"] == LeastProjected.name and rand["policy"] == "random"
    assert ours["joins"] == rand["joins"] > 5000  # the same workload
    assert ours["rejected_joins"] == 0
    # load-aware with the ledger: clearly flatter than random placement (0.34 vs 0.42)
    assert ours["p99_stress"] < rand["p99_stress"] - 0.04
