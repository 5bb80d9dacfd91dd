"""SimPy reference model of the ``steady`` scenario with the ``random`` policy.

An independent, event-driven model: each conference is a SimPy process; each participant a
process that joins, is placed on a uniformly random bridge (``random`` ignores load and rooms
never split at these sizes... except above max_per_bridge, which steady's sizes reach rarely),
and leaves. The workload comes from the same ``simulations.workload.generate`` (same seeds), so
the comparison checks the engine's bookkeeping, not the random numbers.

Prints mean concurrent participants and mean per-bridge CPU load (after warm-up) from SimPy
and from the tick engine; they must agree within 2 %.

    python bench/simpy_reference.py [--seeds 4] [--hours 12]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import simpy

from simulations import runner
from simulations.scenario import load_scenario
from simulations.workload import Sessions

SCENARIO = str(Path(__file__).resolve().parents[1] / "simulations/scenarios/steady.toml")


def simpy_means(s: Sessions, bridges: int, horizon: float, warmup: float, cpu: np.ndarray,
                rng: np.random.Generator) -> tuple[float, float, int]:
    """(mean participants, mean per-bridge cpu cores, events) by SimPy, with random placement
    per room (a room sticks to its first bridge, as core's sticky rule does)."""
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=4)
    parser.add_argument("--hours", type=float, default=12.0)
    args = parser.parse_args()
    sc = load_scenario(SCENARIO, seeds=args.seeds, hours=args.hours, policies=["random"])
    sessions = runner.workloads(sc, args.seeds)
    horizon, warmup = sc.sim.horizon_s, sc.sim.warmup_s
    cpu = sc.costs.single_load[:, 0]
    t0 = time.perf_counter()
    ref = [simpy_means(s, sc.bridges, horizon, warmup, cpu, np.random.default_rng(i))
           for i, s in enumerate(sessions)]
    simpy_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    result = runner.run(sc)
    ours_s = time.perf_counter() - t0
    ref_p = np.mean([r[0] for r in ref])
    ref_cpu = np.mean([r[1] for r in ref])
    ours_p = result.mean("random", "mean_participants")
    # engine: mean stress × cpu limit = cores (steady is CPU-bound at these sizes)
    limit = sc.fleet[0].cores * sc.routing_config.cpu_threshold
    ours_cpu = result.mean("random", "mean_bridge_stress") * limit
    events = sum(r[2] for r in ref)
    print(f"steady, random, {args.seeds} seeds, {args.hours:g} h (warm-up {warmup:g} s)")
    print(f"mean concurrent participants: simpy {ref_p:10.2f}  engine {ours_p:10.2f}  "
          f"diff {100 * (ours_p / ref_p - 1):+.2f} %")
    print(f"mean per-bridge cpu (cores):  simpy {ref_cpu:10.4f}  engine {ours_cpu:10.4f}  "
          f"diff {100 * (ours_cpu / ref_cpu - 1):+.2f} %")
    print(f"simpy {events / simpy_s:,.0f} participant-events/s ({simpy_s:.1f} s); "
          f"engine {result.schedule.events / ours_s:,.0f} ({ours_s:.1f} s)")
    ok = abs(ours_p / ref_p - 1) < 0.02 and abs(ours_cpu / ref_cpu - 1) < 0.02
    print("AGREE within 2 %" if ok else "DISAGREE")
    raise SystemExit(0 if ok else 1)


if __name__ == "__main__":
    main()
