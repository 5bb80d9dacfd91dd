"""Load, stress and the cost of a join.

Rules:
- Load vectors are (cpu cores, egress Mbps, ingress Mbps) on the last axis (model.RESOURCES).
- stress = max over resources of load / (capacity × threshold). stress >= 1 means overloaded.
  Bandwidth counts as much as CPU: a bridge with a full NIC is overloaded at 20 % CPU.
- A "stream" is one participant's audio+video feed crossing a bridge once. A participant who
  joins a room with ``n`` members on its bridge and ``total`` members overall adds 1 ingress
  stream, min(total, last_n) egress streams to itself, min(n, ...) egress streams to the local
  members, and one egress stream to each other bridge of the room (the relay).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .model import CPU, EGRESS, INGRESS

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class Thresholds:
    """Fraction of each capacity at which a bridge counts as overloaded (Jitsi uses 0.8)."""

    cpu: float = 0.8
    bandwidth: float = 0.8

    def __post_init__(self) -> None:
        for name in ("cpu", "bandwidth"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and 0 < value <= 1):
                raise ValueError(f"{name}_threshold must be in (0, 1], got {value!r}")

    def as_array(self) -> FloatArray:
        return np.array([self.cpu, self.bandwidth, self.bandwidth], dtype=np.float64)


def stress(load: FloatArray, capacity: FloatArray, thresholds: Thresholds) -> FloatArray:
    """Stress of each bridge: ``load`` (..., B, 3) against ``capacity`` (B, 3) -> (..., B)."""
    limit = capacity * thresholds.as_array()
    result: FloatArray = np.max(load / limit, axis=-1)
    return result


@dataclass(frozen=True, slots=True)
class CostTable:
    """Cost of forwarding one stream. Defaults: RESEARCH.md (360p VP8 ~500 kbps, Opus ~40 kbps,
    ~12 µs CPU per forwarded packet on the raw forwarding path, last-N 25 as lib-jitsi-meet).
    The bridge benchmark writes a calibration JSON with measured values for these fields."""

    video_kbps: float = 500.0
    audio_kbps: float = 40.0
    packets_per_s: float = 95.0  # per stream: ~45 video + 50 audio (20 ms Opus frames)
    cpu_us_per_packet_out: float = 12.0
    cpu_us_per_packet_in: float = 15.0  # receive, SRTP unprotect, fan-out bookkeeping
    last_n: int = 25

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value >= 0):
                raise ValueError(f"costs.{f.name} must be a finite number >= 0, got {value!r}")
        if not (isinstance(self.last_n, int) and self.last_n >= 1):
            raise ValueError(f"costs.last_n must be an integer >= 1, got {self.last_n!r}")

    @classmethod
    def from_mapping(cls, values: dict[str, Any]) -> CostTable:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown cost keys {unknown}; known keys: {sorted(known)}")
        return cls(**values)

    @property
    def mbps_per_stream(self) -> float:
        return (self.video_kbps + self.audio_kbps) / 1000.0

    @property
    def cpu_per_stream_out(self) -> float:
        """Cores spent forwarding one egress stream."""
        return self.packets_per_s * self.cpu_us_per_packet_out * 1e-6

    @property
    def cpu_per_stream_in(self) -> float:
        return self.packets_per_s * self.cpu_us_per_packet_in * 1e-6

    def kernel_params(self) -> FloatArray:
        """``cp`` of the compiled cost rules (``_migrate_kernels.single_bridge_load``, the
        simulator's room passes): last_n, cpu per egress stream, cpu per ingress stream, Mbps
        per stream."""
        return np.array([self.last_n, self.cpu_per_stream_out, self.cpu_per_stream_in,
                         self.mbps_per_stream], dtype=np.float64)

    def streams_to_load(self, egress: FloatArray, ingress: FloatArray) -> FloatArray:
        """Stream counts (...,) -> load vectors (..., 3)."""
        out = np.empty((*np.shape(egress), 3), dtype=np.float64)
        out[..., CPU] = egress * self.cpu_per_stream_out + ingress * self.cpu_per_stream_in
        out[..., EGRESS] = egress * self.mbps_per_stream
        out[..., INGRESS] = ingress * self.mbps_per_stream
        return out


def join_streams(
    local_members: IntArray | FloatArray,
    total_members: IntArray | FloatArray,
    room_bridges: IntArray | FloatArray,
    last_n: int,
) -> tuple[FloatArray, FloatArray]:
    """Egress and ingress streams one join adds to a bridge.

    ``local_members`` (..., B): members of the room already on each bridge; ``total_members``
    and ``room_bridges`` broadcast against it. A bridge new to a split room (local 0, total > 0)
    also receives every remote member once over the relay.
    """
    local = np.asarray(local_members, dtype=np.float64)
    total = np.asarray(total_members, dtype=np.float64)
    bridges = np.asarray(room_bridges, dtype=np.float64)
    to_newcomer = np.minimum(total, last_n)
    to_local = np.minimum(local, last_n)
    others = bridges - (local > 0)  # bridges of the room other than this one
    egress = to_newcomer + to_local + np.maximum(others, 0.0)
    relay_in = np.where((local == 0) & (total > 0), np.minimum(total, last_n), 0.0)
    ingress = 1.0 + relay_in
    return egress, ingress


def room_streams(size: IntArray | FloatArray, last_n: int) -> tuple[FloatArray, FloatArray]:
    """Egress and ingress streams of a whole room of ``size`` on one bridge."""
    n = np.asarray(size, dtype=np.float64)
    egress = n * np.minimum(np.maximum(n - 1.0, 0.0), last_n)
    return egress, n.copy()


def join_cost(
    local_members: IntArray | FloatArray,
    total_members: IntArray | FloatArray,
    room_bridges: IntArray | FloatArray,
    costs: CostTable,
) -> FloatArray:
    """Forecast load vector (..., B, 3) that one join adds to each candidate bridge."""
    egress, ingress = join_streams(local_members, total_members, room_bridges, costs.last_n)
    return costs.streams_to_load(egress, ingress)


def _growth_table(alpha: float = 1.43, low: int = 2, high: int = 100) -> FloatArray:
    """table[m] = expected further members of a room that has m members now, for sizes drawn
    from the discrete Pareto P(N >= n) = (n/low)^-alpha on [low, high] (RESEARCH.md)."""
    sizes = np.arange(high + 2, dtype=np.float64)
    survival = np.where(sizes >= low, (np.maximum(sizes, low) / low) ** -alpha, 1.0)
    survival[high + 1] = 0.0
    pmf = survival[:-1] - survival[1:]  # pmf[n] = P(N = n), n = 0..high
    pmf[:low] = 0.0
    tail_mass = np.cumsum(pmf[::-1])[::-1]
    tail_sum = np.cumsum((pmf * sizes[:-1])[::-1])[::-1]
    table = np.zeros(high + 2, dtype=np.float64)
    for m in range(high + 1):
        k = max(m, low)
        table[m] = max(tail_sum[k] / tail_mass[k] - m, 0.0) if tail_mass[k] > 0 else 0.0
    return table


GROWTH_TABLE = _growth_table()


def growth_load(room_members: IntArray, costs: CostTable) -> FloatArray:
    """(R, B, 3) forecast load of the room's expected growth if this join lands on each bridge."""
    total_after = room_members.sum(axis=1, keepdims=True) + 1
    extra = GROWTH_TABLE[np.minimum(total_after, GROWTH_TABLE.size - 1)]
    local_after = room_members + 1
    egress_now, ingress_now = room_streams(local_after, costs.last_n)
    egress_later, ingress_later = room_streams(local_after + extra, costs.last_n)
    return costs.streams_to_load(egress_later - egress_now, ingress_later - ingress_now)
