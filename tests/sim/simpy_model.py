"""SimPy reference model of the ``steady`` scenario with the ``random`` policy (issue 3).

An independent, event-driven model: each participant session is a SimPy process that joins,
is placed, and leaves. ``random`` ignores load, and a room sticks to its first bridge (core's
sticky rule; steady's rooms reach max_per_bridge = 80 too rarely to split), so a room's bridge
is uniform at random. The workload comes from the same ``simulations.workload.generate`` (same
seeds), so the comparison checks the engine's bookkeeping (joins, leaves, ticks, room load),
not the random numbers.

Used by tests/sim/test_simpy_agreement.py and bench/simpy_reference.py (which prints it),
bench/sim_throughput.py (its speed). simpy is in the ``[dev]`` extra.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import simpy

from simulations import runner
from simulations.scenario import load_scenario
from simulations.workload import Sessions

SCENARIO = str(Path(__file__).resolve().parents[2] / "simulations/scenarios/steady.toml")


def simpy_means(s: Sessions, bridges: int, horizon: float, warmup: float, cpu: np.ndarray,
                rng: np.random.Generator) -> tuple[float, float, int]:
    """(mean participants, mean per-bridge cpu cores, events) by SimPy over
    [warmup, horizon], with random placement per room. ``cpu[n]`` is the CPU of a room of n
    on one bridge."""
    env = simpy.Environment()
    members = np.zeros((s.rooms, bridges), dtype=np.int64)
    room_bridge = np.full(s.rooms, -1)
    state = {"area_p": 0.0, "area_cpu": 0.0, "last": warmup, "people": 0, "load": 0.0,
             "events": 0}

    def account() -> None:
        now = min(env.now, horizon)
        if now > state["last"]:
            state["area_p"] += state["people"] * (now - state["last"])
            state["area_cpu"] += state["load"] * (now - state["last"])
            state["last"] = now

    def session(i: int):  # type: ignore[no-untyped-def]
        yield env.timeout(s.join_t[i])
        account()
        room = s.room[i]
        if room_bridge[room] < 0:
            room_bridge[room] = rng.integers(bridges)
        b = room_bridge[room]
        n = members[room, b]
        state["load"] += cpu[n + 1] - cpu[n]
        members[room, b] += 1
        state["people"] += 1
        state["events"] += 1
        if np.isfinite(s.leave_t[i]):
            yield env.timeout(s.leave_t[i] - s.join_t[i])
            account()
            n = members[room, b]
            state["load"] += cpu[n - 1] - cpu[n]
            members[room, b] -= 1
            state["people"] -= 1
            state["events"] += 1

    for i in range(len(s)):
        env.process(session(i))
    env.run(until=horizon)
    account()
    span = horizon - warmup
    return state["area_p"] / span, state["area_cpu"] / span / bridges, state["events"]


@dataclass(frozen=True)
class Agreement:
    """Means over seeds, SimPy vs the tick engine, on the same workloads."""

    simpy_participants: float
    engine_participants: float
    simpy_cpu: float  # mean per-bridge CPU, cores
    engine_cpu: float
    simpy_events: int
    engine_events: int

    @property
    def participants_diff(self) -> float:
        return self.engine_participants / self.simpy_participants - 1.0

    @property
    def cpu_diff(self) -> float:
        return self.engine_cpu / self.simpy_cpu - 1.0


def compare(seeds: int, hours: float, warmup_s: float | None = None) -> Agreement:
    """Run steady with ``random`` for ``seeds`` seeds in SimPy and in the engine."""
    extra = {} if warmup_s is None else {"warmup_s": warmup_s}
    sc = load_scenario(SCENARIO, seeds=seeds, hours=hours, policies=["random"], **extra)
    horizon, warmup = sc.sim.horizon_s, sc.sim.warmup_s
    cpu = sc.costs.single_load[:, 0]
    ref = [simpy_means(s, sc.bridges, horizon, warmup, cpu, np.random.default_rng(i))
           for i, s in enumerate(runner.workloads(sc, seeds))]
    result = runner.run(sc, progress=False)
    # engine: mean stress x cpu limit = cores (steady is CPU-bound at these sizes)
    limit = sc.fleet[0].cores * sc.routing_config.cpu_threshold
    return Agreement(
        simpy_participants=float(np.mean([r[0] for r in ref])),
        engine_participants=result.mean("random", "mean_participants"),
        simpy_cpu=float(np.mean([r[1] for r in ref])),
        engine_cpu=result.mean("random", "mean_bridge_stress") * limit,
        simpy_events=sum(r[2] for r in ref), engine_events=result.schedule.events)
