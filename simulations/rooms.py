"""Compiled membership changes of rooms and the true load they carry (numba, nopython).

Invariants:
- ``members[r, slot, b]`` counts a room's members per bridge; ``true_load[r]`` (R, B, 3) is
  the sum over rooms of ``room_load``.
- One call applies a batch of changes and then adds, per room it changed, the room's load
  after minus its load before, rooms in ascending (row, slot) order: the order, hence the
  floats (drift included), of the numpy form (``np.add.at`` over ``np.unique`` keys).
- The hot loops call no compiled helper that takes arrays: numba reference-counts every array
  passed to a call (two atomic operations each), which cost more than the work here.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from sfu_balancer.core._jit import jit, jit_inline
from sfu_balancer.core._migrate_kernels import single_bridge_load


@jit
def change_rooms(members: Any, head: Any, rows: Any, slots: Any, bridges: Any, steps: Any,
                 n: int, cp: Any, true_load: Any) -> None:
    """Add ``steps[j]`` members to room (``rows[j]``, ``slots[j]``) on ``bridges[j]`` for
    j < n, and the rooms' load changes to ``true_load``.

    ``head`` (R,) is all -1 on entry and on return; meanwhile it starts, per row, the chain
    (through ``link``) of the rooms changed so far, whose state before the batch is kept in
    ``saved``. ``cp`` = (last_n, cpu per egress stream, cpu per ingress stream, Mbps per
    stream), from core's ``CostTable`` (``CostModel.params``)."""
    n_slots, width = members.shape[1], members.shape[2]
    keys, link = np.empty(n, np.int64), np.empty(n, np.int64)
    saved = np.empty((n, width), members.dtype)
    rooms = 0
    for j in range(n):
        r, s = rows[j], slots[j]
        key = r * n_slots + s
        t = head[r]
        while t >= 0 and keys[t] != key:
            t = link[t]
        if t < 0:  # the room's first change in this batch: remember it as it was
            keys[rooms], link[rooms], head[r] = key, head[r], rooms
            for b in range(width):
                saved[rooms, b] = members[r, s, b]
            rooms += 1
        members[r, s, bridges[j]] += steps[j]
    # Events arrive sorted by seed, hence nearly sorted by key: insertion sort is ~linear.
    order = np.arange(rooms)
    for i in range(1, rooms):
        t = order[i]
        j = i - 1
        while j >= 0 and keys[order[j]] > keys[t]:
            order[j + 1] = order[j]
            j -= 1
        order[j + 1] = t
    for i in range(rooms):
        t = order[i]
        r, s = keys[t] // n_slots, keys[t] % n_slots
        head[r] = -1
        # room_load before and after, bridge by bridge (no (B, 3) temporaries: this loop is
        # most of a join's or leave's cost). A bridge without members before or after has
        # load exactly +0.0 in both, a delta of +0.0, which changes no true load (none is
        # ever -0.0: every term is a sum of non-negative products): it is skipped.
        total0 = total1 = 0.0
        k0 = k1 = 0
        for b in range(width):
            total0 += saved[t, b]
            k0 += saved[t, b] > 0
            total1 += members[r, s, b]
            k1 += members[r, s, b] > 0
        for b in range(width):
            x0, x1 = saved[t, b], members[r, s, b]
            if x0 == 0 and x1 == 0:
                continue
            cpu0, out0, in0 = bridge_load(float(x0), total0, k0, cp)
            cpu1, out1, in1 = bridge_load(float(x1), total1, k1, cp)
            true_load[r, b, 0] += cpu1 - cpu0
            true_load[r, b, 1] += out1 - out0
            true_load[r, b, 2] += in1 - in0


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
def fail_bridge(members: Any, head: Any, gone: int, cp: Any, true_load: Any) -> None:
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
    change_rooms(members, head, rows, slots, np.full(hit, gone), steps, hit, cp, true_load)


@jit
def move_portion(members: Any, head: Any, r: int, s: int, src: int, dst: int, cp: Any,
                 true_load: Any) -> int:
    """Room ``s`` of row ``r`` moves its members on ``src`` to ``dst``; returns how many."""
    n = members[r, s, src]
    change_rooms(members, head, np.array([r, r]), np.array([s, s]), np.array([src, dst]),
                 np.array([-n, n]), 2, cp, true_load)
    return int(n)


@jit
def portions(room: Any, due: Any) -> tuple[Any, Any, Any, Any]:
    """The room portions of one replica's (slots, B) member matrix ``room`` on the ``due``
    bridges, by bridge, then slot: (slot, bridge, members, the room's bridges (P, B))."""
    slots, width = room.shape
    n = 0
    for b in range(width):
        if due[b]:
            for s in range(slots):
                n += room[s, b] > 0
    slot, bridge = np.empty(n, np.int64), np.empty(n, np.int64)
    size, hosts = np.empty(n, np.int64), np.empty((n, width), np.bool_)
    i = 0
    for b in range(width):
        if due[b]:
            for s in range(slots):
                if room[s, b] > 0:
                    slot[i], bridge[i], size[i] = s, b, room[s, b]
                    for c in range(width):
                        hosts[i, c] = room[s, c] > 0
                    i += 1
    return slot, bridge, size, hosts
