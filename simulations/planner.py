"""``sfu-sim plan``: the fewest bridges that keep overload at the scenario's target.

Overload is monotone enough in fleet size to bisect: each probe runs every policy on the same
seeds (one engine, replicas batched), and each policy keeps its own [low, high] bracket.
"""

from __future__ import annotations

from collections.abc import Callable

from . import runner
from .scenario import Scenario


def plan_fleet(sc: Scenario, log: Callable[[str], None] = lambda _: None
               ) -> dict[str, int | None]:
    policies = list(sc.sim.policies)
    target = sc.plan.max_overload_bridge_s
    schedule = runner.prepare(sc)
    cache: dict[int, dict[str, float]] = {}

    def overload(count: int) -> dict[str, float]:
        if count not in cache:
            result = runner.run(sc.with_fleet_size(count), policies, schedule=schedule)
            cache[count] = {p: result.mean(p, "overload_bridge_s") for p in policies}
            log(f"plan: {count} bridges -> " + ", ".join(f"{p} {v:.0f}"
                                                       for p, v in cache[count].items()))
        return cache[count]

    top = sc.plan.max_bridges
    ok_top = overload(top)
    found: dict[str, int | None] = {}
    low = {p: 0 for p in policies}  # known to fail (0 bridges always fails)
    high = {p: top for p in policies if ok_top[p] <= target}
    for p in policies:
        if p not in high:
            found[p] = None
    while any(high[p] - low[p] > 1 for p in high):
        probes = sorted({(low[p] + high[p]) // 2 for p in high if high[p] - low[p] > 1})
        mid = probes[len(probes) // 2]
        values = overload(mid)
        for p in high:
            if low[p] < mid < high[p]:
                if values[p] <= target:
                    high[p] = mid
                else:
                    low[p] = mid
    for p in policies:
        if p in high:
            found[p] = high[p]
    return {p: found[p] for p in policies}
