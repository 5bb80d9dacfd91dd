"""``generator_cell(rng)``: a numpy ``Generator`` packed for compiled passes called every tick.

numba unboxes a ``Generator`` argument in Python, on every call: it types the object, then
reads its bit generator's ctypes interface. That is ~7 µs a call, and the engine makes one
such call per policy group and tick for the joins, and one for the reports; on the runs of a
plan (five policies, three seeds) it was a fifth of the run. A one-item numba typed list
holding the generator is unboxed in ~1 µs.

The list holds the generator itself, not a copy: its draws advance ``rng``'s own state, so a
pass drawing through the cell consumes the same stream as one given ``rng`` (tests check it).
The list is built by compiled code, which numba caches on disk: built from Python, the first
list of a process compiles numba's typed-list code (~0.5 s); this way it costs ~0.1 s.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numba.typed import List

from sfu_balancer.core._jit import jit


@jit
def _cell(rng: Any) -> Any:
    cell = List()
    cell.append(rng)
    return cell


def generator_cell(rng: np.random.Generator) -> Any:
    """A typed list of one item, ``rng``; compiled code draws with ``cell[0].random()``."""
    return _cell(rng)
