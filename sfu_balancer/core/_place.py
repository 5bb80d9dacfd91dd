"""The placement rules of ``placement.py`` (read the rules there), compiled, for a sequence of
joins: admission, sticky, split, caps, join-rate cap, fallback, cost and ledger charge.

Joins are taken in order. A join whose ``prev`` is another join of the same room in this call
sees that join's placement (one more member and one more recent join on its bridge), and, with
``charge``, every join sees the forecast cost and recent count of the placements before it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._jit import U_FALLBACK, U_STICKY, jit, jit_inline, limits, pick_min, stress3
from .model import REASON_INDEX, Reason
from .policies.kernels import (
    BALANCED,
    EXTERNAL,
    GIVEN,
    choose_by_mask,
    choose_row,
    reads_only_the_mask,
)

STICKY = REASON_INDEX[Reason.STICKY]
NEW_ROOM = REASON_INDEX[Reason.NEW_ROOM]
REPLACE_FAILED = REASON_INDEX[Reason.REPLACE_FAILED]
SPLIT_OVERLOAD = REASON_INDEX[Reason.SPLIT_OVERLOAD]
SPLIT_JOIN_RATE = REASON_INDEX[Reason.SPLIT_JOIN_RATE]
SPLIT_CAP = REASON_INDEX[Reason.SPLIT_CAP]
STICKY_OVERLOADED = REASON_INDEX[Reason.STICKY_OVERLOADED]
NO_BRIDGE_REASON = REASON_INDEX[Reason.NO_BRIDGE]
CAPACITY = REASON_INDEX[Reason.CAPACITY]
NEEDS_POLICY = -1  # internal: an external policy must choose (first pass)

# cfg layout (placement.py builds it from RoutingConfig, CostTable and Policy)
C_MAX_PER_BRIDGE, C_JOIN_RATE, C_SPLITS, C_LAST_N, C_CPU_OUT, C_CPU_IN, C_MBPS = range(7)


@jit
def utilization_rows(load: Any, pend: Any, capacity: Any, thr: Any, avail: Any) -> Any:
    """(R,) fleet utilization of every row."""
    limit = limits(capacity, thr)[0]
    out = np.empty(load.shape[0])
    for r in range(load.shape[0]):
        out[r] = utilization(load[r], pend[r], limit, avail[r])
    return out


@jit_inline
def utilization(load: Any, pend: Any, limit: Any, avail: Any) -> float:
    """admission.fleet_utilization for one row (one pass; each resource's sums keep the
    bridge order, so the result is the same as resource by resource)."""
    used0 = used1 = used2 = room0 = room1 = room2 = 0.0
    for b in range(load.shape[0]):
        if avail[b]:
            used0 += min(load[b, 0] + pend[b, 0], limit[b, 0])
            used1 += min(load[b, 1] + pend[b, 1], limit[b, 1])
            used2 += min(load[b, 2] + pend[b, 2], limit[b, 2])
            room0 += limit[b, 0]
            room1 += limit[b, 1]
            room2 += limit[b, 2]
    share = 0.0
    share = max(share, used0 / room0 if room0 > 0 else 1.0)
    share = max(share, used1 / room1 if room1 > 0 else 1.0)
    return max(share, used2 / room2 if room2 > 0 else 1.0)


@jit_inline
def streams_load(egress: float, ingress: float, cfg: Any, out: Any) -> None:
    out[0] = egress * cfg[C_CPU_OUT] + ingress * cfg[C_CPU_IN]
    out[1] = egress * cfg[C_MBPS]
    out[2] = ingress * cfg[C_MBPS]


@jit_inline
def growth_row(room: Any, total: int, table: Any, cfg: Any, out: Any) -> None:
    """load.growth_load for one room: the expected further growth if the join lands on b.
    It depends on b only through room[b], so bridges without members share one value."""
    ln = cfg[C_LAST_N]
    extra = table[min(total + 1, table.shape[0] - 1)]
    empty = np.zeros(3)
    later = 1.0 + extra
    streams_load(later * min(max(later - 1.0, 0.0), ln), extra, cfg, empty)
    for b in range(room.shape[0]):
        if room[b] == 0:
            out[b, 0], out[b, 1], out[b, 2] = empty[0], empty[1], empty[2]
            continue
        now = room[b] + 1.0
        later = now + extra
        egress = later * min(max(later - 1.0, 0.0), ln) - now * min(max(now - 1.0, 0.0), ln)
        streams_load(egress, extra, cfg, out[b])


@jit
def place_kernel(kind: int, p: Any, cursor: Any, u: Any, load: Any, pend: Any, recent: Any,
                 cap: Any, thr: Any, age: Any, interval: float, avail: Any,
                 open_new: Any, region: Any, rows: Any, rooms: Any, rates: Any, prev: Any,
                 preg: Any, reserve: Any, active: Any, given: Any, cfg: Any, table: Any,
                 charge: bool, out_bridge: Any, out_reason: Any, out_cost: Any,
                 out_util: Any, out_stress: Any, out_split: Any) -> None:
    limit, inv = limits(cap, thr)
    place_limited(limit, inv, kind, p, cursor, u, load, pend, recent, cap, age, interval,
                  avail, open_new, region, rows, rooms, rates, prev, preg, reserve, active,
                  given, cfg, table, charge, out_bridge, out_reason, out_cost, out_util,
                  out_stress, out_split)


@jit
def place_limited(limit: Any, inv: Any, kind: int, p: Any, cursor: Any, u: Any, load: Any,
                  pend: Any, recent: Any, cap: Any, age: Any, interval: float, avail: Any,
                  open_new: Any, region: Any, rows: Any, rooms: Any, rates: Any, prev: Any,
                  preg: Any, reserve: Any, active: Any, given: Any, cfg: Any, table: Any,
                  charge: bool, out_bridge: Any, out_reason: Any, out_cost: Any,
                  out_util: Any, out_stress: Any, out_split: Any) -> None:
    """``place_kernel`` with the limits given (``limits(cap, thr)``): a live caller keeps them
    per fleet layout instead of dividing 3 B numbers per join."""
    joins, bridges = rooms.shape
    work = rooms.copy()
    wrate = rates.copy()
    cost = np.zeros((bridges, 3))
    growth = np.zeros((bridges, 3))
    host = np.zeros(3)
    projected = np.full(bridges, np.inf)
    hosting = np.zeros(bridges, dtype=np.bool_)
    sticky = np.zeros(bridges, dtype=np.bool_)
    elig = np.zeros(bridges, dtype=np.bool_)
    ln = cfg[C_LAST_N]
    for j in range(joins):
        r = rows[j]
        out_bridge[j] = -1
        out_reason[j] = NO_BRIDGE_REASON
        out_split[j] = False
        out_cost[j, 0] = out_cost[j, 1] = out_cost[j, 2] = 0.0
        out_util[j] = np.nan
        out_stress[j] = np.nan
        room = work[j]
        rate = wrate[j]
        earlier = prev[j]
        if earlier >= 0:
            for b in range(bridges):
                room[b] = work[earlier, b]
                rate[b] = wrate[earlier, b]
        if not active[j]:
            continue
        util = utilization(load[r], pend[r], limit, avail[r])
        out_util[j] = util
        if reserve[j] > 0 and not util <= 1.0 - reserve[j]:
            out_reason[j] = CAPACITY
            continue
        total = 0
        on_bridges = 0
        for b in range(bridges):
            total += room[b]
            on_bridges += room[b] > 0
        to_new = min(float(total), ln)
        streams_load(to_new + on_bridges, 1.0 + (to_new if total > 0 else 0.0), cfg, cost[0])
        has_host = under_cap = under_rate = False
        for b in range(bridges):
            hosting[b] = room[b] > 0 and avail[r, b]
            sticky[b] = False
            projected[b] = np.inf
            if hosting[b]:
                has_host = True
                streams_load(to_new + min(float(room[b]), ln) + max(on_bridges - 1, 0), 1.0,
                             cfg, host)
                projected[b] = stress3(load[r, b, 0] + pend[r, b, 0] + host[0],
                                       load[r, b, 1] + pend[r, b, 1] + host[1],
                                       load[r, b, 2] + pend[r, b, 2] + host[2], inv, b)
                if cfg[C_SPLITS] > 0:
                    cap_ok = room[b] < cfg[C_MAX_PER_BRIDGE]
                    rate_ok = cap_ok and (cfg[C_JOIN_RATE] == 0 or rate[b] < cfg[C_JOIN_RATE])
                    under_cap |= cap_ok
                    under_rate |= rate_ok
                    sticky[b] = rate_ok and projected[b] < 1.0
                else:
                    sticky[b] = True
        bridge = pick_min(projected, sticky, u[j, U_STICKY]) if has_host else -1
        reason = STICKY
        if bridge < 0:
            for b in range(bridges):
                elig[b] = open_new[r, b] and room[b] == 0
                cost[b, 0], cost[b, 1], cost[b, 2] = cost[0, 0], cost[0, 1], cost[0, 2]
            if kind == GIVEN:
                bridge = given[j]
            elif kind == EXTERNAL:
                out_reason[j] = NEEDS_POLICY
                continue
            else:
                if kind == BALANCED:
                    growth_row(room, total, table, cfg, growth)
                if reads_only_the_mask(kind):  # binds no row arrays (read choose_row)
                    bridge = choose_by_mask(kind, cursor, r, u[j], elig)
                else:
                    bridge = choose_row(kind, p, cursor, r, u[j], load[r], pend[r], inv, cap,
                                        age[r], interval, region, recent[r], elig, cost, growth,
                                        preg[j])
            if bridge >= 0 and not has_host:
                reason = NEW_ROOM if total == 0 else REPLACE_FAILED
            elif bridge >= 0:
                out_split[j] = True
                reason = (SPLIT_OVERLOAD if under_rate else
                          SPLIT_JOIN_RATE if under_cap else SPLIT_CAP)
            else:
                bridge = pick_min(projected, hosting, u[j, U_FALLBACK])
                reason = STICKY_OVERLOADED if bridge >= 0 else NO_BRIDGE_REASON
        out_reason[j] = reason
        if bridge < 0:
            continue
        if room[bridge] > 0:
            streams_load(to_new + min(float(room[bridge]), ln) + max(on_bridges - 1, 0), 1.0,
                         cfg, host)
            out_cost[j, 0], out_cost[j, 1], out_cost[j, 2] = host[0], host[1], host[2]
        else:
            out_cost[j, 0], out_cost[j, 1], out_cost[j, 2] = cost[0, 0], cost[0, 1], cost[0, 2]
        out_bridge[j] = bridge
        out_stress[j] = stress3(load[r, bridge, 0] + pend[r, bridge, 0],
                                load[r, bridge, 1] + pend[r, bridge, 1],
                                load[r, bridge, 2] + pend[r, bridge, 2], inv, bridge)
        room[bridge] += 1
        rate[bridge] += 1
        if charge:
            for k in range(3):
                pend[r, bridge, k] += out_cost[j, k]
            recent[r, bridge] += 1.0


@jit
def place_one(kind: int, p: Any, cursor: Any, u: Any, load: Any, pend: Any, recent: Any,
              cap: Any, limit: Any, inv: Any, age: Any, interval: float, avail: Any,
              open_new: Any, region: Any, room: Any, rate: Any, preg: int, reserve: float,
              cfg: Any, table: Any) -> tuple[int, int, float, float, float, float, float, bool]:
    """``place_kernel`` for one live join (row 0, nothing charged), its outcome as scalars:
    (bridge, reason, cost cpu, cost egress, cost ingress, utilization, stress, split).
    ``limit`` and ``inv`` are ``limits(cap, thresholds)``.

    The live balancer's entry point: the one-join arrays are made here, where an allocation
    costs nanoseconds, instead of in Python, where each costs a microsecond.
    """
    one = np.zeros(1, dtype=np.int64)
    out_bridge = np.empty(1, dtype=np.int64)
    out_reason = np.empty(1, dtype=np.int64)
    out_cost = np.empty((1, 3))
    out_util = np.empty(1)
    out_stress = np.empty(1)
    out_split = np.empty(1, dtype=np.bool_)
    place_limited(limit, inv, kind, p, cursor, u, load, pend, recent, cap, age, interval,
                  avail, open_new, region, one, room, rate, np.full(1, -1, dtype=np.int64),
                  np.full(1, preg, dtype=np.int64), np.full(1, reserve),
                  np.ones(1, dtype=np.bool_), one[:0], cfg, table, False, out_bridge,
                  out_reason, out_cost, out_util, out_stress, out_split)
    return (out_bridge[0], out_reason[0], out_cost[0, 0], out_cost[0, 1], out_cost[0, 2],
            out_util[0], out_stress[0], out_split[0])
