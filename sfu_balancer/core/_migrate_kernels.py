"""The migration plans of ``migration.py`` (read the rules there), compiled, for one replica row.

A plan visits room portions in a fixed order and asks the policy for a target for each one it
may move; ``work`` (B, 3) is the plan's expected load, updated by each planned move.

- Rebalance: the hot bridges (expected stress >= ``hot``, available, cooled) in decreasing
  stress (ties in bridge order), and per hot bridge its portions by size (ties in the caller's
  order), smallest first, within the move budget and while the bridge is still hot.
- Drain: every portion on a due bridge, largest first (ties in the caller's order); one with no
  target is stranded.

A built-in stateless policy chooses inside the kernel (``choose_rows`` on the one row, drawing
its uniforms from ``rng`` as ``Policy.choose`` does: ``U_SAMPLE + draws`` per choice). Any
other policy (a registered policy without a kernel, or one with per-row state) is asked from
Python: with ``ask``, the kernel stops at each choice (returns ``ASK``) with the eligible
bridges, the plan's pending load (``work - load``) and the portion's cost in ``elig``,
``pend`` and ``cost``, and the caller calls it again with the answer in ``given``. ``st``
keeps where the plan is between calls (all zero at the start).

Floats: the same operations in the same order as the numpy form these replace (``load +
pending``, ``x / limit``, ``room_streams`` and ``CostTable.streams_to_load``), so plans and
loads are bit for bit those of the numpy form.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._jit import U_SAMPLE, jit, jit_inline
from .policies.kernels import BALANCED, choose_rows

DONE, ASK = 0, 1
NOT_GIVEN = -2
# st layout: phase (0 = not started), position in the visit order, position within the
# source's portions, budget left, moves planned, hot bridges, rebalanced bridges
S_PHASE, S_AT, S_LOCAL, S_BUDGET, S_MOVES, S_HOT, S_DONE = range(7)
STATE = 7
# cp layout: last_n, cpu per egress stream, cpu per ingress stream, Mbps per stream
P_LAST_N, P_CPU_OUT, P_CPU_IN, P_MBPS = range(4)


@jit_inline
def single_bridge_load(n: float, cp: Any) -> tuple[float, float, float]:
    """(cpu, egress Mbps, ingress Mbps) of a room of ``n`` members all on one bridge:
    ``room_streams``, then ``CostTable.streams_to_load``, compiled (``cp`` =
    ``CostTable.kernel_params()``). The simulator's true load runs it too."""
    egress = n * min(max(n - 1.0, 0.0), cp[P_LAST_N])
    ingress = n
    return (egress * cp[P_CPU_OUT] + ingress * cp[P_CPU_IN], egress * cp[P_MBPS],
            ingress * cp[P_MBPS])


@jit_inline
def portion_load(members: int, cp: Any, out: Any) -> None:
    """``out`` (3,) = the load of a room of ``members`` on one bridge."""
    out[0], out[1], out[2] = single_bridge_load(float(members), cp)


@jit_inline
def _stress(work: Any, limit: Any, b: int) -> float:
    result: float = max(work[b, 0] / limit[b, 0], max(work[b, 1] / limit[b, 1],
                                                      work[b, 2] / limit[b, 2]))
    return result


@jit_inline
def _candidates(i: int, members: int, work: Any, load: Any, limit: Any, open_new: Any,
                hosts: Any, bound: float, cp: Any, one: Any, elig: Any, pend: Any,
                cost: Any) -> None:
    """The request for portion ``i``: bridges open for new rooms, not hosting the room, that
    stay below ``bound`` with it; the plan's pending load; the portion's cost everywhere."""
    portion_load(members, cp, one)
    for b in range(load.shape[0]):
        projected = max((work[b, 0] + one[0]) / limit[b, 0],
                        max((work[b, 1] + one[1]) / limit[b, 1],
                            (work[b, 2] + one[2]) / limit[b, 2]))
        elig[b] = open_new[b] and not hosts[i, b] and projected < bound
        for k in range(3):
            pend[b, k] = work[b, k] - load[b, k]
            cost[b, k] = one[k]


