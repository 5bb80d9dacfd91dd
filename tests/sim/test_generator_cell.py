"""A generator cell draws the generator's own stream and advances the generator itself."""

from __future__ import annotations

from typing import Any

import numpy as np

from sfu_balancer.core._jit import jit
from simulations.generator_cell import generator_cell


@jit
def _draw_through(cell: Any, n: int) -> Any:
    rng = cell[0]
    out = np.empty(n)
    for i in range(n):
        out[i] = rng.random()
    return out


def test_draws_through_a_cell_are_the_generators_and_advance_it() -> None:
    rng = np.random.default_rng(20201)
    cell = generator_cell(rng)
    want = np.random.default_rng(20201).random(12)
    assert np.array_equal(_draw_through(cell, 7), want[:7])
    assert rng.random() == want[7]  # the cell drew from rng's state, not from a copy
    assert np.array_equal(_draw_through(cell, 4), want[8:12])
