"""The bridge's load sampler: no rate is read over a window too short to measure."""

from __future__ import annotations

import time
from types import SimpleNamespace
from typing import Any

from bridges.stats import MIN_WINDOW_S, StatsSampler


def busy(cpu_seconds: float) -> None:
    end = time.process_time() + cpu_seconds
    while time.process_time() < end:
        pass


def fake_worker() -> Any:
    counters = SimpleNamespace(bytes_in=0, bytes_out=0, packets_in=0, packets_out=0)
    return SimpleNamespace(counters=counters, participant_count=0, rooms={}, relay_streams=0)


def test_a_sample_at_once_reports_no_load_however_the_clock_ticks() -> None:
    # Before the fix, about 1 in 60 of these read tens of cores (a 10 ms CPU clock tick over
    # microseconds of wall time); after a burst of work, as here, far more of them did.
    worker = fake_worker()
    for _ in range(200):
        sampler = StatsSampler(worker)
        busy(0.0005)
        report = sampler.sample()
        assert report.cpu == 0.0
        assert report.host_cpu == 0.0
        assert report.bytes_out_per_s == 0.0


def test_a_short_sample_leaves_the_window_open_for_the_next() -> None:
    worker = fake_worker()
    created = time.monotonic()
    sampler = StatsSampler(worker)
    worker.counters.bytes_out = 1000
    assert sampler.sample().bytes_out_per_s == 0.0  # too soon: nothing measured, nothing lost
    busy(MIN_WINDOW_S * 1.5)
    worker.counters.bytes_out = 2000
    report = sampler.sample()
    # the window runs from the sampler's creation, not from the short sample
    expected = 2000 / (report.measured_at - created)
    assert abs(report.bytes_out_per_s - expected) < 0.05 * expected
    assert 0.0 < report.cpu <= 1.2  # one busy thread, in 10 ms ticks over >= 150 ms
    assert sampler.sample().cpu == 0.0  # the next window starts at that sample
