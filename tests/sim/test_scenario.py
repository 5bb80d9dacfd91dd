"""Scenario files: every shipped one parses; bad keys name the key and the expected form."""

from __future__ import annotations

from pathlib import Path

import pytest

from simulations.costmodel import CostModel, load_calibration
from simulations.scenario import ScenarioError, load_scenario, parse_scenario

SCENARIOS = Path(__file__).parents[2] / "simulations" / "scenarios"
BASE = {"fleet": {"bridges": [{"count": 2}]}}


@pytest.mark.parametrize("name", ["steady", "school-morning", "join-burst", "framatalk-2020"])
def test_shipped_scenarios_parse(name: str) -> None:
    sc = load_scenario(SCENARIOS / f"{name}.toml")
    assert sc.name == name and sc.bridges >= 1 and sc.sim.policies


def test_framatalk_is_the_seed_story() -> None:
    sc = load_scenario(SCENARIOS / "framatalk-2020.toml")
    w = sc.workload
    assert (w.conferences_per_day, w.to_per_day, w.over_days, w.surge, w.diurnal) == \
        (2000, 16000, 14, "exponential", "office")
    assert sc.fleet[0].cores == 8 and sc.stats.report_interval_s == 5
    assert sc.sim.horizon_s == 14 * 86400


@pytest.mark.parametrize(("patch", "words"), [
    ({"sim": {"tick_s": -1}}, "sim.tick_s must be a number > 0"),
    ({"sim": {"policies": ["nope"]}}, "unknown policy 'nope'; known policies: .*balanced"),
    ({"workload": {"surge": "big"}}, r"workload.surge must be one of \['exponential'"),
    ({"workload": {"size": {"alpha": "x"}}}, "workload.size.alpha must be a number"),
    ({"workload": {"colour": 1}}, r"unknown key\(s\) \['colour'\] in \[workload\]"),
    ({"fleet": {"bridges": []}}, "fleet.bridges must be a non-empty array"),
    ({"routing": {"policy": "nope"}}, r"\[routing\].*known policies"),
    ({"costs": {"video_kbps": -1}}, "costs.video_kbps must be a finite number >= 0"),
    ({"events": [{"at_s": 1, "action": "explode", "bridge": 0}]},
     r"events\[0\].action must be one of"),
    ({"stats": {"noise": 2}}, "stats.noise must be a number >= 0.0 and <= 1.0"),
])
def test_bad_keys_name_key_and_form(patch: dict[str, object], words: str) -> None:
    with pytest.raises(ScenarioError, match=words):
        parse_scenario({**BASE, **patch})


def test_calibration_json_overrides_defaults_and_ignores_unknown_keys(tmp_path: Path) -> None:
    (tmp_path / "cal.json").write_text(
        '{"cost_table": {"cpu_us_per_packet_out": 9.5, "bytes_per_stream": 1, "host": "x"}}')
    assert load_calibration(tmp_path / "cal.json") == {"cpu_us_per_packet_out": 9.5}
    model = CostModel.from_scenario({"calibration": "cal.json", "last_n": 10}, tmp_path)
    assert model.table.cpu_us_per_packet_out == 9.5 and model.table.last_n == 10
    with pytest.raises(ValueError, match="cannot read"):
        CostModel.from_scenario({"calibration": "missing.json"}, tmp_path)