@jit_inline
def _choose(kind: int, p: Any, rng: Any, draws: int, load: Any, pend: Any, inv: Any,
            cap: Any, age: Any, interval: float, region: Any, recent: Any, elig: Any,
            cost: Any) -> int:
    """``Policy.choose`` on a one-row view: the same compiled ``choose_rows`` (called, not
    inlined again: the policies compile once, here and for ``Policy.choose`` alike)."""
    b = load.shape[0]
    u = np.empty((1, U_SAMPLE + draws))
    for k in range(U_SAMPLE + draws):
        u[0, k] = rng.random()
    # a moved room has already grown: no growth forecast (zeros) for the policies that read it
    growth = np.zeros((1, b, 3)) if kind == BALANCED else cost.reshape((1, b, 3))
    no_cursor = np.full(1, -1, np.int64)  # stateful policies are asked from Python
    picks = choose_rows(kind, p, no_cursor, u, load.reshape((1, b, 3)), pend.reshape((1, b, 3)),
                        inv, cap, age.reshape((1, b)), interval, region,
                        recent.reshape((1, b)), elig.reshape((1, b)), cost.reshape((1, b, 3)),
                        growth, np.full(1, -1, np.int64))
    target: int = picks[0]
    return target


@jit_inline
def _apply(src: int, dst: int, members: int, cp: Any, one: Any, work: Any) -> None:
    portion_load(members, cp, one)
    for k in range(3):
        work[src, k] -= one[k]
    for k in range(3):
        work[dst, k] += one[k]


@jit
def rebalance(kind: int, p: Any, ask: bool, rng: Any, draws: int, load: Any, limit: Any,
              inv: Any, cap: Any, age: Any, interval: float, region: Any, recent: Any,
              available: Any, open_new: Any, cooled: Any, hot: float, max_moves: int,
              p_bridge: Any, p_members: Any, hosts: Any, cp: Any, work: Any, st: Any,
              given: int, order: Any, elig: Any, pend: Any, cost: Any, out_portion: Any,
              out_target: Any, out_rebalanced: Any) -> int:
    """One rebalancing round (module docstring). ``order`` (B,) holds the hot bridges once
    started; returns ``DONE`` (moves in ``out_portion``/``out_target``, ``st[S_MOVES]`` of
    them, the bridges that shed load in ``out_rebalanced``, ``st[S_DONE]`` of them) or
    ``ASK``."""
    bridges = load.shape[0]
    one = np.empty(3)
    if st[S_PHASE] == 0:
        stress = np.empty(bridges)
        n = 0
        for b in range(bridges):
            stress[b] = _stress(work, limit, b)
            if available[b] and cooled[b] and stress[b] >= hot:
                order[n] = b
                n += 1
        ranked = np.argsort(-stress[order[:n]], kind="mergesort")  # stable
        order[:n] = order[:n][ranked]
        st[S_PHASE], st[S_HOT], st[S_AT], st[S_LOCAL], st[S_BUDGET] = 1, n, 0, 0, max_moves
    while st[S_AT] < st[S_HOT]:
        source = order[st[S_AT]]
        mine = np.nonzero(p_bridge == source)[0]
        local = mine[np.argsort(p_members[mine], kind="mergesort")]  # stable: smallest first
        while st[S_LOCAL] < local.shape[0]:
            i = local[st[S_LOCAL]]
            if given == NOT_GIVEN:
                if _stress(work, limit, source) < hot:
                    break
                if p_members[i] > st[S_BUDGET]:
                    st[S_LOCAL] += 1
                    continue
                _candidates(i, p_members[i], work, load, limit, open_new, hosts, hot, cp, one,
                            elig, pend, cost)
                if ask:
                    return ASK
                target = _choose(kind, p, rng, draws, load, pend, inv, cap, age, interval,
                                 region, recent, elig, cost)
            else:
                target, given = given, NOT_GIVEN
            st[S_LOCAL] += 1
            if target < 0:
                continue
            _apply(source, target, p_members[i], cp, one, work)
            st[S_BUDGET] -= p_members[i]
            out_portion[st[S_MOVES]], out_target[st[S_MOVES]] = i, target
            st[S_MOVES] += 1
        if st[S_BUDGET] < max_moves:
            out_rebalanced[st[S_DONE]] = source
            st[S_DONE] += 1
        st[S_AT] += 1
        st[S_LOCAL], st[S_BUDGET] = 0, max_moves
    return DONE


