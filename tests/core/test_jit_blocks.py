"""The compiled building blocks that several rules share."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from sfu_balancer.core._jit import inverse_limit, limits, pick_any, pick_min, prefer_region


@settings(max_examples=300, deadline=None)
@given(st.lists(st.booleans(), min_size=1, max_size=40), st.floats(0.0, 1.0, exclude_max=True))
def test_pick_any_is_pick_min_with_equal_scores(mask: list[bool], u: float) -> None:
    m = np.array(mask, dtype=np.bool_)
    assert pick_any(m, u) == pick_min(np.zeros(m.size), m, u)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.booleans(), min_size=1, max_size=30), st.integers(0, 3), st.data())
def test_prefer_region_narrows_only_when_it_leaves_a_bridge(mask: list[bool], wanted: int,
                                                           data: st.DataObject) -> None:
    m = np.array(mask, dtype=np.bool_)
    region = np.array(data.draw(st.lists(st.integers(0, 3), min_size=m.size, max_size=m.size)),
                      dtype=np.int64)
    narrowed = m & (region == wanted)
    expected = narrowed if narrowed.any() else m
    result = prefer_region(m, region, wanted)
    assert np.array_equal(result, expected)
    assert result is not m  # a copy: callers may change it


def test_limits_equal_the_numpy_products_bit_for_bit() -> None:
    rng = np.random.default_rng(0)
    capacity = rng.uniform(0.1, 1e4, (50, 3))
    thresholds = np.array([0.8, 0.75, 0.7])
    limit, inverse = limits(capacity, thresholds)
    assert np.array_equal(limit, capacity * thresholds)
    assert np.array_equal(inverse, 1.0 / (capacity * thresholds))
    assert np.array_equal(inverse_limit(capacity, thresholds), inverse)
