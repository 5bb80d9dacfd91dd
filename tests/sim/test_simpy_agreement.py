"""The tick engine agrees with an independent SimPy model (issue 3, validation): mean
concurrent participants and mean per-bridge load on ``steady`` with ``random``, within 2 %.
bench/simpy_reference.py runs the same comparison longer and over more seeds."""

from __future__ import annotations

from .simpy_model import compare


def test_engine_agrees_with_simpy_within_two_percent() -> None:
    a = compare(seeds=2, hours=6)  # 4 h measured after steady's 2 h warm-up
    assert a.engine_events == a.simpy_events > 10_000  # same sessions, all joined and left
    assert abs(a.participants_diff) < 0.02, a
    assert abs(a.cpu_diff) < 0.02, a
