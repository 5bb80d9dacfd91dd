"""Simulator throughput: participant-events/s batched over many replicas and for one replica,
against the SimPy reference on the same scenario (steady, random policy); optional memory
check of a 14-day framatalk-2020 run.

Targets (issue 3): >= 5 M participant-events/s batched on one core; >= 30x SimPy;
framatalk-2020 over 100 seeds for 14 days under 4 GB.

Rates are events / CPU seconds of this process (``time.process_time``; the engine and SimPy
are single-threaded, so that is one core), so that other work on the machine does not count
against either side; wall-clock rates are printed too. Both figures and the ratio come from
the same run: each is the median of ``--repeat`` measurements (with their range), and SimPy
runs ``--simpy-seeds`` workloads per measurement (one alone is only ~60 ms). A small warm-up
run first loads the engine's compiled code (numba's on-disk cache): a one-time cost, not
throughput. The batched figure defaults to 4,096 replicas (the per-tick Python work is then
amortised; 2,048 give ~10 % less); 256 replicas are printed as well.

Figures, history and where the time goes: docs/performance.md. On 2026-12-01 late evening
(2-core VM, ``taskset -c 1``) five runs at 569bacc, 37d1e62 and 20a5eb9 gave 5.73-7.41 M
events/s (medians of 3) and 56-66x SimPy, against 4.48 and 5.12 M for the code before them
(142b6bb): both targets are met.

The memory check runs in a child process of its own (nothing else ran in it), and its peak
resident set is read with getrusage(RUSAGE_CHILDREN) once the child has exited.

    python bench/sim_throughput.py [--replicas 4096] [--also 256] [--hours 2] [--repeat 3]
    python bench/sim_throughput.py --framatalk-seeds 100 --memory-only
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from simulations import runner  # noqa: E402
from simulations.scenario import FleetEvent, load_scenario  # noqa: E402
from tests.sim.simpy_model import SCENARIO, simpy_means  # noqa: E402

FRAMATALK = ROOT / "simulations" / "scenarios" / "framatalk-2020.toml"
MEMORY_LIMIT_BYTES = 4e9  # "4 GB" read strictly: 10^9 bytes, 3.73 GiB


def _timed(run: Callable[[], object]) -> tuple[float, float]:
    """(CPU seconds, wall seconds) of ``run()``."""
    cpu, wall = time.process_time(), time.perf_counter()
    run()
    return time.process_time() - cpu, time.perf_counter() - wall


def engine_rate(replicas: int, hours: float) -> tuple[float, float]:
    """(events per CPU second, events per wall second) of the engine on ``replicas`` seeds."""
    sc = load_scenario(SCENARIO, seeds=replicas, hours=hours, policies=["random"], warmup_s=0)
    schedule = runner.prepare(sc)
    cpu, wall = _timed(lambda: runner.run(sc, schedule=schedule, progress=False))
    return schedule.events / cpu, schedule.events / wall


def warm_up() -> None:
    """Load every compiled pass once (numba reads its on-disk cache on first call; core's
    migration plans alone take ~0.35 s): a short run whose failure and drain leave two hot
    bridges, so that it plans rebalancing and drain moves as the measured runs do."""
    sc = load_scenario(SCENARIO, seeds=8, hours=2, policies=["random"], warmup_s=0)
    sc = replace(sc, events=(FleetEvent(2400.0, "fail", 0),
                             FleetEvent(2400.0, "drain", 1, 600.0)))
    result = runner.run(sc, progress=False)
    assert result.metrics.migrations.sum() > 0, "the warm-up planned no migration"


def simpy_rate(seeds: int, hours: float) -> tuple[float, float]:
    """(events per CPU second, per wall second) of the SimPy model over ``seeds`` workloads
    (one 2 h workload is ~60 ms of SimPy: too short to time alone)."""
    sc = load_scenario(SCENARIO, seeds=seeds, hours=hours, policies=["random"], warmup_s=0)
    workloads = runner.workloads(sc, seeds)
    counted: list[int] = []

    def reference() -> None:
        for i, s in enumerate(workloads):
            counted.append(simpy_means(s, sc.bridges, sc.sim.horizon_s, 0.0,
                                       sc.costs.single_load[:, 0], np.random.default_rng(i))[2])
    cpu, wall = _timed(reference)
    return sum(counted) / cpu, sum(counted) / wall


def throughput(replicas: int, also: int, hours: float, repeat: int, simpy_seeds: int) -> None:
    """Each figure is the median of ``repeat`` runs (the machine is shared: runs vary)."""
    warm_up()
    runs: dict[str, list[tuple[float, float]]] = {"batched": [], "also": [], "single": [],
                                                  "simpy": []}
    for _ in range(repeat):
        runs["batched"].append(engine_rate(replicas, hours))
        if also:
            runs["also"].append(engine_rate(also, hours))
        runs["single"].append(engine_rate(1, hours))
        runs["simpy"].append(simpy_rate(simpy_seeds, hours))
    med = {k: (float(np.median([r[0] for r in v])), float(np.median([r[1] for r in v])))
           for k, v in runs.items() if v}
    spread = {k: (min(r[0] for r in v), max(r[0] for r in v)) for k, v in runs.items() if v}

    def line(label: str, key: str, note: str = "") -> None:
        low, high = spread[key]
        print(f"{label:<34}{med[key][0]:12,.0f} participant-events/s  (runs {low:,.0f}-"
              f"{high:,.0f}; wall {med[key][1]:,.0f}){note}")
    print(f"median of {repeat} runs, CPU time of this process, steady/random, {hours:g} h:")
    line(f"engine batched ({replicas} replicas):", "batched", "  target 5,000,000")
    if also:
        line(f"engine batched ({also} replicas):", "also")
    line("engine single replica:", "single")
    line(f"simpy reference ({simpy_seeds} seeds):", "simpy")
    ratios = sorted(b[0] / p[0] for b, p in zip(runs["batched"], runs["simpy"], strict=True))
    print(f"ratio batched ({replicas})/simpy: {med['batched'][0] / med['simpy'][0]:.1f}x "
          f"(target 30x; per run {ratios[0]:.1f}-{ratios[-1]:.1f}x; wall "
          f"{med['batched'][1] / med['simpy'][1]:.1f}x); "
          f"single/simpy: {med['single'][0] / med['simpy'][0]:.3f}x")


def framatalk_child(seeds: int, days: float) -> None:
    """The run whose memory is measured: schedule and engine, as ``sfu-sim run`` does."""
    sc = load_scenario(FRAMATALK, seeds=seeds, days=days, policies=["balanced"])
    t0 = time.perf_counter()
    result = runner.run(sc, progress=False)
    print(json.dumps({"seconds": time.perf_counter() - t0, "events": result.schedule.events,
                      "days": sc.sim.horizon_s / 86400, "ticks": result.schedule.ticks}))


def framatalk_memory(seeds: int, days: float) -> bool:
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    done = subprocess.run([sys.executable, __file__, "--framatalk-child", str(seeds),
                           "--framatalk-days", str(days)],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        print(f"framatalk-2020 child failed ({done.returncode}):\n{done.stderr}")
        return False
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    if peak_kb <= before:  # an earlier child was larger (none runs before this one)
        print("warning: an earlier child process had a larger peak; figure is an upper bound")
    info = json.loads(done.stdout.strip().splitlines()[-1])
    peak = peak_kb * 1024  # ru_maxrss is in KiB on Linux
    full = days >= 14 and seeds >= 100
    ok = peak < MEMORY_LIMIT_BYTES or not full
    verdict = ("PASS" if ok else "FAIL") if full else "no verdict (the target is 14 d x 100 seeds)"
    print(f"framatalk-2020 {info['days']:g} d x {seeds} seeds (balanced): "
          f"{info['seconds']:.0f} s, {info['events']:,} events, {info['ticks']:,} ticks")
    print(f"peak RSS of that process alone: {peak / 1e9:.2f} GB = {peak / 2**30:.2f} GiB "
          f"(target < {MEMORY_LIMIT_BYTES / 1e9:g} GB) -> {verdict}")
    return ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicas", type=int, default=4096)
    parser.add_argument("--also", type=int, default=256,
                        help="also measure this many replicas (0: skip)")
    parser.add_argument("--hours", type=float, default=2.0)
    parser.add_argument("--repeat", type=int, default=3, help="runs per figure (median)")
    parser.add_argument("--simpy-seeds", type=int, default=16,
                        help="workloads the SimPy reference runs per measurement")
    parser.add_argument("--framatalk-seeds", type=int, default=0,
                        help="also run 14-day framatalk-2020 with this many seeds (balanced) "
                             "in a child process and report its peak memory")
    parser.add_argument("--framatalk-days", type=float, default=14.0,
                        help="days of that run (the target is for 14)")
    parser.add_argument("--memory-only", action="store_true",
                        help="skip the throughput measurements")
    parser.add_argument("--framatalk-child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.framatalk_child:
        framatalk_child(args.framatalk_child, args.framatalk_days)
        return
    # first, so that no earlier child process can own the peak
    ok = framatalk_memory(args.framatalk_seeds, args.framatalk_days) \
        if args.framatalk_seeds else True
    if not args.memory_only:
        throughput(args.replicas, args.also, args.hours, args.repeat, args.simpy_seeds)
    raise SystemExit(0 if ok else 1)


if __name__ == "__main__":
    main()
