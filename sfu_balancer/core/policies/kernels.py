"""The built-in policies' choice for one replica row, compiled (the rules are in each policy's
module docstring; this is their only implementation).

Every row function has the same arguments: ``p`` (the policy's parameters as floats, see
``Policy.kernel_params``), ``cursor`` (per-row state, round_robin only; -1 = no pick yet),
``r`` (row), ``u`` (this join's uniforms), the row's reported ``load`` and ``pend`` (ledger)
(B, 3), ``inv`` (inverse limits) and ``cap`` (B, 3), ``age`` (B,), ``interval``, bridge
``region`` (B,), ``recent`` placements (B,), ``elig`` (B,), this join's ``cost`` and ``growth``
(B, 3) and the participant's region ``preg``. They return a bridge index, or -1.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._jit import (
    U_PICK,
    U_PICK2,
    U_SAMPLE,
    jit,
    jit_inline,
    pick_any,
    pick_min,
    prefer_region,
    sample,
    stress3,
    stress_row,
)

LEAST_LOADED, POWER_OF_D, REGION_AWARE, FILL_FIRST, ROUND_ROBIN, RANDOM, JICOFO, BALANCED = (
    range(8))
EXTERNAL = -1  # a registered policy without a kernel: placement asks its ``choose``
GIVEN = -2  # placement's second pass for an external policy: the choice is given per join


@jit_inline
def _current(load: Any, pend: Any, inv: Any, use_ledger: bool) -> Any:
    if use_ledger:
        return stress_row(load, pend, inv)
    return stress_row(load, np.zeros_like(load), inv)


@jit_inline
def least_loaded(p: Any, u: Any, load: Any, pend: Any, inv: Any, elig: Any) -> int:
    return pick_min(_current(load, pend, inv, p[0] > 0), elig, u[U_PICK])


@jit_inline
def power_of_d(p: Any, u: Any, load: Any, pend: Any, inv: Any, elig: Any) -> int:
    candidates = sample(elig, int(p[0]), u, U_SAMPLE)
    return pick_min(_current(load, pend, inv, p[1] > 0), candidates, u[U_PICK])


@jit_inline
def region_aware(p: Any, u: Any, load: Any, pend: Any, inv: Any, region: Any, elig: Any,
                 cost: Any, preg: int) -> int:
    projected = stress_row(load + pend, cost, inv)
    fits = elig & (projected < 1.0)
    chosen = prefer_region(fits, region, preg)
    if not chosen.any():
        chosen = prefer_region(elig, region, preg)
    return pick_min(_current(load, pend, inv, p[0] > 0), chosen, u[U_PICK])


@jit_inline
def fill_first(p: Any, u: Any, load: Any, pend: Any, inv: Any, elig: Any, cost: Any) -> int:
    projected = stress_row(load + pend, cost, inv)
    fits = elig & (projected < p[0])
    packed = pick_min(-stress_row(load, pend, inv), fits, u[U_PICK])
    if packed >= 0:
        return packed
    return pick_min(projected, elig, u[U_PICK2])


@jit_inline
def round_robin(cursor: Any, r: int, u: Any, elig: Any) -> int:
    """The next eligible bridge after the row's cursor; a row's first pick (cursor -1) is a
    uniformly random eligible bridge, so no bridge is favoured by its index."""
    bridges = elig.shape[0]
    if cursor[r] < 0:
        first: int = pick_any(elig, u[U_PICK])
        if first >= 0:
            cursor[r] = (first + 1) % bridges
        return first
    start = cursor[r]
    for step in range(bridges):
        b: int = (start + step) % bridges
        if elig[b]:
            cursor[r] = (b + 1) % bridges
            return b
    return -1


@jit_inline
def jicofo_single(p: Any, u: Any, load: Any, cap: Any, region: Any, recent: Any, elig: Any,
                  preg: int) -> int:
    corrected = load[:, 0] / cap[:, 0] / p[1] + p[0] * recent
    return pick_min(corrected, prefer_region(elig, region, preg), u[U_PICK])


@jit_inline
def balanced(p: Any, u: Any, load: Any, pend: Any, inv: Any, age: Any, interval: float,
             region: Any, elig: Any, cost: Any, growth: Any, preg: int) -> int:
    headroom, d, sample_above, stale_after, age_penalty = p[0], p[1], p[2], p[3], p[4]
    bridges = elig.shape[0]
    score = np.empty(bridges)
    fits = np.zeros(bridges, dtype=np.bool_)
    roomy = np.zeros(bridges, dtype=np.bool_)
    any_fits = any_roomy = False
    for b in range(bridges):
        if not elig[b]:
            continue
        e0 = load[b, 0] + pend[b, 0] + cost[b, 0]
        e1 = load[b, 1] + pend[b, 1] + cost[b, 1]
        e2 = load[b, 2] + pend[b, 2] + cost[b, 2]
        projected = stress3(e0, e1, e2, inv, b)
        uncertainty = age_penalty * max(age[b] / interval - stale_after, 0.0)
        score[b] = stress3(e0 + headroom * growth[b, 0], e1 + headroom * growth[b, 1],
                           e2 + headroom * growth[b, 2], inv, b) + uncertainty
        fits[b] = projected + uncertainty < 1.0
        roomy[b] = fits[b] and score[b] < 1.0
        any_fits |= fits[b]
        any_roomy |= roomy[b]
    candidates = roomy if any_roomy else (fits if any_fits else elig)
    candidates = prefer_region(candidates, region, preg)
    if bridges > sample_above:
        candidates = sample(candidates, int(d), u, U_SAMPLE)
    return pick_min(score, candidates, u[U_PICK])


@jit_inline
def reads_only_the_mask(kind: int) -> bool:
    """random and round_robin choose from the eligible bridges, a uniform and round_robin's
    cursor alone, reading none of the row's load arrays (``choose_by_mask``)."""
    return kind in (RANDOM, ROUND_ROBIN)


