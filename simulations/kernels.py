"""Compiled per-tick passes of the engine over every replica at once (numba, nopython).

Each pass touches only what a tick changes: the tick's join and leave events (O(events)) or
one fused sweep of the (R, B) fleet (O(R·B)), writing into the engine's arrays in place. They
carry no routing rule: placement stays core's (``place_sequence``), and these passes only
gather its inputs and apply its outputs, keep the room state and the true load, and sample.

Invariants (the engine's, see engine.py):
- ``members[r, slot, b]`` counts a room's members per bridge, ``count[r, b]`` the participants
  per bridge (= members summed over slots), ``where[r, session]`` each session's bridge (-1 =
  not connected) by session slot (schedule.py), and while it is connected ``tag[r, session]``
  = its room slot × 128 + member index (``TAG``), for the rare passes that need a room's
  sessions (moves, failures).
- ``true_load[r]``: kept by ``rooms.change_rooms`` (read the invariants there).
- ``cp`` = (last_n, cpu per egress stream, cpu per ingress stream, Mbps per stream), from
  core's ``CostTable`` (``CostModel.params``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from sfu_balancer.core._jit import jit

from .lifecycle import DRAINING, PROVISIONING, SERVING
from .prefetch import prefetch
from .rooms import change_rooms, move_portion

TAG = 128  # tag = room slot × TAG + member index (members are int8 in the schedule: < 128)
# Events ahead whose state rows are prefetched (prefetch.py): far enough for the line to
# arrive before its event is reached, near enough that it is still cached then.
AHEAD = 16


@jit
def leave_tick(seed: Any, slot: Any, session: Any, lo: int, hi: int, groups: int, seeds: int,
               where: Any, members: Any, count: Any, true_load: Any, cp: Any) -> None:
    """Leaves ``lo:hi`` of the schedule, in every policy group; a session never connected
    (refused, or lost to a failure and not yet re-placed) has nothing to leave."""
    size = groups * (hi - lo)
    rows, slots = np.empty(size, np.int64), np.empty(size, np.int64)
    bridges = np.empty(size, np.int64)
    n = 0
    for g in range(groups):
        for i in range(lo, hi):
            a = i + AHEAD
            if a < hi:  # the session's bridge, then the room's members (change_rooms)
                ar = seed[a] + g * seeds
                prefetch(where, (ar, session[a]))
                prefetch(members, (ar, slot[a], 0))
            r, s, q = seed[i] + g * seeds, slot[i], session[i]
            b = where[r, q]
            if b < 0:
                continue
            rows[n], slots[n], bridges[n] = r, s, b
            n += 1
            count[r, b] -= 1
            where[r, q] = -1
    change_rooms(members, rows, slots, bridges, np.full(n, -1), n, cp, true_load)


@jit
def gather_joins(x_rows: Any, x_slots: Any, x_sessions: Any, x_members: Any, seed: Any,
                 slot: Any, session: Any, member: Any, lo: int, row0: int, members: Any,
                 rate_cur: Any, rate_prev: Any, use_rate: bool, head: Any, link: Any,
                 rows: Any, slots: Any, sess: Any, mems: Any, rejoin: Any, room: Any,
                 rates: Any, prev: Any, where: Any, tag: Any) -> None:
    """Core's ``JoinSequence`` inputs for one group: re-joins first, then joins ``lo:`` (as
    many as ``rows`` holds after the re-joins), with each join's session slot and member index
    (``sess``, ``mems``) for ``apply_joins``. ``prev`` = the latest earlier join of the same
    (row, slot) (``JoinSequence.link``), found on the chain of the row's joins that starts at
    ``head[row0 + row]`` (all -1 on entry and on return) and runs through ``link``. The
    ``where`` and ``tag`` lines that ``apply_joins`` writes are prefetched here, with the
    room's members."""
    extra, n = x_rows.shape[0], rows.shape[0]
    for j in range(n):
        if extra <= j + AHEAD < n:  # a scheduled join; re-joins (after a failure) are few
            a = lo + j + AHEAD - extra
            ar = row0 + seed[a]
            prefetch(members, (ar, slot[a], 0))
            prefetch(where, (ar, session[a]))
            prefetch(tag, (ar, session[a]))
        if j < extra:
            r, s, q, m = x_rows[j], x_slots[j], x_sessions[j], x_members[j]
        else:
            i = lo + j - extra
            r, s, q, m = seed[i], slot[i], session[i], member[i]
        rows[j], slots[j], sess[j], mems[j], rejoin[j] = r, s, q, m, j < extra
        gr = row0 + r
        for b in range(members.shape[2]):
            room[j, b] = members[gr, s, b]
            rates[j, b] = rate_cur[gr, s, b] + rate_prev[gr, s, b] if use_rate else 0
        t = head[gr]
        while t >= 0 and slots[t] != s:
            t = link[t]
        prev[j] = t
        link[j] = head[gr]
        head[gr] = j
    for j in range(rows.shape[0]):
        head[row0 + rows[j]] = -1