@jit
def drain(kind: int, p: Any, ask: bool, rng: Any, draws: int, load: Any, limit: Any,
          inv: Any, cap: Any, age: Any, interval: float, region: Any, recent: Any,
          open_new: Any, due: Any, p_bridge: Any, p_members: Any, hosts: Any, cp: Any,
          work: Any, st: Any, given: int, order: Any, elig: Any, pend: Any, cost: Any,
          out_portion: Any, out_target: Any) -> int:
    """Move every portion off the ``due`` bridges (module docstring). ``order`` (P,) holds the
    visit order once started; returns ``DONE`` (a target per visited portion in
    ``out_portion``/``out_target``, -1 = stranded, ``st[S_MOVES]`` of them) or ``ASK``."""
    one = np.empty(3)
    if st[S_PHASE] == 0:
        order[:] = np.argsort(-p_members, kind="mergesort")  # stable: largest first
        st[S_PHASE], st[S_AT] = 1, 0
    while st[S_AT] < order.shape[0]:
        i = order[st[S_AT]]
        src = p_bridge[i]
        if not due[src]:
            st[S_AT] += 1
            continue
        if given == NOT_GIVEN:
            _candidates(i, p_members[i], work, load, limit, open_new, hosts, np.inf, cp, one,
                        elig, pend, cost)
            if ask:
                return ASK
            target = _choose(kind, p, rng, draws, load, pend, inv, cap, age, interval, region,
                             recent, elig, cost)
        else:
            target, given = given, NOT_GIVEN
        st[S_AT] += 1
        if target >= 0:
            _apply(src, target, p_members[i], cp, one, work)
        out_portion[st[S_MOVES]], out_target[st[S_MOVES]] = i, target
        st[S_MOVES] += 1
    return DONE


@jit
def hot_bridges(load: Any, pending: Any, limit: Any, available: Any, cooled: Any, hot: float,
                out: Any) -> None:
    """``out`` (R, B) = the bridges ``rebalance`` would take as hot, every row at once:
    available, cooled, and expected stress (``load + pending`` over ``limit``) >= ``hot``."""
    for r in range(load.shape[0]):
        for b in range(load.shape[1]):
            s = max((load[r, b, 0] + pending[r, b, 0]) / limit[b, 0],
                    max((load[r, b, 1] + pending[r, b, 1]) / limit[b, 1],
                        (load[r, b, 2] + pending[r, b, 2]) / limit[b, 2]))
            out[r, b] = available[r, b] and cooled[r, b] and s >= hot


@jit
def rebalance_rows(kind: int, p: Any, rng: Any, draws: int, load: Any, pending: Any,
                   limit: Any, inv: Any, cap: Any, age: Any, interval: float, region: Any,
                   recent: Any, available: Any, open_new: Any, cooled: Any, hot: float,
                   max_moves: int, rows: Any, starts: Any, p_bridge: Any, p_members: Any,
                   hosts: Any, cp: Any, out_portion: Any, out_target: Any, moves: Any,
                   out_rebalanced: Any, rebalanced: Any) -> None:
    """``rebalance`` of rows ``rows`` of a view, in that order, for a policy never asked.
    Row k's portions are ``starts[k]:starts[k + 1]`` of ``p_bridge``, ``p_members`` and
    ``hosts``, and its ``cooled`` bridges ``cooled[k]``. Its ``moves[k]`` moves are written from
    ``starts[k]`` on in ``out_portion`` (indices within the row's portions) and ``out_target``,
    and its ``rebalanced[k]`` bridges that shed load in ``out_rebalanced[k]``. Each row's plan
    sees ``load[r] + pending[r]`` as the per-row call does (``migration.rebalance_moves``)."""
    bridges = load.shape[1]
    for k in range(rows.shape[0]):
        r, lo, hi = rows[k], starts[k], starts[k + 1]
        work = load[r] + pending[r]
        st = np.zeros(STATE, np.int64)
        order = np.zeros(bridges, np.int64)
        elig = np.zeros(bridges, np.bool_)
        pend, cost = np.zeros((bridges, 3)), np.zeros((bridges, 3))
        rebalance(kind, p, False, rng, draws, load[r], limit, inv, cap, age[r], interval,
                  region, recent[r], available[r], open_new[r], cooled[k], hot, max_moves,
                  p_bridge[lo:hi], p_members[lo:hi], hosts[lo:hi], cp, work, st, NOT_GIVEN,
                  order, elig, pend, cost, out_portion[lo:hi], out_target[lo:hi],
                  out_rebalanced[k])
        moves[k], rebalanced[k] = st[S_MOVES], st[S_DONE]
