"""Seeded workload: who joins which room when, and when they leave.

Rules:
- Every random draw comes from the ``numpy.random.Generator`` passed in; one seed gives one
  workload, shared by every policy compared on that seed (common random numbers).
- Conferences arrive as a non-homogeneous Poisson process, piecewise constant per hour:
  rate = conferences_per_day(t) × diurnal(hour) × weekend factor / 24 h, the diurnal profile
  having mean 1 over a day. ``conferences_per_day`` counts weekday conferences.
- ``school``: conferences start exactly on the hour; with ``lead_early_s`` the first member
  (the teacher) joins early and alone.
- ``burst``: extra conferences start uniformly within ``over_s`` of ``at_s`` (jicofo#477's
  restart storm, jicofo#1298's 92 joins in 31 s).
- Sizes: discrete Pareto P(N >= n) = (n/min)^-alpha, capped at max (the cap takes the tail).
  Durations: lognormal with the given median and sigma, capped at ``duration_max_s``.
- Joins: ``early_fraction`` join within Exp(early_mean_s) of the start, the rest uniformly
  through the meeting. Leaves mirror this: ``early_fraction`` leave within Exp(early_mean_s)
  of the end, the rest uniformly between their join and the end. A session lasts >= 1 s.
- A session is one participant's stay (join -> leave) in one room; ``member`` numbers the
  sessions of a room so that no two overlapping sessions share a number (< 127).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .scenario import SimSettings, WorkloadSettings

# Hourly weights, normalised to mean 1. Office peaks 12–13 h (Whereby 2020); school starts
# classes on the hour from 8 h; flat is the control.
_OFFICE = [0.10, 0.05, 0.05, 0.05, 0.05, 0.10, 0.30, 0.80, 1.60, 2.00, 2.10, 2.20,
           2.40, 2.30, 2.10, 2.00, 1.70, 1.20, 0.80, 0.60, 0.50, 0.40, 0.30, 0.20]
_SCHOOL = [0.0] * 8 + [4.0, 3.0, 3.0, 2.5, 1.0, 2.5, 2.0, 1.0] + [0.0] * 8
PROFILES = {
    "office": np.array(_OFFICE) / np.mean(_OFFICE),
    "school": np.array(_SCHOOL) / np.mean(_SCHOOL),
    "flat": np.ones(24),
}
MAX_MEMBERS = 127  # member numbers fit int8


@dataclass(frozen=True)
class Sessions:
    """Participant sessions of one seed; arrays have one entry per session."""

    join_t: np.ndarray  # float64 seconds
    leave_t: np.ndarray  # float64 seconds, inf = still there at the end
    room: np.ndarray  # int64 room number, 0..rooms-1
    member: np.ndarray  # int64 session number within the room, 0..126
    rooms: int

    def __len__(self) -> int:
        return int(self.join_t.size)


def conferences_per_day(w: WorkloadSettings, days: np.ndarray) -> np.ndarray:
    """Weekday conference rate at time ``days`` (fractional days since the start)."""
    if w.surge == "exponential":
        progress = np.clip(days / w.over_days, 0.0, 1.0)
        return w.conferences_per_day * (w.to_per_day / max(w.conferences_per_day, 1e-9)) \
            ** progress if w.conferences_per_day > 0 else np.zeros_like(days)
    if w.surge == "step":
        return np.where(days >= w.over_days, w.to_per_day, w.conferences_per_day)
    return np.full_like(days, w.conferences_per_day)


def hourly_rate(w: WorkloadSettings, sim: SimSettings) -> np.ndarray:
    """Expected conference starts in each hour of the horizon."""
    hours = int(np.ceil(sim.horizon_s / 3600.0))
    index = np.arange(hours)
    days = (index + 0.5) / 24.0
    weekday = (sim.start_weekday + index // 24) % 7
    weekend = np.where(weekday >= 5, w.weekend_factor, 1.0)
    result: np.ndarray = conferences_per_day(w, days) * PROFILES[w.diurnal][index % 24] \
        * weekend / 24.0
    return result


def pareto_sizes(rng: np.random.Generator, n: int, alpha: float, low: int, high: int
                 ) -> np.ndarray:
    u = 1.0 - rng.random(n)  # (0, 1]
    return np.minimum(np.floor(low * u ** (-1.0 / alpha)), high).astype(np.int64)


def generate(w: WorkloadSettings, sim: SimSettings, rng: np.random.Generator) -> Sessions:
    """Synthetic sessions for one seed."""
    rate = hourly_rate(w, sim)
    counts = rng.poisson(rate)
    hour_start = np.repeat(np.arange(rate.size) * 3600.0, counts)
    if w.diurnal == "school":
        start = hour_start
    else:
        start = hour_start + rng.random(hour_start.size) * 3600.0
    if w.burst_conferences:
        burst = w.burst_at_s + rng.random(w.burst_conferences) * w.burst_over_s
        start = np.sort(np.concatenate([start, burst]))
    start = start[start < sim.horizon_s]
    rooms = start.size
    size = pareto_sizes(rng, rooms, w.size_alpha, w.size_min, w.size_max)
    duration = np.minimum(w.duration_median_s * np.exp(w.duration_sigma
                                                       * rng.standard_normal(rooms)),
                          w.duration_max_s)
    room = np.repeat(np.arange(rooms), size)
    first = (np.cumsum(size) - size).astype(np.int64)  # each room's first member (0 rooms: none)
    member = np.arange(room.size) - np.repeat(first, size)
    begin, length = start[room], duration[room]
    end = begin + length
    n = room.size
    early = rng.random(n) < w.early_fraction
    join = np.where(early, begin + rng.exponential(max(w.early_mean_s, 1e-9), n),
                    begin + rng.random(n) * length)
    join = np.minimum(join, end)
    stays = rng.random(n) < w.early_fraction
    leave = np.where(stays, end - rng.exponential(max(w.early_mean_s, 1e-9), n),
                     join + rng.random(n) * (end - join))
    if w.lead_early_s > 0:
        lead = member == 0
        join[lead] = begin[lead] - w.lead_early_s * (0.5 + 0.5 * rng.random(int(lead.sum())))
        leave[lead] = end[lead]
    join = np.maximum(join, 0.0)
    leave = np.maximum(leave, join + 1.0)
    return Sessions(join, leave, room, member, rooms)
