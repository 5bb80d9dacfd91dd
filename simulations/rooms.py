"""Compiled membership changes of rooms and the true load they carry (numba, nopython).

Invariants:
- ``members[r, slot, b]`` counts a room's members per bridge (never negative);
  ``true_load[r]`` (R, B, 3) is the sum over rooms of ``room_load``, up to float rounding.
- Each change is applied at once: the room's load on each bridge after the single step minus
  its load before is added to ``true_load``, so the order of float additions is event order.
  The drift this leaves (+/- updates that do not cancel exactly) is rounding only, never a
  different model; ``kernels.sample`` clamps it at 0 each tick.
- The hot loops call no compiled helper that takes arrays: numba reference-counts every array
  passed to a call (two atomic operations each), which cost more than the work here.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from sfu_balancer.core._jit import jit, jit_inline
from sfu_balancer.core._migrate_kernels import single_bridge_load


@jit
def change_rooms(members: Any, rows: Any, slots: Any, bridges: Any, steps: Any, n: int,
                 cp: Any, true_load: Any) -> None:
    """Add ``steps[j]`` members to room (``rows[j]``, ``slots[j]``) on ``bridges[j]`` for
    j < n, in order, and each change's load difference to ``true_load``.

    ``cp`` = (last_n, cpu per egress stream, cpu per ingress stream, Mbps per stream), from
    core's ``CostTable`` (``CostModel.params``)."""
    width = members.shape[2]
    for j in range(n):
        r, s, b, step = rows[j], slots[j], bridges[j], steps[j]
        if step == 0:
            continue  # no member moves: no load changes
        # The room before: its size and how many bridges hold members (one pass over B, no
        # (B,) temporaries: this loop is most of a join's or leave's cost).
        total0 = k0 = 0
        for c in range(width):
            x = members[r, s, c]
            total0 += x
            k0 += x > 0
        x0 = members[r, s, b]
        x1 = x0 + step
        total1 = total0 + step
        k1 = k0 - (x0 > 0) + (x1 > 0)
        members[r, s, b] = x1
        if k0 <= 1 and k1 <= 1:
            # On at most one bridge before and after (the common case): that bridge is b, since
            # a step onto another bridge would make two. No other bridge holds members, and a
            # bridge without members has load +0.0 either side: only b changes.
            cpu0, out0, in0 = bridge_load(float(x0), float(total0), k0, cp)
            cpu1, out1, in1 = bridge_load(float(x1), float(total1), k1, cp)
            true_load[r, b, 0] += cpu1 - cpu0
            true_load[r, b, 1] += out1 - out0
            true_load[r, b, 2] += in1 - in0
            continue
        # Split before or after: the relay streams of every bridge of the room change with the
        # room's size and bridge count, so each bridge holding members before or after is
        # updated. A bridge with none either side has load +0.0 both times (every term is a
        # sum of non-negative products, never -0.0): it is skipped.
        for c in range(width):
            y1 = members[r, s, c]
            y0 = x0 if c == b else y1
            if y0 == 0 and y1 == 0:
                continue
            cpu0, out0, in0 = bridge_load(float(y0), float(total0), k0, cp)
            cpu1, out1, in1 = bridge_load(float(y1), float(total1), k1, cp)
            true_load[r, c, 0] += cpu1 - cpu0
            true_load[r, c, 1] += out1 - out0
            true_load[r, c, 2] += in1 - in0


@jit_inline
def bridge_load(x: float, total: float, k: int, cp: Any) -> tuple[float, float, float]:
    """(cpu, egress Mbps, ingress Mbps) on a bridge holding ``x`` of a room's ``total``
    members, the room being on ``k`` bridges: on one bridge, core's ``room_streams``; split
    over k > 1 bridges, each bridge also forwards its members to the k - 1 others and receives
    up to last-N from them (relay streams). The only form of this rule (``room_load``,
    ``change_rooms`` and ``CostModel.room_load`` run it); stream counts are exact integers in
    float, so the result does not depend on the order of the bridges."""
    if not (k > 1 and x > 0):
        return single_bridge_load(x, cp)  # core's rule for a room on one bridge
    last_n = cp[0]
    egress = x * min(total - 1.0, last_n) + x * (k - 1.0)
    ingress = x + min(total - x, last_n)
    return egress * cp[1] + ingress * cp[2], egress * cp[3], ingress * cp[3]


