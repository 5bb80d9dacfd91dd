"""The prefetch hint: compiles to LLVM's prefetch, changes nothing, and rejects a wrong index."""

from __future__ import annotations

from typing import Any

import numba
import numpy as np
import pytest
from numba.core.errors import TypingError

from simulations.prefetch import prefetch


@numba.njit
def _sum_prefetching(a: Any, ahead: int) -> float:
    total = 0.0
    for i in range(a.shape[0]):
        for j in range(a.shape[1]):
            if i + ahead < a.shape[0]:
                prefetch(a, (i + ahead, j))
            total += a[i, j]
    return total


@numba.njit
def _one_index_for_two_axes(a: Any) -> None:
    prefetch(a, (0,))


def test_prefetch_emits_the_llvm_hint_and_changes_no_value() -> None:
    a = np.random.default_rng(1).random((300, 7))
    before = a.copy()
    assert _sum_prefetching(a, 16) == pytest.approx(a.sum())
    assert np.array_equal(a, before)
    (ir,) = _sum_prefetching.inspect_llvm().values()
    assert "llvm.prefetch" in ir


def test_prefetch_needs_one_integer_per_axis() -> None:
    with pytest.raises(TypingError):
        _one_index_for_two_axes(np.zeros((2, 2)))
