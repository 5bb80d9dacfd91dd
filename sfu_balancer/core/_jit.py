"""Compiled building blocks shared by the policies and the placement rules (numba, nopython).

Rules:
- Every routing rule is written once, as a compiled function over one replica row; the numpy
  entry points (``Policy.choose``, ``place_joins``, ``place_sequence``) only shape arrays and
  call them, for the live balancer (R = 1) and the simulator (hundreds of rows) alike.
- Randomness comes from the caller's ``numpy.random.Generator`` as uniforms drawn up front,
  ``U`` per join in a fixed layout (``U_STICKY``, ``U_PICK``, ``U_PICK2``, ``U_FALLBACK``, then
  ``d`` sampling draws from ``U_SAMPLE``), so a seed gives the same decisions whatever the batch.
- Ties are broken with those uniforms, never by index: the k-th of n tied bridges wins, with
  k = floor(u × n).
- Compiled code is cached on disk (``cache=True``): the first import compiles once per machine.
  numba checks a cached function against its own file only, not the files of the blocks it
  calls or inlines: after editing a block here, delete the caches (README, Development).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, cast

import numba
import numpy as np

F = TypeVar("F", bound=Callable[..., Any])

U_STICKY, U_PICK, U_PICK2, U_FALLBACK, U_SAMPLE = 0, 1, 2, 3, 4


def jit(fn: F) -> F:
    """``numba.njit`` with the project's settings (typed for mypy)."""
    return cast(F, numba.njit(cache=True, nogil=True, error_model="numpy")(fn))


def jit_inline(fn: F) -> F:
    """``jit`` for a small block called per join or per bridge: inlined into its callers at
    compile time. A compiled call passing arrays costs ~50 ns (argument structs and reference
    counts); inlined, the same block costs ~10 ns, which at the simulator's hundreds of
    nanoseconds per join is most of the difference."""
    return cast(F, numba.njit(cache=True, nogil=True, error_model="numpy",
                              inline="always")(fn))


def uniforms(rng: np.random.Generator, joins: int, draws: int) -> np.ndarray:
    """(joins, U_SAMPLE + draws) uniforms: the whole randomness budget of ``joins`` joins."""
    return rng.random((joins, U_SAMPLE + draws))


@jit
def limits(capacity: Any, thresholds: Any) -> tuple[Any, Any]:
    """(B, 3) capacity × threshold (stress 1) and its inverse (stress = max(load × inverse)).

    Explicit loops over contiguous memory: numba's broadcast ``capacity * thresholds`` and a
    nested division loop cost ~13 µs at 1,000 bridges, more than a whole live decision should."""
    bridges = capacity.shape[0]
    limit = np.empty((bridges, 3))
    t0, t1, t2 = thresholds[0], thresholds[1], thresholds[2]
    for b in range(bridges):
        limit[b, 0] = capacity[b, 0] * t0
        limit[b, 1] = capacity[b, 1] * t1
        limit[b, 2] = capacity[b, 2] * t2
    flat = limit.ravel()
    inverse = np.empty(bridges * 3)
    for i in range(bridges * 3):
        inverse[i] = 1.0 / flat[i]
    return limit, inverse.reshape((bridges, 3))


@jit
def inverse_limit(capacity: Any, thresholds: Any) -> Any:
    """(B, 3) 1 / (capacity × threshold): stress = max(load × inverse_limit)."""
    return limits(capacity, thresholds)[1]


@jit_inline
def stress3(a0: float, a1: float, a2: float, inv: Any, b: int) -> float:
    result: float = max(a0 * inv[b, 0], max(a1 * inv[b, 1], a2 * inv[b, 2]))
    return result


@jit_inline
def pick_min(score: Any, mask: Any, u: float) -> int:
    """Index of the smallest ``score`` within ``mask`` (NaN counts as +inf), ties by ``u``;
    -1 when ``mask`` is empty."""
    best = np.inf
    count = 0
    for b in range(mask.shape[0]):
        if mask[b]:
            s = score[b] if score[b] == score[b] else np.inf
            if count == 0 or s < best:
                best = s
                count = 1
            elif s == best:
                count += 1
    if count == 0:
        return -1
    k = min(int(u * count), count - 1)
    for b in range(mask.shape[0]):
        if mask[b]:
            s = score[b] if score[b] == score[b] else np.inf
            if s == best:
                if k == 0:
                    return b
                k -= 1
    return -1


@jit_inline
def pick_any(mask: Any, u: float) -> int:
    """``pick_min`` with every score equal, without the scores: the k-th bridge of ``mask``,
    k = floor(u × count); -1 when ``mask`` is empty."""
    count = 0
    for b in range(mask.shape[0]):
        count += mask[b]
    if count == 0:
        return -1
    k = min(int(u * count), count - 1)
    for b in range(mask.shape[0]):
        if mask[b]:
            if k == 0:
                return b
            k -= 1
    return -1


@jit
def sample(mask: Any, d: int, u: Any, start: int) -> Any:
    """A uniform random subset of at most ``d`` bridges of ``mask`` (partial Fisher-Yates)."""
    idx = np.flatnonzero(mask)
    n = idx.shape[0]
    out = np.zeros(mask.shape[0], dtype=np.bool_)
    for t in range(min(d, n)):
        j = t + min(int(u[start + t] * (n - t)), n - t - 1)
        idx[t], idx[j] = idx[j], idx[t]
        out[idx[t]] = True
    return out


@jit_inline
def prefer_region(mask: Any, region: Any, wanted: int) -> Any:
    """``mask`` narrowed to bridges of region ``wanted`` when that leaves any bridge (a copy
    either way)."""
    narrowed = np.zeros(mask.shape[0], dtype=np.bool_)
    found = False
    for b in range(mask.shape[0]):
        if mask[b] and region[b] == wanted:
            narrowed[b] = True
            found = True
    if found:
        return narrowed
    return mask.copy()


@jit_inline
def stress_row(load: Any, extra: Any, inv: Any) -> Any:
    """(B,) stress of ``load + extra`` (both (B, 3)) on one row."""
    out = np.empty(load.shape[0])
    for b in range(load.shape[0]):
        out[b] = stress3(load[b, 0] + extra[b, 0], load[b, 1] + extra[b, 1],
                         load[b, 2] + extra[b, 2], inv, b)
    return out
