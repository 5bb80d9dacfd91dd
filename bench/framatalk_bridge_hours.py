"""framatalk-2020 over the whole 14-day surge: does ``balanced`` use no more bridge-hours than
``least_loaded`` (issue 3, validation)? Prints bridge-hours and overload per seed and their
means, and the verdict (strict: balanced's mean <= least_loaded's). Exit status 1 if not.

tests/sim/test_validation.py checks the same, strictly, on the surge's first day (test time).

    python bench/framatalk_bridge_hours.py [--seeds 3] [--days 14]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from simulations import runner
from simulations.scenario import load_scenario

SCENARIO = Path(__file__).resolve().parents[1] / "simulations/scenarios/framatalk-2020.toml"
POLICIES = ("balanced", "least_loaded")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--days", type=float, default=14.0)
    args = parser.parse_args()
    sc = load_scenario(SCENARIO, seeds=args.seeds, days=args.days, policies=list(POLICIES))
    t0 = time.perf_counter()
    result = runner.run(sc)
    rows = {(r["policy"], r["seed"]): r for r in result.summary}
    print(f"framatalk-2020, {args.days:g} d, {args.seeds} seeds ({time.perf_counter() - t0:.0f} s)")
    print(f"{'seed':>4} {'balanced bh':>12} {'least_loaded bh':>16} {'diff %':>8} "
          f"{'balanced ovl_s':>15} {'least_loaded ovl_s':>19}")
    for seed in range(args.seeds):
        b, ll = rows[("balanced", seed)], rows[("least_loaded", seed)]
        print(f"{seed:>4} {b['bridge_hours']:>12.3f} {ll['bridge_hours']:>16.3f} "
              f"{100 * (b['bridge_hours'] / ll['bridge_hours'] - 1):>+8.3f} "
              f"{b['overload_bridge_s']:>15.0f} {ll['overload_bridge_s']:>19.0f}")
    mean = {p: result.mean(p, "bridge_hours") for p in POLICIES}
    ovl = {p: result.mean(p, "overload_bridge_s") for p in POLICIES}
    spread = np.std([rows[("balanced", s)]["bridge_hours"] - rows[("least_loaded", s)]
                     ["bridge_hours"] for s in range(args.seeds)])
    print(f"mean {mean['balanced']:>12.3f} {mean['least_loaded']:>16.3f} "
          f"{100 * (mean['balanced'] / mean['least_loaded'] - 1):>+8.3f} "
          f"{ovl['balanced']:>15.0f} {ovl['least_loaded']:>19.0f}")
    print(f"(seed std of the per-seed difference: {spread:.3f} bridge-hours)")
    ok = mean["balanced"] <= mean["least_loaded"]
    print("balanced uses no more bridge-hours than least_loaded: " + ("YES" if ok else "NO"))
    raise SystemExit(0 if ok else 1)


if __name__ == "__main__":
    main()
