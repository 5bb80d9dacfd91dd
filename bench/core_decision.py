"""Decision latency of the routing core.

Prints, for the default policy (and every policy with --all-policies):
- per-join latency (R = 1: one live decision = admission + placement on a prebuilt fleet view)
  at 10, 100 and 1,000 bridges, p50 and p99 in µs;
- batched throughput at R = 1,000 replicas (decisions/s), and its ratio to R = 1 in this run;
- the cost of building a fleet view from BridgeInfo/LoadReport objects (done once per report,
  not per join, by the service).
Target: p99 ≤ 50 µs per decision at 1,000 bridges.

    python bench/core_decision.py [--joins 3000] [--all-policies]
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace

import numpy as np

from sfu_balancer.core import (
    BridgeInfo,
    Capacity,
    CostTable,
    FleetSnapshot,
    JoinBatch,
    LoadReport,
    RoutingConfig,
    admit_tiers,
    build_view,
    place_joins,
    policy_names,
)
from sfu_balancer.core.policies.base import FleetView

TARGET_P99_US = 50.0


def fleet(bridges: int, replicas: int, rng: np.random.Generator) -> FleetView:
    infos = tuple(BridgeInfo(f"b{i}", f"h{i}", region=("eu", "us")[i % 2],
                             capacity=Capacity(1.0, 1000.0, 1000.0)) for i in range(bridges))
    reports = {b.id: LoadReport(b.id, 99.0, cpu=float(rng.uniform(0, 0.7)),
                                bytes_out_per_s=float(rng.uniform(0, 5e7))) for b in infos}
    one = build_view(FleetSnapshot(infos, reports, now=100.0), None, RoutingConfig())
    tile = lambda a: np.repeat(a, replicas, axis=0)  # noqa: E731
    return replace(one, load=tile(one.load), pending=tile(one.pending),
                   report_age=tile(one.report_age), available=tile(one.available),
                   open_for_new=tile(one.open_for_new),
                   recent_placements=tile(one.recent_placements))


def join_batch(bridges: int, replicas: int, rng: np.random.Generator) -> JoinBatch:
    members = np.zeros((replicas, bridges), dtype=np.int64)
    rooms_with_members = rng.random(replicas) < 0.7  # 70 % of joins go to existing rooms
    members[rooms_with_members, rng.integers(0, bridges, replicas)[rooms_with_members]] = \
        rng.integers(1, 20, replicas)[rooms_with_members]
    return JoinBatch(members, np.zeros_like(members), rng.integers(0, 2, replicas),
                     np.ones(replicas, bool))


def decide(view: FleetView, batch: JoinBatch, config: RoutingConfig, policy, costs, rng):  # type: ignore[no-untyped-def]
    admit_tiers(view, np.ones(view.replicas, dtype=np.int64), config)
    return place_joins(view, batch, policy, config, costs, rng)


def latency_us(policy_name: str, bridges: int, joins: int) -> tuple[float, float]:
    rng = np.random.default_rng(1)
    config = RoutingConfig(policy=policy_name)
    policy, costs = config.build_policy(), CostTable()
    base = fleet(bridges, 1, rng)
    batches = [join_batch(bridges, 1, rng) for _ in range(64)]
    samples = np.empty(joins)
    for i in range(joins):
        view = replace(base)  # a fresh view per join, as after every ledger change live
        start = time.perf_counter_ns()
        decide(view, batches[i % 64], config, policy, costs, rng)
        samples[i] = (time.perf_counter_ns() - start) / 1000
    return float(np.percentile(samples, 50)), float(np.percentile(samples, 99))


def throughput(policy_name: str, bridges: int, replicas: int, rounds: int) -> float:
    rng = np.random.default_rng(2)
    config = RoutingConfig(policy=policy_name)
    policy, costs = config.build_policy(), CostTable()
    base, batch = fleet(bridges, replicas, rng), join_batch(bridges, replicas, rng)
    start = time.perf_counter()
    for _ in range(rounds):
        decide(replace(base), batch, config, policy, costs, rng)
    return replicas * rounds / (time.perf_counter() - start)


def view_build_us(bridges: int) -> float:
    rng = np.random.default_rng(3)
    infos = tuple(BridgeInfo(f"b{i}", "h", capacity=Capacity()) for i in range(bridges))
    reports = {b.id: LoadReport(b.id, 1.0, cpu=float(rng.random())) for b in infos}
    snapshot = FleetSnapshot(infos, reports, now=2.0)
    start = time.perf_counter()
    for _ in range(50):
        build_view(snapshot, None, RoutingConfig())
    return (time.perf_counter() - start) / 50 * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--joins", type=int, default=3000)
    parser.add_argument("--all-policies", action="store_true")
    args = parser.parse_args()
    names = policy_names() if args.all_policies else ["balanced"]
    print(f"{'policy':<14}{'bridges':>8}{'p50 µs':>10}{'p99 µs':>10}")
    worst = 0.0
    for name in names:
        for bridges in (10, 100, 1000):
            p50, p99 = latency_us(name, bridges, args.joins)
            print(f"{name:<14}{bridges:>8}{p50:>10.1f}{p99:>10.1f}")
            if bridges == 1000:
                worst = max(worst, p99)
    print()
    for name in names:
        single = throughput(name, 1000, 1, 2000)
        batched = throughput(name, 1000, 1000, 8)
        print(f"{name:<14} 1000 bridges: R=1 {single:,.0f} decisions/s, "
              f"R=1000 {batched:,.0f} decisions/s (x{batched / single:.1f})")
    print(f"\nbuild_view from objects: {view_build_us(1000):.0f} µs at 1000 bridges "
          "(once per report, not per join)")
    verdict = "meets" if worst <= TARGET_P99_US else "MISSES"
    print(f"p99 at 1000 bridges: {worst:.1f} µs -> {verdict} the {TARGET_P99_US:.0f} µs target")


if __name__ == "__main__":
    main()
