"""The benchmark's calibration JSON reaches the simulator's cost model, key for key."""

from __future__ import annotations

import ast
import json
import pathlib

import pytest

from bridges.calibration import AUDIO_PPS, build_calibration, verdicts
from sfu_balancer.core import CostTable
from simulations.costmodel import CostModel, load_calibration

BENCH = pathlib.Path(__file__).parents[2] / "bench" / "bridge_forwarding.py"

MICRO = [
    {"subscribers": 1, "us_per_out_packet": 30.0, "out_pps_per_core": 33_000.0,
     "fanout_latency_median_ms": 0.05, "fanout_latency_p99_ms": 0.1},
    {"subscribers": 40, "us_per_out_packet": 11.0, "out_pps_per_core": 90_000.0,
     "fanout_latency_median_ms": 0.6, "fanout_latency_p99_ms": 1.2},
]


def _forward(per_leg_cores: float, stream_pps: tuple[float, ...] = (120, 120, 120),
             ) -> list[dict[str, float]]:
    # A publisher stream of ``stream_pps`` packets/s (983 RTP bytes each) received once, sent to
    # each leg as 1,000 SRTP bytes; 0.02 cores fixed, ``per_leg_cores`` per leg at 120 packets/s.
    rows = []
    for n, pps in zip((2, 8, 16), stream_pps, strict=True):
        cores = 0.02 + per_leg_cores * n * pps / 120
        rows.append({"subscribers": n, "bridge_cores": cores, "out_pps": pps * n,
                     "out_bytes_per_s": 1000.0 * pps * n, "in_pps": pps,
                     "in_bytes_per_s": 983.0 * pps, "out_pps_per_core": pps * n / cores})
    return rows


RELAY = [
    {"subscribers": n, "bridge_cores": 0.3 + 0.1 * n, "out_pps": 110.0 * n,
     "out_pps_per_core": 110.0 * n / (0.3 + 0.1 * n)}
    for n in (1, 2, 4)
]


def _calibration(
    per_leg_cores: float = 0.001, forward: list[dict[str, float]] | None = None,
) -> dict[str, object]:
    return build_calibration(
        micro=MICRO, forward=_forward(per_leg_cores) if forward is None else forward,
        mediarelay=RELAY, stream={"width": 640, "height": 480, "fps": 30},
    )


def _write(tmp_path: pathlib.Path, result: dict[str, object]) -> pathlib.Path:
    path = tmp_path / "bridge_calibration.json"
    path.write_text(json.dumps(result, indent=2))  # as the benchmark writes it
    return path


def test_measured_values_arrive_in_the_cost_model(tmp_path: pathlib.Path) -> None:
    path = _write(tmp_path, _calibration())
    loaded = load_calibration(path)
    assert set(loaded) == {"cpu_us_per_packet_out", "video_kbps", "packets_per_s"}
    model = CostModel.from_scenario({"calibration": path.name}, tmp_path)
    t = model.table
    # 0.001 cores per leg / 120 packets/s per leg
    assert t.cpu_us_per_packet_out == pytest.approx(1e6 * 0.001 / 120)
    assert t.video_kbps == pytest.approx(8 * 983 * 120 / 1000)  # bytes counted, not assumed
    assert t.packets_per_s == pytest.approx(120 + AUDIO_PPS)
    defaults = CostTable()  # what the benchmark does not measure keeps the default
    assert (t.audio_kbps, t.cpu_us_per_packet_in, t.last_n) == \
        (defaults.audio_kbps, defaults.cpu_us_per_packet_in, defaults.last_n)
    assert t.cpu_us_per_packet_out != defaults.cpu_us_per_packet_out
    # the scenario's own [costs] still win over the calibration
    model = CostModel.from_scenario({"calibration": path.name, "video_kbps": 300}, tmp_path)
    assert model.table.video_kbps == 300


def test_every_cost_table_value_says_where_it_comes_from() -> None:
    result = _calibration()
    table, origin = result["cost_table"], result["cost_table_from"]
    assert isinstance(table, dict) and isinstance(origin, dict)
    assert set(table) <= set(origin)
    assert "e2e" in origin["cpu_us_per_packet_out"]
    assert "not measured" in origin["cpu_us_per_packet_in"]


def test_cpu_per_packet_holds_when_the_publisher_rate_drifts_between_runs() -> None:
    # the encoder sent 200, 150 then 100 packets/s in the three runs: per packet the cost is the
    # same, while cores over N alone would make the largest N look cheap
    result = _calibration(forward=_forward(0.001, stream_pps=(200, 150, 100)))
    table = result["cost_table"]
    assert isinstance(table, dict)
    assert table["cpu_us_per_packet_out"] == pytest.approx(1e6 * 0.001 / 120)
    assert table["packets_per_s"] == pytest.approx(150 + AUDIO_PPS)


def test_a_run_that_forwarded_nothing_is_left_out(tmp_path: pathlib.Path) -> None:
    broken = {"subscribers": 32, "bridge_cores": 0.02, "out_pps": 0.0, "out_bytes_per_s": 0.0,
              "in_pps": 0.0, "in_bytes_per_s": 0.0, "out_pps_per_core": 0.0}
    result = _calibration(forward=[*_forward(0.001), broken])
    assert result["excluded"] == {"forward": [32], "mediarelay": []}
    assert result["cost_table"] == _calibration()["cost_table"]
    assert result["ratio_legs_per_core"] == pytest.approx(100)
    assert "forward N=32" in verdicts(result)[0].note
    assert result["forwarder"]["e2e_largest_subscribers"] == 16  # type: ignore[index]


def test_non_positive_slope_falls_back_to_the_micro_figure(tmp_path: pathlib.Path) -> None:
    result = _calibration(per_leg_cores=0.0)
    model = CostModel.from_scenario({"calibration": _write(tmp_path, result).name}, tmp_path)
    assert model.table.cpu_us_per_packet_out == pytest.approx(11.0)  # micro at N=40
    assert result["ratio_legs_per_core"] is None
    assert "micro" in result["cost_table_from"]["cpu_us_per_packet_out"]  # type: ignore[index]


def test_verdicts_judge_each_target_on_its_named_figure() -> None:
    ok = verdicts(_calibration())
    assert [v.passed for v in ok] == [True, True, True]
    assert "100.0x" in ok[0].figure  # 1,000 legs/core vs 10
    assert "e2e" in ok[0].source and "micro N=40" in ok[1].source
    assert ok[0].line().startswith("PASS")
    # e2e marginal: 120 packets/s per leg per 0.001 cores = 120,000; shown, not judged
    assert "e2e marginal 120,000" in ok[1].line() and "meets" in ok[1].note
    result = _calibration(per_leg_cores=0.02)  # 50 legs/core: 5x MediaRelay
    result["forwarder"]["out_pps_per_core_micro"] = 39_000.0  # type: ignore[index]
    result["forwarder"]["fanout_latency_median_ms"] = 5.5  # type: ignore[index]
    bad = verdicts(result)
    assert [v.passed for v in bad] == [False, False, False]
    assert all(v.line().startswith("FAIL") for v in bad)
    assert "below" in bad[1].note  # 120 / 0.02 = 6,000 per core
    assert "5.0x" in bad[0].figure and "39,000" in bad[1].figure and "5.500 ms" in bad[2].figure


def test_the_benchmark_writes_what_build_calibration_returns() -> None:
    tree = ast.parse(BENCH.read_text())
    imported = {
        a.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
        and node.module == "bridges.calibration" for a in node.names
    }
    assert {"build_calibration", "verdicts"} <= imported
    assert "cost_model" not in BENCH.read_text()  # the old block the simulator never read
