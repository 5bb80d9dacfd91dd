"""Simulator throughput: participant-events/s batched over many replicas and for one replica,
against the SimPy reference on the same scenario (steady, random policy); optional memory
check of a 14-day framatalk-2020 run.

Targets (issue 3): >= 5 M participant-events/s batched on one core; >= 30x SimPy;
framatalk-2020 over 100 seeds under 4 GB.

    python bench/sim_throughput.py [--replicas 256] [--hours 2] [--framatalk-seeds 0]
"""

from __future__ import annotations

import argparse
import resource
import time
from pathlib import Path

import numpy as np
from simpy_reference import SCENARIO, simpy_means  # type: ignore[import-not-found]

from simulations import runner
from simulations.scenario import load_scenario


def engine_rate(replicas: int, hours: float) -> float:
    sc = load_scenario(SCENARIO, seeds=replicas, hours=hours, policies=["random"], warmup_s=0)
    schedule = runner.prepare(sc)
    t0 = time.perf_counter()
    runner.run(sc, schedule=schedule, progress=False)
    return schedule.events / (time.perf_counter() - t0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicas", type=int, default=256)
    parser.add_argument("--hours", type=float, default=2.0)
    parser.add_argument("--framatalk-seeds", type=int, default=0,
                        help="also run 14-day framatalk-2020 with this many seeds (balanced)")
    args = parser.parse_args()
    batched = engine_rate(args.replicas, args.hours)
    single = engine_rate(1, args.hours)
    sc = load_scenario(SCENARIO, seeds=1, hours=args.hours, policies=["random"], warmup_s=0)
    s = runner.workloads(sc, 1)[0]
    t0 = time.perf_counter()
    _, _, events = simpy_means(s, sc.bridges, sc.sim.horizon_s, 0.0,
                               sc.costs.single_load[:, 0], np.random.default_rng(0))
    simpy = events / (time.perf_counter() - t0)
    print(f"engine batched ({args.replicas} replicas): {batched:12,.0f} participant-events/s"
          f"  (target 5,000,000)")
    print(f"engine single replica:            {single:12,.0f} participant-events/s")
    print(f"simpy reference:                  {simpy:12,.0f} participant-events/s")
    print(f"ratio batched/simpy: {batched / simpy:.2f}x (target 30x); "
          f"single/simpy: {single / simpy:.3f}x")
    if args.framatalk_seeds:
        fr = load_scenario(Path(SCENARIO).with_name("framatalk-2020.toml"),
                           seeds=args.framatalk_seeds, policies=["balanced"])
        t0 = time.perf_counter()
        result = runner.run(fr)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
        print(f"framatalk-2020 14 d x {args.framatalk_seeds} seeds: "
              f"{time.perf_counter() - t0:.0f} s, {result.schedule.events:,} events, "
              f"peak RSS {peak:.2f} GB (target < 4 GB)")


if __name__ == "__main__":
    main()
