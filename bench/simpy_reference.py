"""SimPy reference model of the ``steady`` scenario with the ``random`` policy, against the
tick engine. The model itself lives in tests/sim/simpy_model.py (the test suite checks the
same agreement on a shorter run); this prints it for longer runs and more seeds.

Prints mean concurrent participants and mean per-bridge CPU load (after warm-up) from SimPy
and from the tick engine; they must agree within 2 %.

    python bench/simpy_reference.py [--seeds 4] [--hours 12]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.sim.simpy_model import compare


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=4)
    parser.add_argument("--hours", type=float, default=12.0)
    args = parser.parse_args()
    t0 = time.perf_counter()
    a = compare(args.seeds, args.hours)
    took = time.perf_counter() - t0
    print(f"steady, random, {args.seeds} seeds, {args.hours:g} h ({took:.1f} s in all)")
    print(f"mean concurrent participants: simpy {a.simpy_participants:10.2f}  engine "
          f"{a.engine_participants:10.2f}  diff {100 * a.participants_diff:+.2f} %")
    print(f"mean per-bridge cpu (cores):  simpy {a.simpy_cpu:10.4f}  engine "
          f"{a.engine_cpu:10.4f}  diff {100 * a.cpu_diff:+.2f} %")
    print(f"participant events: simpy {a.simpy_events:,}, engine {a.engine_events:,}")
    ok = abs(a.participants_diff) < 0.02 and abs(a.cpu_diff) < 0.02
    print("AGREE within 2 %" if ok else "DISAGREE")
    raise SystemExit(0 if ok else 1)


if __name__ == "__main__":
    main()