@jit_inline
def choose_by_mask(kind: int, cursor: Any, r: int, u: Any, elig: Any) -> int:
    """``choose_row`` for a kind that ``reads_only_the_mask``, binding only these arrays."""
    if kind == ROUND_ROBIN:
        return round_robin(cursor, r, u, elig)
    return pick_any(elig, u[U_PICK])  # random: a uniformly random eligible bridge


@jit_inline
def choose_row(kind: int, p: Any, cursor: Any, r: int, u: Any, load: Any, pend: Any, inv: Any,
               cap: Any, age: Any, interval: float, region: Any, recent: Any, elig: Any,
               cost: Any, growth: Any, preg: int) -> int:
    """The row's choice under policy ``kind``. Inlined, it binds every array argument, and
    numba reference-counts each binding (two atomic operations): a caller in a per-join loop
    calls ``choose_by_mask`` instead for a kind that ``reads_only_the_mask`` (in the placement
    kernel, the bindings were a third of its time per join for ``random``)."""
    if reads_only_the_mask(kind):
        return choose_by_mask(kind, cursor, r, u, elig)
    if kind == BALANCED:
        return balanced(p, u, load, pend, inv, age, interval, region, elig, cost, growth, preg)
    if kind == LEAST_LOADED:
        return least_loaded(p, u, load, pend, inv, elig)
    if kind == POWER_OF_D:
        return power_of_d(p, u, load, pend, inv, elig)
    if kind == REGION_AWARE:
        return region_aware(p, u, load, pend, inv, region, elig, cost, preg)
    if kind == FILL_FIRST:
        return fill_first(p, u, load, pend, inv, elig, cost)
    if kind == JICOFO:
        return jicofo_single(p, u, load, cap, region, recent, elig, preg)
    return -1


@jit
def choose_rows(kind: int, p: Any, cursor: Any, u: Any, load: Any, pend: Any, inv: Any,
                cap: Any, age: Any, interval: float, region: Any, recent: Any, elig: Any,
                cost: Any, growth: Any, preg: Any) -> Any:
    """``choose_row`` for every row of a view: (R,) bridge indices or -1."""
    out = np.empty(load.shape[0], dtype=np.int64)
    for r in range(load.shape[0]):
        out[r] = choose_row(kind, p, cursor, r, u[r], load[r], pend[r], inv, cap, age[r],
                            interval, region, recent[r], elig[r], cost[r], growth[r], preg[r])
    return out