@jit
def apply_joins(row0: Any, rows: Any, slots: Any, sess: Any, mems: Any, rejoin: Any,
                bridge: Any, reason: Any, new_room: int, is_split: Any, members: Any,
                where: Any, tag: Any, count: Any, true_load: Any, split: Any, cp: Any,
                reasons_m: Any, joins_m: Any, rejected_m: Any, splits_m: Any,
                use_rate: bool, rate_cur: Any) -> None:
    """Apply core's placements of one group's tick, in join order. A room's first join
    (``new_room``) clears its split flag; its first split join counts one split conference.
    Core gives ``new_room`` only to a room without members, so no split join of that room
    precedes it in the call: join order and "clear all, then mark" (the numpy form) agree.
    Re-joins are counted in ``joins_m`` when queued, not here."""
    size = rows.shape[0]
    c_rows, c_slots = np.empty(size, np.int64), np.empty(size, np.int64)
    c_bridges = np.empty(size, np.int64)
    n = 0
    for j in range(size):
        gr = row0 + rows[j]
        why = reason[j]
        reasons_m[gr, why] += 1
        if not rejoin[j]:
            joins_m[gr] += 1
        b = bridge[j]
        if b < 0:
            rejected_m[gr] += 1
            continue
        s = slots[j]
        if why == new_room:
            split[gr, s] = False
        if is_split[why] and not split[gr, s]:
            split[gr, s] = True
            splits_m[gr] += 1
        c_rows[n], c_slots[n], c_bridges[n] = gr, s, b
        n += 1
        count[gr, b] += 1
        where[gr, sess[j]] = b
        tag[gr, sess[j]] = s * TAG + mems[j]
        if use_rate:
            rate_cur[gr, s, b] += 1
    change_rooms(members, c_rows, c_slots, c_bridges, np.ones(n, np.int64), n, cp,
                 true_load)


@jit
def move_rooms(gr: int, slots: Any, srcs: Any, dsts: Any, members: Any, where: Any,
               tag: Any, count: Any, migrations: Any, migrated: Any, cp: Any,
               true_load: Any) -> Any:
    """Row ``gr``'s planned moves, in order: room ``slots[i]``'s members on ``srcs[i]`` go to
    ``dsts[i]`` (members and true load as ``rooms.move_portion``; the sessions found by their
    tag), counted as one migration each. Returns how many moved in each."""
    sizes = np.empty(slots.shape[0], np.int64)
    for i in range(slots.shape[0]):
        s, src, dst = slots[i], srcs[i], dsts[i]
        n = move_portion(members, gr, s, src, dst, cp, true_load)
        for q in range(where.shape[1]):
            if where[gr, q] == src and tag[gr, q] // TAG == s:
                where[gr, q] = dst
        count[gr, src] -= n
        count[gr, dst] += n
        migrations[gr] += 1
        migrated[gr] += n
        sizes[i] = n
    return sizes


@jit
def report(now: float, next_due: Any, state: Any, interval: float, true_load: Any,
           noise: float, rng_cell: Any, reported: Any, measured_at: Any) -> None:
    """Due live bridges measure their true load × max(1 + noise·z, 0), z standard normal
    from the generator in ``rng_cell`` (``generator_cell``), one per due bridge in row-major
    order: one factor for the report's CPU and bandwidth alike, since a bridge's CPU and both
    bandwidths all follow the packet rate it forwards (its error is one error of that rate,
    not three independent ones). Every late phase moves past ``now``."""
    rng = rng_cell[0]
    for r in range(state.shape[0]):
        for b in range(state.shape[1]):
            if not now >= next_due[r, b]:
                continue
            if SERVING <= state[r, b] <= DRAINING:
                factor = max(1.0 + noise * rng.standard_normal(), 0.0) if noise > 0 else 1.0
                for k in range(3):
                    reported[r, b, k] = true_load[r, b, k] * factor
                measured_at[r, b] = now
            next_due[r, b] += interval * (np.floor((now - next_due[r, b]) / interval) + 1.0)


@jit
def views(state: Any, seen_at: Any, now: float, available: Any, open_new: Any,
          age: Any) -> None:
    """The fleet view's masks and report ages: live bridges with a report are available,
    serving ones among them open for new rooms (fleet.py)."""
    for r in range(state.shape[0]):
        for b in range(state.shape[1]):
            live = SERVING <= state[r, b] <= DRAINING
            available[r, b] = live and np.isfinite(seen_at[r, b])
            open_new[r, b] = available[r, b] and state[r, b] == SERVING
            age[r, b] = max(now - seen_at[r, b], 0.0)


