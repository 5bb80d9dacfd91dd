"""Stale information (Mitzenmacher 2000): least_loaded against power_of_d (d = 2) as reports
age. Sweeps stats.report_interval_s of simulations/scenarios/stale-reports.toml over
1, 2, 5, 10, 20, 30 and 60 s, prints p99 stress (mean over seeds, with the seed spread) and
peak stress per policy, and where least_loaded falls behind; plots p99 stress against the
interval to bench/out/crossover.png.

tests/sim/test_validation.py asserts the ordering at the two ends (1 s and 60 s).

    python bench/stale_crossover.py [--seeds 8] [--intervals 1,2,5,10,20,30,60] [--out PATH]
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from simulations import runner
from simulations.plots import plot_crossover
from simulations.scenario import load_scenario

ROOT = Path(__file__).resolve().parents[1]
SCENARIO = ROOT / "simulations" / "scenarios" / "stale-reports.toml"
POLICIES = ("least_loaded", "power_of_d")


def sweep(intervals: list[float], seeds: int) -> dict[str, dict[str, list[float]]]:
    """{metric: {policy: [value per interval]}}, means over seeds (and the seed std of p99)."""
    base = load_scenario(SCENARIO, seeds=seeds, policies=list(POLICIES))
    out: dict[str, dict[str, list[float]]] = {
        m: {p: [] for p in POLICIES} for m in ("p99_stress", "p99_std", "peak_stress")}
    for interval in intervals:
        sc = replace(base, stats=replace(base.stats, report_interval_s=interval))
        result = runner.run(sc, progress=False)
        for p in POLICIES:
            p99 = [r["p99_stress"] for r in result.summary if r["policy"] == p]
            out["p99_stress"][p].append(float(np.mean(p99)))
            out["p99_std"][p].append(float(np.std(p99)))
            out["peak_stress"][p].append(result.mean(p, "peak_stress"))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=8)
    parser.add_argument("--intervals", default="1,2,5,10,20,30,60")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "crossover.png")
    args = parser.parse_args()
    intervals = [float(x) for x in args.intervals.split(",")]
    t0 = time.perf_counter()
    values = sweep(intervals, args.seeds)
    p99, std, peak = values["p99_stress"], values["p99_std"], values["peak_stress"]
    print(f"stale-reports, {args.seeds} seeds, p99 / peak true stress (mean over seeds "
          f"± seed std), {time.perf_counter() - t0:.0f} s")
    print(f"{'interval_s':>10} {'least_loaded p99':>18} {'power_of_d p99':>16} "
          f"{'ll - pod':>9} {'ll peak':>8} {'pod peak':>9}  ahead")
    for i, interval in enumerate(intervals):
        ll, pod = p99["least_loaded"][i], p99["power_of_d"][i]
        spread = max(std["least_loaded"][i], std["power_of_d"][i])
        ahead = ("tie (within the seed spread)" if abs(ll - pod) <= spread else
                 "least_loaded" if ll < pod else "power_of_d")
        print(f"{interval:>10g} {ll:>11.3f} ±{std['least_loaded'][i]:.3f} "
              f"{pod:>9.3f} ±{std['power_of_d'][i]:.3f} {ll - pod:>+9.3f} "
              f"{peak['least_loaded'][i]:>8.3f} {peak['power_of_d'][i]:>9.3f}  {ahead}")
    behind = [t for i, t in enumerate(intervals)
              if p99["least_loaded"][i] - p99["power_of_d"][i]
              > max(std["least_loaded"][i], std["power_of_d"][i])]
    print("least_loaded clearly behind power_of_d (by more than the seed spread): "
          + (f"from {min(behind):g} s" if behind else "at no interval swept"))
    path = plot_crossover(intervals, p99, args.out, "p99 true stress")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
