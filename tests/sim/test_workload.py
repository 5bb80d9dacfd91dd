"""Workload, trace and schedule: distributions, determinism and bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from simulations.scenario import SimSettings, WorkloadSettings
from simulations.schedule import build_schedule
from simulations.trace import TraceError, load_trace
from simulations.workload import conferences_per_day, generate, pareto_sizes


def test_pareto_sizes_match_research_anchors() -> None:
    sizes = pareto_sizes(np.random.default_rng(1), 400_000, 1.43, 2, 100)
    assert sizes.min() == 2 and sizes.max() == 100
    assert abs(np.mean(sizes == 2) - 0.44) < 0.01  # RESEARCH.md: P(N = 2) = 0.44
    assert abs(np.mean(sizes <= 4) - 0.73) < 0.01  # P(2–4) = 0.73


def test_same_seed_same_workload_and_sessions_are_sane() -> None:
    w, sim = WorkloadSettings(conferences_per_day=3000), SimSettings(86400.0, 5.0)
    a = generate(w, sim, np.random.default_rng([0, 1]))
    b = generate(w, sim, np.random.default_rng([0, 1]))
    assert np.array_equal(a.join_t, b.join_t) and np.array_equal(a.room, b.room)
    assert np.all(a.leave_t >= a.join_t + 1.0)
    assert abs(a.rooms - 3000) < 250
    durations = np.array([a.leave_t[a.room == r].max() - a.join_t[a.room == r].min()
                          for r in range(400)])
    assert 1200 < np.median(durations) < 2600  # lognormal median 30 min


def test_exponential_surge_and_weekend() -> None:
    w = WorkloadSettings(conferences_per_day=2000, surge="exponential", to_per_day=16000,
                         over_days=14)
    rate = conferences_per_day(w, np.array([0.0, 7.0, 14.0, 20.0]))
    assert np.allclose(rate, [2000, 2000 * 8 ** 0.5, 16000, 16000])
    sim = SimSettings(7 * 86400.0, 5.0, start_weekday=0)
    s = generate(WorkloadSettings(conferences_per_day=2000, weekend_factor=0.3), sim,
                 np.random.default_rng(3))
    starts = np.array([s.join_t[s.room == r].min() for r in range(s.rooms)])
    weekend = np.sum(starts >= 5 * 86400) / 2
    weekday = np.sum(starts < 5 * 86400) / 5
    assert 0.2 < weekend / weekday < 0.4


def test_school_lead_joins_early_and_alone() -> None:
    w = WorkloadSettings(conferences_per_day=200, diurnal="school", lead_early_s=600,
                         size_min=20, size_max=30, early_fraction=1.0, early_mean_s=60)
    s = generate(w, SimSettings(86400.0, 5.0), np.random.default_rng(0))
    lead = s.member == 0
    # every class starts on the hour; its lead is there 5-10 minutes before anyone else
    hours = (s.join_t[lead] + 600) % 3600
    assert np.all((s.join_t[lead] % 3600) >= 3000)
    assert hours.size > 100
    first_pupil = np.array([s.join_t[(s.room == r) & ~lead].min() for r in range(s.rooms)])
    assert np.all(first_pupil - s.join_t[lead][np.argsort(s.room[lead])] >= 290)


def test_schedule_slots_never_overlap() -> None:
    sim = SimSettings(6 * 3600.0, 5.0)
    s = generate(WorkloadSettings(conferences_per_day=5000, diurnal="flat"), sim,
                 np.random.default_rng(7))
    sched = build_schedule([s, s], sim.horizon_s, sim.tick_s)
    assert sched.slots < s.rooms  # slots are reused
    j = sched.joins
    assert np.all(np.diff(j.seed[j.tick(100)]) >= 0)
    # ranks count joins within (tick, seed)
    chunk = j.tick(200)
    for seed in (0, 1):
        ranks = j.rank[chunk][j.seed[chunk] == seed]
        assert list(ranks) == list(range(ranks.size))


def test_session_slots_hold_one_session_at_a_time() -> None:
    """Replaying the events as the engine does (a tick's joins, then its leaves): a join
    takes a free (seed, session slot), a leave frees its own; far fewer slots than sessions."""
    sim = SimSettings(4 * 3600.0, 5.0)
    s = generate(WorkloadSettings(conferences_per_day=5000, diurnal="flat"), sim,
                 np.random.default_rng(11))
    t = generate(WorkloadSettings(conferences_per_day=2000, diurnal="flat"), sim,
                 np.random.default_rng(12))
    sched = build_schedule([s, t], sim.horizon_s, sim.tick_s)
    j, lv = sched.joins, sched.leaves
    assert sched.sessions < len(s) / 4 and j.session.dtype == np.int16
    holder: dict[tuple[int, int], tuple[int, int]] = {}  # slot -> (room slot, member)
    for k in range(sched.ticks):
        for i in range(j.tick(k).start, j.tick(k).stop):
            key = (int(j.seed[i]), int(j.session[i]))
            assert key not in holder and 0 <= key[1] < sched.sessions
            holder[key] = (int(j.slot[i]), int(j.member[i]))
        for i in range(lv.tick(k).start, lv.tick(k).stop):
            key = (int(lv.seed[i]), int(lv.session[i]))
            assert holder.pop(key) == (int(lv.slot[i]), int(lv.member[i]))
    assert len(holder) > 0  # sessions still open at the horizon keep their slots


def _write(tmp: Path, body: str) -> Path:
    path = tmp / "t.csv"
    path.write_text("t_s,room,participant,event\n" + body)
    return path


def test_a_seed_without_conferences_is_an_empty_workload() -> None:
    """A quiet seed (here: conferences so rare that none starts) has no sessions, and its
    schedule has no events; it used to fail building the member index."""
    sim = SimSettings(3600.0, 5.0)
    s = generate(WorkloadSettings(conferences_per_day=0.01, diurnal="flat"), sim,
                 np.random.default_rng(0))
    assert s.rooms == 0 and len(s) == 0
    sched = build_schedule([s], sim.horizon_s, sim.tick_s)
    assert sched.events == 0 and sched.sessions == 1


def test_trace_loads(tmp_path: Path) -> None:
    sessions, rooms = load_trace(_write(tmp_path, "0,a,p1,join\n1,a,p2,join\n5,a,p1,leave\n"
                                        "20,b,p1,join\n"))
    assert rooms == ["a", "b"] and len(sessions) == 3
    assert sessions.leave_t[0] == 5.0 and np.isinf(sessions.leave_t[1])


@pytest.mark.parametrize(("body", "line", "words"), [
    ("0,a,p1,join\nx,a,p2,join\n", 3, "t_s must be a number"),
    ("5,a,p1,join\n4,a,p2,join\n", 3, "out of order"),
    ("0,a,p1,join\n1,a,p1,join\n", 3, "again without leaving"),
    ("0,a,p1,leave\n", 2, "without having joined"),
    ("0,a,p1,hop\n", 2, "join or leave"),
    ("0,a,p1\n", 2, "expected 4 fields"),
])
def test_trace_errors_name_the_line(tmp_path: Path, body: str, line: int, words: str) -> None:
    with pytest.raises(TraceError, match=f":{line}: .*{words}"):
        load_trace(_write(tmp_path, body))