@jit
def _block_sum(a: Any, lo: int, n: int) -> float:
    """numpy's sum of a block of n <= 128: left to right below 8, else 8 accumulators."""
    if n < 8:
        res = 0.0
        for i in range(lo, lo + n):
            res += a[i]
        return res
    acc = a[lo:lo + 8].copy()
    i = 8
    while i < n - n % 8:
        for j in range(8):
            acc[j] += a[lo + i + j]
        i += 8
    res = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]))
    while i < n:
        res += a[lo + i]
        i += 1
    result: float = res
    return result


@jit
def pairwise_sum(a: Any, lo: int, n: int) -> float:
    """numpy's summation of ``a[lo:lo + n]`` (pairwise: halves, rounded down to a multiple
    of 8, until blocks of <= 128), so that sums here equal ``ndarray.sum`` bit for bit.
    Iterative (an explicit post-order stack): numba's on-disk cache mishandles recursion."""
    if n <= 128:
        return _block_sum(a, lo, n)
    depth = 64
    seg_lo, seg_n = np.empty(depth, np.int64), np.empty(depth, np.int64)
    stage, left = np.zeros(depth, np.int64), np.empty(depth)
    seg_lo[0], seg_n[0], stage[0] = lo, n, 0
    top = 0
    value = 0.0
    while top >= 0:
        if seg_n[top] <= 128:  # a leaf: its sum goes to the parent
            value = _block_sum(a, seg_lo[top], seg_n[top])
            top -= 1
        elif stage[top] == 0:  # descend left
            half = seg_n[top] // 2
            half -= half % 8
            stage[top] = 1
            seg_lo[top + 1], seg_n[top + 1], stage[top + 1] = seg_lo[top], half, 0
            top += 1
            continue
        elif stage[top] == 1:  # left done (in value): descend right
            half = seg_n[top] // 2
            half -= half % 8
            left[top] = value
            stage[top] = 2
            seg_lo[top + 1], seg_n[top + 1] = seg_lo[top] + half, seg_n[top] - half
            stage[top + 1] = 0
            top += 1
            continue
        else:  # both done: left + right
            value = left[top] + value
            top -= 1
    return value


@jit
def sample(true_load: Any, limit: Any, state: Any, count: Any, dt: float, measure: bool,
           bin_width: float, bins: int, stress: Any, rowstat: Any, overload_s: Any, peak: Any,
           stress_sum: Any, stress_samples: Any, binned: Any, bridge_s: Any, max_up: Any,
           participant_s: Any) -> None:
    """One sweep per tick: clamp the true load at 0 (float drift of +/- updates), its stress
    (core's definition, max of load / limit) into ``stress``, the per-row series figures into
    ``rowstat`` (participants, bridges up, max and mean live stress, overloaded), and with
    ``measure`` the metrics accumulators (metrics.py states what each one means) and each
    live bridge's stress bin into ``binned`` (R, B) (-1: not live; ``count_bins`` counts
    them). The live stress of a row is summed as numpy sums it (``pairwise_sum``)."""
    width = state.shape[1]
    shown = np.empty(width)  # the row's stress where live, else 0 (the summed values)
    for r in range(state.shape[0]):
        hot = live_n = up_n = people = 0
        top = 0.0
        for b in range(width):
            for k in range(3):
                true_load[r, b, k] = max(true_load[r, b, k], 0.0)
            s = max(true_load[r, b, 0] / limit[b, 0], max(true_load[r, b, 1] / limit[b, 1],
                                                          true_load[r, b, 2] / limit[b, 2]))
            stress[r, b] = s
            shown[b] = 0.0
            if measure:
                binned[r, b] = -1
            people += count[r, b]
            st = state[r, b]
            up_n += PROVISIONING <= st <= DRAINING
            if SERVING <= st <= DRAINING:
                shown[b] = s
                live_n += 1
                hot += s >= 1.0
                top = max(top, s)
                if measure:
                    binned[r, b] = min(int(s / bin_width), bins)
        if width < 8:  # the common case, inline: numpy sums short rows left to right
            total = 0.0
            for b in range(width):
                total += shown[b]
        else:
            total = pairwise_sum(shown, 0, width)
        rowstat[r, 0], rowstat[r, 1], rowstat[r, 2] = people, up_n, top
        rowstat[r, 3], rowstat[r, 4] = total / max(live_n, 1), hot
        if measure:
            overload_s[r] += hot * dt
            peak[r] = max(peak[r], top)
            stress_sum[r] += total
            stress_samples[r] += live_n
            bridge_s[r] += up_n * dt
            max_up[r] = max(max_up[r], up_n)
            participant_s[r] += people * dt


@jit
def count_bins(queue: Any, queued: int, counts: Any) -> None:
    """Add the bins of the first ``queued`` ticks of ``queue`` (T, R, B) to ``counts``
    (R, BINS + 1), row by row (each row's histogram is touched once)."""
    for r in range(queue.shape[1]):
        for t in range(queued):
            for b in range(queue.shape[2]):
                x = queue[t, r, b]
                if x >= 0:
                    counts[r, x] += 1
