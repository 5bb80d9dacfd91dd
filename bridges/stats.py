"""Load sampling: what the bridge reports to every balancer each interval (wire ``report``).

- ``cpu``: this process's CPU time over the interval / wall time, in cores (psutil);
- ``host_cpu``: the whole host over the same interval, 0..1 (psutil);
- bytes and packets per second in and out, from the forwarder's own counters
  (``bridges.counters.TrafficCounters``), not from the OS, so they count media only;
- participants, rooms and relay streams from the worker;
- ``measured_at``: ``time.monotonic()`` when sampled;
- ``capacity``: the configured capacity (``--cpu``, ``--egress-mbps``, ``--ingress-mbps``).
The first sample covers the time since the sampler was created.
"""

from __future__ import annotations

import time

import psutil

from bridges.sfu.worker import Worker
from sfu_balancer.wire import Capacity, Report


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
        last, self._last = self._last, now
        elapsed = max(now[0] - last[0], 1e-6)
        host = psutil.cpu_percent(interval=None) / 100.0
        worker = self._worker
        return Report(
            cpu=max(0.0, (now[1] - last[1]) / elapsed),
            host_cpu=min(1.0, max(0.0, host)),
            bytes_in_per_s=(now[2] - last[2]) / elapsed,
            bytes_out_per_s=(now[3] - last[3]) / elapsed,
            packets_in_per_s=(now[4] - last[4]) / elapsed,
            packets_out_per_s=(now[5] - last[5]) / elapsed,
            participants=worker.participant_count,
            rooms=len(worker.rooms),
            relay_streams=worker.relay_streams,
            measured_at=now[0],
            state=state,
            capacity=self._capacity,
        )
