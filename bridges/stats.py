"""Load sampling: what the bridge reports to every balancer each interval (wire ``report``).

- ``cpu``: this process's CPU time over the interval / wall time, in cores (psutil);
- ``host_cpu``: the whole host over the same interval, 0..1 (psutil);
- bytes and packets per second in and out, from the forwarder's own counters
  (``bridges.counters.TrafficCounters``), not from the OS, so they count media only;
- participants, rooms and relay streams from the worker;
- ``measured_at``: ``time.monotonic()`` when sampled;
- ``capacity``: the configured capacity (``--cpu``, ``--egress-mbps``, ``--ingress-mbps``).
The first sample covers the time since the sampler was created.

A sample less than ``MIN_WINDOW_S`` after the last one measures nothing: psutil's CPU times
move in clock ticks (10 ms), so over a window of microseconds a rate reads 0 or tens of cores.
The agent samples once as it starts, to have a report to send right after its hello; read as
a rate, that sample made about one new bridge in 60 look tens of times overloaded for its
first interval, and the balancer refused rooms on it. Such a sample reports no load (the worker
has served nothing yet) and leaves the window open, so the next one covers the whole interval.
"""

from __future__ import annotations

import time

import psutil

from bridges.sfu.worker import Worker
from sfu_balancer.wire import Capacity, Report

MIN_WINDOW_S = 0.1  # ten clock ticks of CPU time


class StatsSampler:
    def __init__(self, worker: Worker, capacity: Capacity | None = None) -> None:
        self._worker = worker
        self._capacity = capacity
        self._process = psutil.Process()
        psutil.cpu_percent(interval=None)  # primes the host counter: the next call is a delta
        self._last = self._snapshot()

    def _snapshot(self) -> tuple[float, float, int, int, int, int]:
        times = self._process.cpu_times()
        c = self._worker.counters
        return (
            time.monotonic(), times.user + times.system,
            c.bytes_in, c.bytes_out, c.packets_in, c.packets_out,
        )

    def sample(self, state: str = "serving") -> Report:
        now = self._snapshot()
        elapsed = now[0] - self._last[0]
        # cpu, host_cpu, then bytes and packets per second in and out
        rates: list[float] = [0.0] * 6  # nothing measurable yet: the window stays open
        if elapsed >= MIN_WINDOW_S:
            last, self._last = self._last, now
            host = psutil.cpu_percent(interval=None) / 100.0
            rates = [max(0.0, (now[1] - last[1]) / elapsed), min(1.0, max(0.0, host)),
                     *((now[i] - last[i]) / elapsed for i in range(2, 6))]
        worker = self._worker
        return Report(
            cpu=rates[0],
            host_cpu=rates[1],
            bytes_in_per_s=rates[2],
            bytes_out_per_s=rates[3],
            packets_in_per_s=rates[4],
            packets_out_per_s=rates[5],
            participants=worker.participant_count,
            rooms=len(worker.rooms),
            relay_streams=worker.relay_streams,
            measured_at=now[0],
            state=state,
            capacity=self._capacity,
        )