@jit_inline
def room_load(room: Any, cp: Any, out: Any) -> None:
    """``out`` (B, 3) = the true load of a room with ``room`` (B,) members per bridge
    (``bridge_load`` on each bridge)."""
    width = room.shape[0]
    total = 0.0
    k = 0
    for b in range(width):
        total += room[b]
        k += room[b] > 0
    for b in range(width):
        out[b, 0], out[b, 1], out[b, 2] = bridge_load(float(room[b]), total, k, cp)


@jit
def rooms_load(rooms: Any, cp: Any) -> Any:
    """(N, B, 3) true load of N rooms (N, B) (``room_load`` each)."""
    out = np.empty((rooms.shape[0], rooms.shape[1], 3))
    for i in range(rooms.shape[0]):
        room_load(rooms[i], cp, out[i])
    return out


@jit
def fail_bridge(members: Any, gone: int, cp: Any, true_load: Any) -> None:
    """Every room loses its members on bridge ``gone`` (its other bridges lose the relay)."""
    hit = 0
    for r in range(members.shape[0]):
        for s in range(members.shape[1]):
            hit += members[r, s, gone] > 0
    rows, slots = np.empty(hit, np.int64), np.empty(hit, np.int64)
    steps = np.empty(hit, np.int64)
    j = 0
    for r in range(members.shape[0]):
        for s in range(members.shape[1]):
            if members[r, s, gone] > 0:
                rows[j], slots[j], steps[j] = r, s, -members[r, s, gone]
                j += 1
    change_rooms(members, rows, slots, np.full(hit, gone), steps, hit, cp, true_load)


@jit
def move_portion(members: Any, r: int, s: int, src: int, dst: int, cp: Any,
                 true_load: Any) -> int:
    """Room ``s`` of row ``r`` moves its members on ``src`` to ``dst``; returns how many."""
    n = members[r, s, src]
    change_rooms(members, np.array([r, r]), np.array([s, s]), np.array([src, dst]),
                 np.array([-n, n]), 2, cp, true_load)
    return int(n)


@jit
def portions(room: Any, due: Any) -> tuple[Any, Any, Any, Any]:
    """The room portions of one replica's (slots, B) member matrix ``room`` on the ``due``
    bridges, by bridge, then slot: (slot, bridge, members, the room's bridges (P, B))."""
    n = _portion_count(room, due)
    slot, bridge = np.empty(n, np.int64), np.empty(n, np.int64)
    size, hosts = np.empty(n, np.int64), np.empty((n, room.shape[1]), np.bool_)
    _fill_portions(room, due, slot, bridge, size, hosts, 0)
    return slot, bridge, size, hosts


@jit
def portions_rows(members: Any, row0: int, rows: Any, due: Any
                  ) -> tuple[Any, Any, Any, Any, Any]:
    """``portions`` of rows ``row0 + rows[k]`` of ``members`` on the bridges ``due[rows[k]]``,
    one row after the other: (slot, bridge, members, hosts, starts), row k's portions being
    ``starts[k]:starts[k + 1]``."""
    starts = np.zeros(rows.shape[0] + 1, np.int64)
    for k in range(rows.shape[0]):
        starts[k + 1] = starts[k] + _portion_count(members[row0 + rows[k]], due[rows[k]])
    total = starts[-1]
    slot, bridge = np.empty(total, np.int64), np.empty(total, np.int64)
    size, hosts = np.empty(total, np.int64), np.empty((total, members.shape[2]), np.bool_)
    for k in range(rows.shape[0]):
        _fill_portions(members[row0 + rows[k]], due[rows[k]], slot, bridge, size, hosts,
                       starts[k])
    return slot, bridge, size, hosts, starts


@jit
def _portion_count(room: Any, due: Any) -> int:
    n = 0
    for b in range(room.shape[1]):
        if due[b]:
            for s in range(room.shape[0]):
                n += room[s, b] > 0
    return n


@jit
def _fill_portions(room: Any, due: Any, slot: Any, bridge: Any, size: Any, hosts: Any,
                   i: int) -> None:
    """Writes the portions from index ``i`` on, in ``portions``' order."""
    slots, width = room.shape
    for b in range(width):
        if due[b]:
            for s in range(slots):
                if room[s, b] > 0:
                    slot[i], bridge[i], size[i] = s, b, room[s, b]
                    for c in range(width):
                        hosts[i, c] = room[s, c] > 0
                    i += 1
