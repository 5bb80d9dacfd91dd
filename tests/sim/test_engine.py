"""Engine invariants: state stays consistent, decisions come from core, failures re-place."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import sfu_balancer.core.placement as core_placement
from simulations import engine as sim_engine
from simulations import joins as sim_joins
from simulations import kernels, runner
from simulations.cli import cli
from simulations.engine import Engine
from simulations.scenario import FleetEvent, load_scenario

SCENARIOS = Path(__file__).parents[2] / "simulations" / "scenarios"


def _steady(**kw: object):  # type: ignore[no-untyped-def]
    return load_scenario(SCENARIOS / "steady.toml", **{"hours": 1, "seeds": 2, "warmup_s": 0,
                                                       **kw})


@pytest.mark.parametrize("events", [(), (FleetEvent(1200.0, "fail", 0),
                                        FleetEvent(1500.0, "drain", 1, 300.0))])
def test_state_is_consistent_and_ledger_mirror_matches_core(
        events: tuple[FleetEvent, ...]) -> None:
    sc = replace(_steady(policies=["balanced", "round_robin"]), events=events)
    engine = Engine(sc, runner.prepare(sc), list(sc.sim.policies))
    for k in range(engine.schedule.ticks):
        engine.step(k)
    # participants per bridge == room members per bridge == sessions per bridge
    assert np.array_equal(engine.count, engine.members.sum(axis=1))
    for b in range(engine.fleet.width):
        assert np.array_equal(engine.count[:, b], (engine.where == b).sum(axis=1))
    # the connected sessions, counted by their tag's room and their bridge, are the rooms
    r, q = np.nonzero(engine.where >= 0)
    by_tag = np.zeros_like(engine.members, dtype=np.int64)
    np.add.at(by_tag, (r, engine.tag[r, q] // kernels.TAG, engine.where[r, q]), 1)
    assert np.array_equal(by_tag, engine.members)
    assert engine.where.shape[1] < engine.schedule.slots * engine.schedule.members / 4
    # the incrementally kept true load equals the load recomputed from the rooms
    exact = engine.costs.room_load(engine.members).sum(axis=1)
    assert np.allclose(engine.true_load, exact, atol=1e-9)
    m = engine.metrics
    left = m.joins - m.rejected - engine.count.sum(axis=1)
    assert np.all(left > 0)  # people left, and nobody is counted twice
    assert engine.count.sum() > 0
    if events:  # the failure re-placed sessions and the drain moved rooms
        assert np.all(m.rejoins > 0) and np.all(m.migrations > 0)


def test_every_decision_goes_through_core(monkeypatch: pytest.MonkeyPatch) -> None:
    """The engine's compiled join tick runs core's placement kernel with the inputs core's
    ``place_sequence`` gives it: routing every tick through ``place_sequence`` itself gives
    the same run, bit for bit, and every join (and re-join) of it was placed by core."""
    sc = _steady(policies=["power_of_d", "balanced"], seeds=2)
    sc = replace(sc, events=(FleetEvent(at_s=1800.0, action="fail", bridge=0),))
    direct = runner.run(sc)
    calls = {"n": 0, "joins": 0}
    real = core_placement.place_sequence

    def counting(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        calls["joins"] += args[1].rows.size
        return real(*args, **kwargs)

    def by_place_sequence(e, g, g_index, now, seen, chunk):  # type: ignore[no-untyped-def]
        sim_joins.place_tick_by_choose(e, g, now, seen, chunk)
    monkeypatch.setattr(sim_joins, "place_sequence", counting)
    monkeypatch.setattr(sim_engine, "place_tick", by_place_sequence)
    routed = runner.run(sc)
    joins = sum(row["joins"] + row["rejoins"] for row in routed.summary)
    assert calls["n"] > 100 and joins > 100
    assert calls["joins"] >= joins and all(row["rejoins"] > 0 for row in routed.summary)
    assert routed.summary == direct.summary
    assert np.array_equal(np.stack(routed.metrics.series), np.stack(direct.metrics.series))
    assert np.array_equal(routed.metrics.hist, direct.metrics.hist)
    source = "".join(p.read_text() for p in (SCENARIOS.parent).glob("*.py"))
    assert "def choose" not in source and "pick_min" not in source


def test_failure_re_places_participants_elsewhere() -> None:
    sc = _steady(policies=["balanced", "jicofo_single"])
    sc = replace(sc, events=(FleetEvent(at_s=1800.0, action="fail", bridge=0),))
    result = runner.run(sc)
    engine_rows = result.summary
    assert all(r["rejoins"] > 0 for r in engine_rows)
    series = np.stack(result.metrics.bridge_series)  # after the failure bridge 0 is not live
    assert np.all(np.isnan(series[-1, :, 0]))


def test_drain_moves_everyone_off_at_the_deadline() -> None:
    sc = _steady(policies=["balanced"])
    sc = replace(sc, events=(FleetEvent(at_s=600.0, action="drain", bridge=1,
                                        deadline_s=600.0),))
    engine = Engine(sc, runner.prepare(sc), ["balanced"])
    for k in range(engine.schedule.ticks):
        engine.step(k)
    assert np.all(engine.count[:, 1] == 0)
    assert engine.metrics.migrations.sum() > 0


def test_autoscaling_grows_with_the_surge() -> None:
    sc = load_scenario(SCENARIOS / "framatalk-2020.toml", hours=14, seeds=1,
                       policies=["balanced"])
    row = runner.run(sc).summary[0]
    assert row["max_bridges_up"] > 3  # started with 3, the 12 h office peak needs more


def test_cli_run_writes_outputs_and_rejects_unknown_policy(tmp_path: Path) -> None:
    cli_runner = CliRunner()
    result = cli_runner.invoke(cli, ["run", str(SCENARIOS / "join-burst.toml"), "--seeds", "1",
                                     "--policies", "balanced,random", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "overload_bridge_s" in result.output
    header = (tmp_path / "summary.csv").read_text().splitlines()[0].split(",")
    assert header[:10] == ["policy", "seed", "joins", "rejected_joins", "overload_bridge_s",
                           "peak_stress", "p99_stress", "split_conferences", "migrations",
                           "bridge_hours"]
    for png in ("stress_per_bridge", "overload", "rejected_joins", "bridges_used",
                "policy_comparison"):
        assert (tmp_path / f"{png}.png").stat().st_size > 1000
    assert (tmp_path / "series.csv").read_text().count("\n") > 10
    bad = cli_runner.invoke(cli, ["run", str(SCENARIOS / "steady.toml"), "--policies", "nope"])
    assert bad.exit_code != 0 and "known policies" in bad.output and "balanced" in bad.output
