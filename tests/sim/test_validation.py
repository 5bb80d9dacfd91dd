"""Validation against theory and against the Jicofo baseline (shipped scenarios)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from simulations import runner
from simulations.plots import plot_crossover
from simulations.scenario import load_scenario

SCENARIOS = Path(__file__).parents[2] / "simulations" / "scenarios"


def test_stale_information_crossover(tmp_path: Path) -> None:
    """Mitzenmacher 2000: on fresh reports least_loaded is at least as good as power_of_d
    (d = 2); on 60 s-old reports it herds and falls behind."""
    # 16 seeds: on fresh reports the two are within ~1 % of each other, so 2 seeds can flip
    # the (theoretical, in expectation) ordering by noise alone.
    base = load_scenario(SCENARIOS / "stale-reports.toml", seeds=16)
    p99: dict[str, list[float]] = {"least_loaded": [], "power_of_d": []}
    for interval in (1.0, 60.0):
        sc = replace(base, stats=replace(base.stats, report_interval_s=interval))
        result = runner.run(sc)
        for policy in p99:
            p99[policy].append(result.mean(policy, "p99_stress"))
    assert p99["least_loaded"][0] <= p99["power_of_d"][0]
    assert p99["least_loaded"][1] > p99["power_of_d"][1] + 0.2
    assert plot_crossover([1.0, 60.0], p99, tmp_path / "x.png", "p99_stress").exists()


@pytest.mark.parametrize(("name", "hours"), [("school-morning", 11), ("join-burst", 2)])
def test_balanced_beats_jicofo_single(name: str, hours: int) -> None:
    sc = load_scenario(SCENARIOS / f"{name}.toml", hours=hours, seeds=3,
                       policies=["balanced", "jicofo_single"])
    result = runner.run(sc)
    jicofo = result.mean("jicofo_single", "overload_bridge_s")
    assert result.mean("balanced", "overload_bridge_s") < jicofo
    assert jicofo > 0


def test_balanced_uses_no_more_bridge_hours_than_least_loaded_on_framatalk() -> None:
    """Issue 3: balanced uses no more bridge-hours than least_loaded in framatalk-2020,
    strictly, here on the surge's first day over 3 seeds (test time); the 14-day surge is
    bench/framatalk_bridge_hours.py. Autoscaling follows fleet utilization, so bridge-hours
    differ by policy only through drains and splits: the two are within 0.1 % per seed."""
    sc = load_scenario(SCENARIOS / "framatalk-2020.toml", days=1, seeds=3,
                       policies=["balanced", "least_loaded"])
    result = runner.run(sc)
    assert result.mean("balanced", "bridge_hours") <= result.mean("least_loaded",
                                                                  "bridge_hours")
    assert result.mean("balanced", "overload_bridge_s") <= \
        result.mean("least_loaded", "overload_bridge_s")
