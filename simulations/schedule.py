"""Sessions of every seed -> tick-indexed event arrays the engine consumes.

Rules:
- An event at time t belongs to tick floor(t / tick_s) and is handled at the end of that tick,
  joins first and leaves after (so a session shorter than a tick still joins, then leaves).
- Rooms are mapped to slots (a row of the engine's room matrix) by greedy interval colouring:
  a slot is reused only from the tick after its previous room's last leave, because within one
  tick joins come before leaves.
- Sessions are mapped to session slots (a column of the engine's ``where``) the same way, per
  seed, so that ``where`` holds one entry per session that can be live at once (a few hundred
  per seed), not one per (room slot, member) pair (mostly padding: rooms have 2-5 members of
  up to 100). Events carry both their room slot and their session slot.
- Joins are sorted by (tick, seed) and ranked within that group: rank j is handled in the j-th
  sequential placement step of the tick, so every join sees the ledger charges of the joins
  placed before it (as the live balancer does).
- Events at or after the horizon are dropped; sessions still open then never leave.
- Memory: seeds are consumed one at a time (``per_seed`` may be a generator, so a seed's
  sessions are freed once its events are extracted), and the event arrays are sorted with
  32-bit temporaries where they fit; a 14-day framatalk-2020 run over 100 seeds holds ~73 M
  events (19 bytes each once built, session slots in 16 bits).
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from sfu_balancer.core._jit import jit

from .workload import Sessions


@dataclass(frozen=True)
class EventBlock:
    """Events sorted by (tick, seed); ``start[k]:start[k+1]`` is tick k."""

    start: np.ndarray  # (ticks + 1,) int64 offsets
    seed: np.ndarray  # int32
    slot: np.ndarray  # int32
    member: np.ndarray  # int8
    session: np.ndarray  # int16 (int32 past 32,767 session slots): the session's slot
    rank: np.ndarray  # int32: order of the event within its (tick, seed) group

    def __len__(self) -> int:
        return int(self.seed.size)

    def tick(self, k: int) -> slice:
        return slice(int(self.start[k]), int(self.start[k + 1]))


@dataclass(frozen=True)
class Schedule:
    ticks: int
    tick_s: float
    seeds: int
    slots: int
    members: int
    sessions: int  # session slots: the width of the engine's ``where``
    joins: EventBlock
    leaves: EventBlock

    @property
    def events(self) -> int:
        return len(self.joins) + len(self.leaves)


def assign_slots(first: np.ndarray, last: np.ndarray) -> tuple[np.ndarray, int]:
    """Slot per room (by interval colouring on ticks) and the number of slots used."""
    order = np.argsort(first, kind="stable")
    slot = np.empty(first.size, dtype=np.int64)
    busy: list[tuple[int, int]] = []  # (last tick, slot)
    free: list[int] = []
    used = 0
    firsts, lasts = first[order].tolist(), last[order].tolist()
    for room, begin, end in zip(order.tolist(), firsts, lasts, strict=True):
        while busy and busy[0][0] < begin:
            heapq.heappush(free, heapq.heappop(busy)[1])
        if free:
            s = heapq.heappop(free)
        else:
            s, used = used, used + 1
        slot[room] = s
        heapq.heappush(busy, (end, s))
    return slot, used


@jit
def session_slots(first: np.ndarray, last: np.ndarray, order: np.ndarray,
                  ends: np.ndarray) -> tuple[np.ndarray, int]:
    """Slot per interval [first, last] (ticks) and the slots used, by a greedy sweep: the
    intervals in ``order`` (by ``first``), slots freed by intervals whose ``last`` is before
    the tick (``ends`` orders them by ``last``) taken again most recently freed first. Any
    valid colouring does: nothing depends on which slot a session gets."""
    n = first.shape[0]
    slot = np.empty(n, np.int64)
    free = np.empty(n, np.int64)  # a stack of free slots
    top = used = done = 0
    for i in range(n):
        begin = first[order[i]]
        while done < n and last[ends[done]] < begin:
            free[top] = slot[ends[done]]
            top += 1
            done += 1
        if top > 0:
            top -= 1
            slot[order[i]] = free[top]
        else:
            slot[order[i]] = used
            used += 1
    return slot, used


def _sessions(first: np.ndarray, last: np.ndarray) -> tuple[np.ndarray, int]:
    """Session slot per joined session (join tick ``first``, leave tick ``last``). An interval
    freed before tick ``begin`` has ``first <= last < begin``, so the sweep has already given
    it its slot."""
    order = np.argsort(first, kind="stable")
    ends = np.argsort(last, kind="stable")
    return session_slots(first, last, order, ends)


def _block(ticks: np.ndarray, seed: np.ndarray, slot: np.ndarray, member: np.ndarray,
           session: np.ndarray, n_ticks: int) -> EventBlock:
    """Sort events by (tick, seed), keeping their order within a (tick, seed) group, and rank
    them within it. The inputs are concatenated in seed order, so a stable sort by tick alone
    gives that order."""
    n = ticks.size
    order = np.argsort(ticks, kind="stable")
    ticks = ticks[order]
    seed = seed[order]
    index = np.int32 if n < 2**31 else np.int64
    first = np.ones(n, dtype=np.bool_)  # the first event of its (tick, seed) group
    if n > 1:
        np.not_equal(ticks[1:], ticks[:-1], out=first[1:])
        first[1:] |= seed[1:] != seed[:-1]
    position = np.arange(n, dtype=index)
    group_start = np.where(first, position, 0)
    del first
    np.maximum.accumulate(group_start, out=group_start)
    np.subtract(position, group_start, out=position)
    del group_start
    start = np.searchsorted(ticks, np.arange(n_ticks + 1), side="left")
    del ticks
    return EventBlock(start.astype(np.int64), seed.astype(np.int32, copy=False),
                      slot[order].astype(np.int32, copy=False),
                      member[order].astype(np.int8, copy=False),
                      session[order], position.astype(np.int32, copy=False))


def build_schedule(per_seed: Iterable[Sessions], horizon_s: float, tick_s: float) -> Schedule:
    n_ticks = int(np.ceil(horizon_s / tick_s))
    parts: dict[str, list[np.ndarray]] = {k: [] for k in
                                          ("jt", "js", "jslot", "jm", "jss", "lt", "ls",
                                           "lslot", "lm", "lss")}
    slots = members = seeds = sessions = 0
    for seed, s in enumerate(per_seed):
        seeds += 1
        join_tick = np.floor(s.join_t / tick_s)
        leave_tick = np.floor(np.minimum(s.leave_t, horizon_s + tick_s) / tick_s)
        first = np.full(s.rooms, np.iinfo(np.int64).max, dtype=np.int64)
        last = np.full(s.rooms, -1, dtype=np.int64)
        np.minimum.at(first, s.room, join_tick.astype(np.int64))
        np.maximum.at(last, s.room, leave_tick.astype(np.int64))
        live = first < n_ticks  # rooms whose first join falls inside the horizon
        slot_of, used = assign_slots(first[live], last[live])
        room_slot = np.full(s.rooms, -1, dtype=np.int64)
        room_slot[live] = slot_of
        slots = max(slots, used)
        if len(s):
            members = max(members, int(s.member.max()) + 1)
        joined = join_tick < n_ticks
        left = joined & (leave_tick < n_ticks)
        # a session still open at the horizon has leave_tick >= n_ticks: its slot stays taken
        session = np.full(len(s), -1, dtype=np.int64)
        session[joined], used = _sessions(join_tick[joined].astype(np.int64),
                                          leave_tick[joined].astype(np.int64))
        sessions = max(sessions, used)
        for tag, mask, ticks in (("j", joined, join_tick), ("l", left, leave_tick)):
            parts[tag + "t"].append(ticks[mask].astype(np.int32))
            parts[tag + "s"].append(np.full(int(mask.sum()), seed, dtype=np.int32))
            parts[tag + "slot"].append(room_slot[s.room[mask]].astype(np.int32))
            parts[tag + "m"].append(s.member[mask].astype(np.int8))
            # 16 bits where the seed's slots fit: concatenation widens only if one does not
            parts[tag + "ss"].append(session[mask].astype(
                np.int16 if used <= np.iinfo(np.int16).max else np.int32))
        del s, join_tick, leave_tick, room_slot, joined, left, session

    def take(key: str, dtype: type) -> np.ndarray:
        """Concatenate one column and drop its per-seed pieces."""
        chunks = parts.pop(key)
        return np.concatenate(chunks) if chunks else np.zeros(0, dtype)

    def block(tag: str) -> EventBlock:
        return _block(take(tag + "t", np.int32), take(tag + "s", np.int32),
                      take(tag + "slot", np.int32), take(tag + "m", np.int8),
                      take(tag + "ss", np.int16), n_ticks)
    joins = block("j")
    leaves = block("l")
    return Schedule(n_ticks, tick_s, seeds, max(slots, 1), max(members, 1), max(sessions, 1),
                    joins, leaves)
