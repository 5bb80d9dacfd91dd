"""Compiled passes of ``PendingLedger`` over its entry arrays (ledger.py states the rules).

Invariants:
- Entries are parallel arrays ``row``, ``bridge``, ``cost`` (N, 3), ``placed_at``, ``settled``
  of which the first ``n`` are live; the arrays may be longer (spare capacity).
- Entries stay in insertion order (compaction is stable), so every sum below adds costs in
  that order: the floats equal those of ``np.add.at`` over the same entries.
- These functions are callable from other compiled code (the simulator's tick passes) and are
  the only implementation of the ledger's arithmetic.
"""

from __future__ import annotations

from typing import Any

from ._jit import jit


@jit
def append(row: Any, bridge: Any, cost: Any, placed_at: Any, settled: Any, n: int,
           new_row: Any, new_bridge: Any, new_cost: Any, new_at: Any, replicas: int,
           bridges: int) -> int:
    """Append the entries whose bridge is >= 0 after the first ``n``; returns the new count,
    or -1 (nothing written) when a row or bridge is out of range. The caller guarantees the
    capacity (``n + new_row.size`` entries)."""
    for i in range(new_row.shape[0]):
        r, b = new_row[i], new_bridge[i]
        if r < 0 or r >= replicas or b >= bridges:
            return -1
    for i in range(new_row.shape[0]):
        if new_bridge[i] < 0:
            continue
        row[n], bridge[n], placed_at[n], settled[n] = (new_row[i], new_bridge[i], new_at[i],
                                                       False)
        for k in range(3):
            cost[n, k] = new_cost[i, k]
        n += 1
    return n


@jit
def _move(row: Any, bridge: Any, cost: Any, placed_at: Any, settled: Any, src: int,
          dst: int) -> None:
    row[dst], bridge[dst], placed_at[dst], settled[dst] = (row[src], bridge[src],
                                                           placed_at[src], settled[src])
    for k in range(3):
        cost[dst, k] = cost[src, k]


@jit
def settle(row: Any, bridge: Any, cost: Any, placed_at: Any, settled: Any, n: int,
           measured_at: Any, now: float, rampup_s: float, window_s: float, total: bool,
           out: Any) -> int:
    """Settle entries that a report measured at ``measured_at[row, bridge]`` shows (measured
    at least ``rampup_s`` after the placement), then drop entries both settled and placed at
    or before ``now - window_s``. With ``total``, ``out`` (R, B, 3) becomes ``pending`` of the
    entries kept, in the same pass (kept entries in their order: the same floats as
    ``pending`` afterwards). Returns the new count."""
    if total:
        out[:] = 0.0
    keep = 0
    oldest = now - window_s
    # Each field is read once into a local and written once to its kept place (keep <= i, so
    # nothing is overwritten before it is read): most kept entries move, since the oldest
    # drop first, and a per-field move re-read them (~40 % of this pass).
    for i in range(n):
        r, b, at, done = row[i], bridge[i], placed_at[i], settled[i]
        if not done and measured_at[r, b] >= at + rampup_s:
            done = True
        if done and at <= oldest:
            continue
        c0, c1, c2 = cost[i, 0], cost[i, 1], cost[i, 2]
        row[keep], bridge[keep], placed_at[keep], settled[keep] = r, b, at, done
        cost[keep, 0], cost[keep, 1], cost[keep, 2] = c0, c1, c2
        if total and not done:
            out[r, b, 0] += c0
            out[r, b, 1] += c1
            out[r, b, 2] += c2
        keep += 1
    return keep


@jit
def forget_bridge(row: Any, bridge: Any, cost: Any, placed_at: Any, settled: Any, n: int,
                  gone: int) -> int:
    """Drop every entry on bridge ``gone``; returns the new count."""
    keep = 0
    for i in range(n):
        if bridge[i] == gone:
            continue
        if keep != i:
            _move(row, bridge, cost, placed_at, settled, i, keep)
        keep += 1
    return keep


@jit
def pending(row: Any, bridge: Any, cost: Any, settled: Any, n: int, out: Any) -> None:
    """``out`` (R, B, 3) = sum of the costs of unsettled entries."""
    out[:] = 0.0
    for i in range(n):
        if not settled[i]:
            for k in range(3):
                out[row[i], bridge[i], k] += cost[i, k]


@jit
def charge_pending(out: Any, new_row: Any, new_bridge: Any, new_cost: Any) -> None:
    """Add the costs of the new entries whose bridge is >= 0 to ``out`` (R, B, 3), a
    ``pending`` total of the entries before them: new entries are unsettled and come last in
    the entry order, so the sums continue in that order and equal ``pending`` recomputed."""
    for i in range(new_row.shape[0]):
        b = new_bridge[i]
        if b < 0:
            continue
        for k in range(3):
            out[new_row[i], b, k] += new_cost[i, k]


@jit
def recent_counts(row: Any, bridge: Any, placed_at: Any, n: int, after: float,
                  out: Any) -> None:
    """``out`` (R, B) = entries placed strictly after ``after``."""
    out[:] = 0.0
    for i in range(n):
        if placed_at[i] > after:
            out[row[i], bridge[i]] += 1.0
